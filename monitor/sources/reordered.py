"""Recognising a models list already parsed, when it comes back in another order.

new-api and one-api send `data` in a new order on every request (SQL without ORDER BY,
Go maps), so an unchanged list is rarely the same bytes twice, and decoding 1,000 models
costs about 1 ms of CPU per token. Yet each model is serialized the same way every time:
only the order of the items changes. So a body is split, with one regular expression,
into the text before the list, the text of each item and the text after it; the sorted
item texts (with the text around them) identify the list whatever its order, and a list
identified before is not decoded again.

Why a hit is exact. A split is trusted only if the items, joined by commas, are the
whole list text, byte for byte. When a list is first parsed in full, every item text is
checked to be a complete JSON value equal to the element decoded at its place; only then
is the parse remembered. A later body with the same text around the list and the same
item texts in another order is therefore, token for token, the same document with its
elements permuted, and parses to the same models. A body the expression cannot split
(an object nested in an item, whitespace, a brace inside a string that breaks an item in
two) is simply parsed in full, every time.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import orjson

# A JSON object with no object inside it (new-api's items hold only strings, numbers
# and flat arrays). A brace inside a string can fool it; see the module docstring.
_ITEM = re.compile(rb"\{[^{}]*\}")


@dataclass(frozen=True, slots=True)
class Split:
    """A body as (text before the list, the items' texts in order, text after the list)."""

    before: bytes
    items: list[bytes]
    after: bytes

    def fingerprint(self, context: bytes) -> bytes:
        """The same for every order of the same items (and the same text around them)."""
        digest = hashlib.sha256(context)
        digest.update(b"\0" + self.before + b"\0" + self.after + b"\0")
        digest.update(b"\0".join(sorted(self.items)))
        return b"reordered:" + digest.digest()

    def matches(self, elements: object) -> bool:
        """Whether each item text is a complete JSON value equal to the decoded element
        at its place: what makes the split safe to identify the list by."""
        if not isinstance(elements, list) or len(elements) != len(self.items):
            return False
        try:
            return all(
                orjson.loads(text) == element
                for text, element in zip(self.items, elements, strict=True)
            )
        except orjson.JSONDecodeError:
            return False


def split(body: bytes, key: bytes) -> Split | None:
    """The body around and inside its one list under `key` (e.g. b"data"), or None when
    it cannot be split exactly."""
    marker = b'"' + key + b'":['
    start = body.find(marker)
    if start < 0 or body.find(marker, start + 1) >= 0:
        return None
    start += len(marker)
    end = body.rfind(b"]")
    if end < start:
        return None
    text = body[start:end]
    items = _ITEM.findall(text)
    if b",".join(items) != text:
        return None
    return Split(body[:start], items, body[end:])
