"""User-facing errors: one line that names the problem and the fix."""

from __future__ import annotations

import difflib
from typing import Iterable


class LmbenchError(Exception):
    """A problem with the user's input or environment, reported as one line, never a traceback."""


def unknown_name_error(kind: str, name: str, available: Iterable[str], hint: str = "") -> LmbenchError:
    """Build the "unknown X 'name'; did you mean ...? available: ..." error (lm-eval style).

    Args:
        kind: what was looked up, e.g. "model" or "corpus".
        name: the name the user gave.
        available: the valid names.
        hint: an optional sentence appended to the message.

    Returns:
        An LmbenchError to raise.
    """
    available = list(available)
    close = difflib.get_close_matches(name, available, n=3, cutoff=0.6)
    message = f"unknown {kind} {name!r}"
    if close:
        message += f"; did you mean {' or '.join(repr(c) for c in close)}?"
    message += f" available: {', '.join(available)}"
    if hint:
        message += f". {hint}"
    return LmbenchError(message)
