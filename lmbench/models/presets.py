"""The neural models of the registry as plain data: preset name -> class path, parameters, description.

Each preset follows a published setting: d2l's character-level RNNs (Zhang et al., "Dive into Deep
Learning"), Zaremba et al. (2014), PyTorch's word_language_model, and nanoGPT-style Transformers
(Radford et al. 2019). This module imports neither torch nor the networks, so listing and resolving
model names costs nothing until a neural model is built (:func:`resolve_class` imports the class then).
"""

from __future__ import annotations

import importlib

from ..errors import LmbenchError

RECURRENT = "lmbench.models.neural.recurrent:RecurrentLM"
DEEP_RECURRENT = "lmbench.models.neural.recurrent:DeepRecurrentLM"
TRANSFORMER = "lmbench.models.neural.transformer:TransformerLM"

# Character level: the class defaults, d2l's setting for The Time Machine (one-hot input, 256 hidden units,
# windows of 35 steps, 32 streams, clipping at norm 1) with Adam (lr 0.005) instead of plain SGD, up to 30
# epochs with early stopping after 3; the torch.nn presets add dropout 0.2 (rnn-scratch stays exactly d2l's).
_CHAR = {"dropout": 0.2}
# Zaremba et al.'s small non-regularized model as in their code (TensorFlow's ptb_word_lm SmallConfig): lr 1
# and clipping at 5 of the loss summed over 20 steps are lr 20 and clip 0.25 of lmbench's per-token mean loss
# (so changing num_steps breaks the equivalence).
_ZAREMBA_SMALL = {"cell": "lstm", "num_layers": 2, "hidden_size": 200, "embedding_size": 200, "dropout": 0.0,
                  "init_scale": 0.1, "init": "all", "num_steps": 20, "batch_size": 20, "sampling": "sequential",
                  "optimizer": "sgd", "lr": 20.0, "clip": 0.25, "lr_schedule": "step", "lr_decay": 0.5,
                  "decay_start_epoch": 4, "epochs": 13, "early_stopping": None}
# The PyTorch word_language_model example: its init_weights, SGD lr 20 divided by 4 when valid does not improve.
_WORD = {"cell": "lstm", "num_layers": 2, "hidden_size": 200, "embedding_size": 200, "dropout": 0.2,
         "init_scale": 0.1, "init": "embedding-output", "num_steps": 35, "batch_size": 20, "sampling": "sequential",
         "optimizer": "sgd", "lr": 20.0, "clip": 0.25, "lr_schedule": "plateau", "lr_decay": 0.25, "patience": 0,
         "epochs": 40, "early_stopping": None}

# Transformers trained as nanoGPT trains its small models: AdamW with decay on matrices only, warm-up then cosine
# decay to lr / 10 per batch, shuffled windows, every planned epoch (the best validated epoch's weights kept).
_TRANSFORMER_TRAINING = {"sampling": "random", "optimizer": "adamw", "weight_decay": 0.1, "clip": 1.0,
                         "lr_schedule": "cosine", "min_lr_ratio": 0.1, "early_stopping": None}
_TRANSFORMER_CHAR = {"d_model": 128, "num_layers": 4, "n_heads": 4, "d_ff": 512, "context": 128, "dropout": 0.2,
                     "batch_size": 16, "lr": 3e-3, "warmup": 0.05, "epochs": 50, **_TRANSFORMER_TRAINING}
# Word level, PTB-sized data: small batches (many updates per CPU minute) and light dropout learn fastest; five
# epochs of cosine decay (the run behind docs/benchmarks.md's curve).
_TRANSFORMER_WORD = {"d_model": 256, "num_layers": 2, "n_heads": 4, "d_ff": 1024, "context": 128, "dropout": 0.1,
                     "batch_size": 4, "lr": 1e-3, "warmup": 0.02, "epochs": 5, **_TRANSFORMER_TRAINING}

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
                         "word-level decoder-only Transformer, 2x256, context 128, tied embeddings, AdamW + cosine, 5 epochs"),
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
