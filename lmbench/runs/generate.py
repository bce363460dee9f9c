"""Continue a text prefix with any saved model of a run (the warm-up prefix of d2l's ``predict``)."""

from __future__ import annotations

import warnings
from pathlib import Path

from ..data.dataset import encode_lines
from .result import RunResult

#: kept for code that opened runs through this module before RunResult existed.
SavedRun = RunResult


def generate_text(run: str | Path, model_name: str, prefix: str = "", length: int = 100, *,
                  temperature: float = 1.0, top_k: int | None = None, greedy: bool = False, seed: int = 0) -> str:
    """Tokenize ``prefix`` as the run did, then sample ``length`` tokens from one of its models.

    Args:
        run: the run directory.
        model_name: the model's label in that run.
        prefix: text to condition on; its last line continues (no end of line is added).
        length: tokens to generate.
        temperature: sampling temperature (> 0).
        top_k: sample among the k most probable tokens only.
        greedy: take the most probable token each time.
        seed: random seed of the sampler.

    Returns:
        The prefix (as the model saw it, normalized) followed by the generated text.
    """
    saved = RunResult(run)
    model = saved.model(model_name)
    tokenizer, vocab = saved.tokenizer, model.vocab_
    lines = prefix.split("\n")
    ids, n_oov = encode_lines(lines, tokenizer, vocab)
    ids = ids[:-1]  # the last line of the prefix continues: no end of line after it
    if n_oov:
        warnings.warn(f"{n_oov} prefix token(s) are not in the vocabulary and were mapped to <unk>")
    out = model.generate(ids, length, temperature=temperature, top_k=top_k, greedy=greedy, seed=seed)
    shown = [tok for i, line in enumerate(lines) for tok in ([tokenizer.eos] if i else []) + tokenizer.tokenize_line(line)]
    return tokenizer.detokenize(shown + vocab.decode(out)).rstrip(" ")
