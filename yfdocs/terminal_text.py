"""Text that users wrote, made safe for a terminal: never markup, no control characters.

Descriptions, file names, keys, ticket ids and the API's or the LMS's messages come from
outside. Printed as Rich markup, `[link=https://evil.example]Click here[/link]` becomes a
hidden link; printed raw, an ESC starts a terminal escape sequence and a right-to-left
override turns a name around. Every table and message of the `yfdocs` command shows such
text through `user_text` (a Rich `Text`, which is never parsed as markup) or `visible`
(plain text, for lines that are not Rich), so that it reads exactly as it was written.
"""

from __future__ import annotations

import unicodedata

from rich.text import Text

__all__ = ["user_text", "visible"]

# Characters that reorder the text around them (Trojan Source, CVE-2021-42574).
_BIDIRECTIONAL_CONTROLS = frozenset(
    [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)
# Control characters, lone surrogates (undecodable bytes in a file name), line and
# paragraph separators: each would act on the terminal instead of being read.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def visible(text: str) -> str:
    """`text` with every character that would act on a terminal shown as its escape.

    ESC becomes the four characters `\\x1b`, a newline `\\x0a`, U+202E `\\u202e`: the line
    stays one line, and what was sent can still be read.
    """
    if text.isprintable():
        return text
    return "".join(_escaped(character) for character in text)


def _escaped(character: str) -> str:
    code = ord(character)
    if code not in _BIDIRECTIONAL_CONTROLS and (
        unicodedata.category(character) not in _ESCAPED_CATEGORIES
    ):
        return character
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def user_text(value: object, style: str = "") -> Text:
    """A table cell or part of a line for text from outside: shown as written, no markup."""
    return Text("" if value is None else visible(str(value)), style=style)
