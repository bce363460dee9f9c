"""What a fit and a scoring pass show while they run: tqdm bars, plain epoch lines, or nothing.

Bars (``tqdm.auto``: a terminal bar, or a notebook widget where ipywidgets is installed) are drawn
when they can be seen; elsewhere (a log file, CI) a fit prints one plain line per epoch and scoring
prints nothing; ``progress=False`` silences both. The training loop reports to an observer
(:class:`TrainingObserver`) and never draws anything itself.
"""

from __future__ import annotations

import sys
import warnings

from ...scoring.metrics import exp_or_inf


def bar_class():
    """The tqdm class that can be seen here, or None: stderr is not a terminal and no notebook widget can be drawn.

    ``tqdm.auto`` is imported with its "IProgress not found" TqdmWarning silenced: without ipywidgets
    a notebook gets plain lines instead.
    """
    from tqdm import TqdmWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TqdmWarning)
        from tqdm.auto import tqdm
        from tqdm.autonotebook import tqdm as chosen

    if chosen.__module__ == "tqdm.notebook":  # a notebook with widgets
        return tqdm
    isatty = getattr(sys.stderr, "isatty", None)
    return tqdm if isatty is not None and isatty() else None


class NoBar:
    """A stand-in for a tqdm bar that shows nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        pass

    def set_description_str(self, text: str, refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def token_bar(total: int, desc: str, show: bool):
    """A bar of tokens scored (removed when done), or a :class:`NoBar` if ``show`` is false or nothing can be seen."""
    tqdm = bar_class() if show else None
    if tqdm is None:
        return NoBar()
    return tqdm(total=total, desc=desc, unit="tok", unit_scale=True, file=sys.stderr, leave=False, dynamic_ncols=True)


def rate_text(nll_nats: float, n_tokens: int, seconds: float) -> str:
    """"12,345 tok/s, ppl 6.78": throughput and training perplexity of ``n_tokens`` with summed NLL ``nll_nats``."""
    return f"{n_tokens / max(seconds, 1e-9):,.0f} tok/s, ppl {exp_or_inf(nll_nats / max(n_tokens, 1)):.2f}"


class TrainingObserver:
    """What the training loop reports, as it happens; this one ignores it (``progress=False``)."""

    def epoch_started(self, epoch: int, n_batches: int) -> None:
        """Epoch ``epoch`` (from 1) begins; it has ``n_batches`` batches on this rank."""

    def batch_done(self, nll_sum, n_tokens: int, seconds: float, world_size: int = 1) -> None:
        """A batch ended: this rank's summed NLL (a device tensor, nats) and tokens this epoch, of ``world_size`` ranks."""

    def epoch_ended(self, epoch: int, row: dict, n_train: int, validated: bool, validating: bool) -> None:
        """The epoch's learning-curve ``row`` is final; ``n_train`` is the training split's size in tokens."""

    def close(self) -> None:
        """The fit is over (also after an error)."""


class EpochProgress(TrainingObserver):
    """A bar per epoch (batches, tokens/s, running training perplexity) where bars can be seen, else one line per epoch.

    Args:
        label: the model's name, shown first.
        epochs: the planned epochs (shown as "epoch 3/30").
        refresh_s: seconds between updates of the bar's text (each reads the loss from the device).
    """

    def __init__(self, label: str, epochs: int, refresh_s: float = 0.5):
        self.prefix = f"{label}: " if label else ""
        self.epochs = epochs
        self.refresh_s = refresh_s
        self.bar = None
        self.last_refresh = 0.0

    def epoch_started(self, epoch: int, n_batches: int) -> None:
        tqdm = bar_class()
        self.last_refresh = 0.0
        self.bar = None if tqdm is None else tqdm(total=n_batches, desc=f"{self.prefix}epoch {epoch}/{self.epochs}",
                                                  unit="batch", file=sys.stderr, dynamic_ncols=True)

    def batch_done(self, nll_sum, n_tokens: int, seconds: float, world_size: int = 1) -> None:
        if self.bar is None:
            return
        self.bar.update()
        if seconds - self.last_refresh > self.refresh_s:
            self.last_refresh = seconds
            self.bar.set_postfix_str(rate_text(float(nll_sum) * world_size, n_tokens * world_size, seconds),
                                     refresh=False)

    def epoch_ended(self, epoch: int, row: dict, n_train: int, validated: bool, validating: bool) -> None:
        title = f"{self.prefix}epoch {epoch}/{self.epochs}"
        if not row["complete"]:
            title += f" (partial: {row['train_tokens']:,} of {n_train:,} tokens)"
        text = f"{row['tokens_per_s']:,.0f} tok/s, ppl {row['train_ppl']:.2f}"
        if validating:
            text += f", valid ppl {row['valid_ppl']:.2f}" if validated else \
                ", validation skipped (no time left in the budget)"
        if self.bar is None:
            print(f"{title}: {text}, lr {row['lr']:g}", file=sys.stderr, flush=True)
            return
        self.bar.set_description_str(title, refresh=False)
        self.bar.set_postfix_str(text, refresh=False)
        self.close()  # the finished bar stays: one line per epoch

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
