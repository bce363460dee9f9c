"""User-facing errors (one line naming the problem and the fix) and the value checks that raise them."""

from __future__ import annotations

import difflib
import math
import numbers
import sys
import warnings
from contextlib import contextmanager
from typing import Iterable, Iterator

#: seeds are what every generator lmbench seeds accepts: NumPy's legacy seeding takes 0 .. 2**32 - 1.
MAX_SEED = 2**32 - 1


class LmbenchError(Exception):
    """A problem with the user's input or environment, reported as one line, never a traceback."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a run; its message says where the finished rows are."""



def unknown_name_error(kind: str, name: str, available: Iterable[str], hint: str = "") -> LmbenchError:
    """The "unknown X 'name'; did you mean ...? available: ..." error (lm-eval style)."""
    available = list(available)
    close = difflib.get_close_matches(name, available, n=3, cutoff=0.6)
    message = f"unknown {kind} {name!r}"
    if close:
        message += f"; did you mean {' or '.join(repr(c) for c in close)}?"
    message += f" available: {', '.join(available)}"
    if hint:
        message += f". {hint}"
    return LmbenchError(message)


def is_whole(x) -> bool:
    """True for an int or numpy integer (bool excluded)."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def is_finite_number(x) -> bool:
    """True for a real, finite number (bool excluded): NaN and +-inf are not hyperparameter values."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def check_int(name: str, value, minimum: int) -> None:
    """Raise unless ``value`` is a whole number >= ``minimum`` (booleans are not numbers here)."""
    if not is_whole(value) or value < minimum:
        raise LmbenchError(f"{name} must be a whole number >= {minimum}, got {value!r}")


def check_number(name: str, value, low: float, high: float | None = None, *, open_low: bool = False,
                 open_high: bool = False, unit: str = "") -> None:
    """Raise unless ``value`` is a finite real number in the interval given by low/high and openness."""
    ok = is_finite_number(value) and (value > low if open_low else value >= low)
    if high is not None:
        ok = ok and (value < high if open_high else value <= high)
    if not ok:
        interval = f"{'(' if open_low else '['}{low:g}, {'inf)' if high is None else f'{high:g}' + (')' if open_high else ']')}"
        raise LmbenchError(f"{name} must be a number in {interval}{unit}, got {value!r}")


def check_choice(name: str, value, choices) -> None:
    """Raise a "did you mean" error unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise unknown_name_error(name, str(value), list(choices))


def check_bool(name: str, value) -> None:
    """Raise unless ``value`` is True or False (a string such as "false" is not)."""
    if not isinstance(value, bool):
        raise LmbenchError(f"{name} must be true or false, got {value!r}")


def check_seed(seed, name: str = "seed") -> int:
    """``seed`` as an int; LmbenchError unless it is a whole number in 0 .. 2**32 - 1."""
    if not is_whole(seed) or not 0 <= seed <= MAX_SEED:
        raise LmbenchError(f"{name} must be a whole number in 0..{MAX_SEED}, got {seed!r}; pick one in that range")
    return int(seed)


@contextmanager
def one_line_warnings(show: bool = True, stream=None) -> Iterator[None]:
    """Within the block, each warning is one line ``lmbench: warning: ...`` on stderr (nothing if not ``show``).

    The message alone, without the file, line and source that Python's default format adds (in a
    notebook that shows the message twice); the filters decide, as usual, how often one is shown.
    """
    def show_one(message, category, filename, lineno, file=None, line=None):
        if show:
            print(f"lmbench: warning: {message}", file=stream or sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.showwarning = show_one
        yield
