"""Errors raised by the token-level proxy metrics.

Both subclass :class:`bayesproxy.errors.BayesproxyError`, so ``except BayesproxyError``
catches them with every other input problem.
"""

from __future__ import annotations

from collections.abc import Sequence

from bayesproxy.errors import BayesproxyError

__all__ = ["PairsFileError", "TokenInputError", "format_positions"]


def format_positions(positions: Sequence[tuple[int, ...]], *, limit: int = 5) -> str:
    """Render the first few array positions (index tuples) and how many there are.

    Examples
    --------
    >>> format_positions([(0, 3), (1, 7)])
    'positions (0, 3), (1, 7) (2 in all)'
    """
    positions = list(positions)
    shown = ", ".join(str(tuple(int(i) for i in p)) for p in positions[:limit])
    more = ", ..." if len(positions) > limit else ""
    word = "position" if len(positions) == 1 else "positions"
    return f"{word} {shown}{more} ({len(positions)} in all)"


class TokenInputError(BayesproxyError, ValueError):
    """Logits, expert token ids or a mask that cannot be scored as given."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(f"{message}\nHint: {hint}")


class PairsFileError(BayesproxyError, ValueError):
    """A file of (prompt, expert solution) pairs that cannot be read."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(f"{message}\nHint: {hint}")
