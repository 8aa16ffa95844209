"""Text checks every parser shares (command line, config files, /proc).

``str.isdigit()`` is true for '²', '٣' and other Unicode digits that ``int()`` refuses or reads
differently, so a parser that checks with it and then calls ``int()`` crashes on hostile input
(the text-parser fuzzers found exactly that). Use these instead.
"""

from __future__ import annotations

__all__ = ["ascii_digits"]


def ascii_digits(text: str) -> bool:
    """True for a non-empty run of the ASCII digits 0-9 only."""
    return text.isascii() and text.isdigit()
