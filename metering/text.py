"""Outside text (tenant ids, names, paths, messages) made safe to print in a terminal.

A control character in a tenant id or a file name must not reach the terminal raw: ESC
starts a sequence that can clear the screen, move the cursor or rewrite what was printed,
and the bidi overrides reorder text so it reads as something else. ``printable`` shows
them as visible escapes (``\\x1b``, ``\\u202e``) and leaves every other character, letters
of any script included, as it is. Imports only ``re``: ``meter --help`` stays light.
"""

from __future__ import annotations

import re

__all__ = ["CONTROL", "codepoint", "printable"]

# C0 controls, DEL and C1 controls: the characters registry cells may not hold, and that
# make a CSV cell quoted.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# ... and the bidi embeddings, overrides and isolates, which can disguise text.
_HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def codepoint(char: str) -> str:
    """``U+001B``: how a message names a character."""
    return f"U+{ord(char):04X}"


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with control and bidi characters as visible escapes (``\\x1b``, ``\\u202e``)."""
    return _HIDDEN.sub(_escape, text)
