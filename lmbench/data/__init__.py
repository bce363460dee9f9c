"""Text to token ids: corpora, decoding files, tokenizers, the vocabulary (train only) and the shared splits.

Everything a run's models see comes out of here as a :class:`lmbench.data.dataset.Dataset`: one
tokenization, one vocabulary built from the training split, one int32 id array per split.
"""
