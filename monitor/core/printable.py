"""Upstream text made safe to show to people: control characters escaped, visibly.

Model ids, field values and error messages come from remote servers. Printed raw, an ESC
starts a terminal control sequence (clear the screen, write the clipboard with OSC 52, hide
a link behind OSC 8), a CR or a newline forges a line that looks like ours, a NUL or BEL
confuses whatever reads the output, and a bidi override shows an id reversed.

`printable` keeps every such character but shows it as a backslash escape instead of
letting it act:

- newline, carriage return and tab: `\\n`, `\\r`, `\\t`;
- every other C0 control, DEL and the C1 controls (U+0080 to U+009F): `\\xNN`
  (ESC is `\\x1b`, NUL `\\x00`, BEL `\\x07`, CSI `\\x9b`);
- format characters (Unicode category Cf: bidi embeddings, overrides and isolates such as
  U+202E, zero-width spaces and joiners, the soft hyphen, BOM), the line and paragraph
  separators U+2028 and U+2029, and lone surrogates: `\\uNNNN` (`\\UNNNNNNNN` above
  U+FFFF).

Everything else is left alone, a backslash included: the result is for reading, not for
parsing back. So an id made of the four characters `\\x1b` looks the same as one holding an
ESC; where the exact value matters, `--format json` (and CSV) print it unchanged.

This is for human-facing text only: terminal output, text log lines, the stdout channel and
the text part of emails. HTML pages and Slack messages escape in their own formats; JSON
keeps exact values (`json_text` only spells the characters above as `\\uNNNN` escapes).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

# Categories escaped: controls, format characters, line and paragraph separators, and
# surrogates (which no UTF-8 stream can carry anyway).
_ESCAPED = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """`text` with every control, format and separator character escaped visibly."""
    if text.isprintable():  # the common case: plain ids and messages
        return text
    return "".join(_escape(ch) if unicodedata.category(ch) in _ESCAPED else ch for ch in text)


def printable_data(value: Any) -> Any:
    """A copy of a payload (mappings, lists, strings) with `printable` applied to every string,
    keys included; other values are returned as they are. For text templates."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, Mapping):
        return {printable_data(k): printable_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [printable_data(v) for v in value]
    return value


def _escape(ch: str) -> str:
    named = _NAMED.get(ch)
    if named:
        return named
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


# Outside ASCII's printable range; C0 controls are left to json.dumps, which escapes them.
_NOT_ASCII = re.compile("[^\x00-\x7e]")


def json_text(encoded: str) -> str:
    """JSON text from `json.dumps(..., ensure_ascii=False)` with DEL, C1 controls, format
    characters and U+2028/U+2029 spelled as `\\uNNNN` escapes: the same values, but nothing
    a terminal would obey or reorder. Such characters only occur inside JSON strings,
    where an escape means the same character."""
    if encoded.isascii() and "\x7f" not in encoded:
        return encoded
    return _NOT_ASCII.sub(_json_escape, encoded)


def _json_escape(match: re.Match[str]) -> str:
    ch = match.group()
    if unicodedata.category(ch) not in _ESCAPED:
        return ch
    code = ord(ch)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # a UTF-16 surrogate pair, as JSON spells characters above U+FFFF
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
