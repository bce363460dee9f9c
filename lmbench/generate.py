"""Continue a text prefix with any saved model of a run (the warm-up prefix of d2l's ``predict``)."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

from .errors import LmbenchError, unknown_name_error
from .models.base import LanguageModel
from .registry import load_model
from .tokenize import Tokenizer


@dataclass(frozen=True)
class SavedRun:
    """A finished run directory: its tokenizer and the checkpoints of its models."""

    path: Path
    tokenizer: Tokenizer
    checkpoints: dict

    @classmethod
    def open(cls, path: str | Path) -> "SavedRun":
        path = Path(path)
        try:
            config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise LmbenchError(f"no lmbench run at {path} (config.json not found); pass the directory `lmbench run` wrote") from None
        except json.JSONDecodeError:
            raise LmbenchError(f"{path}/config.json is not valid JSON; is this an lmbench run directory?") from None
        checkpoints = {name: path / info["checkpoint"] for name, info in config["models"].items() if info.get("checkpoint")}
        return cls(path, Tokenizer(**config["data"]["tokenizer"]), checkpoints)

    def load(self, name: str) -> LanguageModel:
        """Load one model of the run by its label."""
        if name not in self.checkpoints:
            raise unknown_name_error(f"saved model in {self.path}", name, sorted(self.checkpoints) or ["(none saved)"],
                                     hint="runs made with --no-save-models keep no models")
        return load_model(self.checkpoints[name])


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
    saved = SavedRun.open(run)
    model = saved.load(model_name)
    tokens = [tok for i, line in enumerate(prefix.split("\n"))
              for tok in ([saved.tokenizer.eos] if i else []) + saved.tokenizer.tokenize_line(line)]
    ids, n_oov = model.vocab_.encode(tokens)
    if n_oov:
        warnings.warn(f"{n_oov} prefix token(s) are not in the vocabulary and were mapped to <unk>")
    out = model.generate(ids, length, temperature=temperature, top_k=top_k, greedy=greedy, seed=seed)
    return saved.tokenizer.detokenize(tokens + model.vocab_.decode(out)).rstrip(" ")
