"""Recognising a models list already parsed, when it comes back in another order.

new-api and one-api send `data` in a new order on every request (SQL without ORDER BY,
Go maps), so an unchanged list is rarely the same bytes twice, and decoding 1,000 models
costs about 1 ms of CPU per token. Yet each model is serialized the same way every time:
only the order of the items changes. So a body is split at each `},{` into the text before
the list, the text of each item and the text after it; the set of item texts (with the
text around them) identifies the list whatever its order, and a list identified before is
not decoded again. A set, not a sorted list or a digest: building it hashes each item
once in C, and a lookup compares the very bytes, so a hit is never a hash collision.

Why a hit is exact. The items, joined again, are the whole list text byte for byte.
When a list is first parsed in full, every item text is checked to be a complete JSON
object equal to the element decoded at its place; only then is the parse remembered. A
later body with the same text around the list and the same item texts in another order
is therefore, token for token, the same document with its elements permuted, and parses
to the same models. A list with two identical items has no key (a set would forget
how many there were); such a list is a duplicate, which the full parse reports. A body
that does not split into such items (a `},{` inside a string or a nested object, spaces
between items) is never remembered: it is parsed in full, every time.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import orjson


@dataclass(frozen=True, slots=True)
class Split:
    """A body as (text before the list, the items' texts in order, text after the list).

    An item's text is what stands between one `},{` and the next: the object without
    its outer braces.
    """

    before: bytes
    items: list[bytes]
    after: bytes

    def key(self, context: Hashable) -> Hashable | None:
        """Equal for every order of the same items with the same text around them and
        the same `context`; None when two items are the same text."""
        members = frozenset(self.items)
        if len(members) != len(self.items):
            return None
        return ("reordered", context, self.before, self.after, members)

    def matches(self, elements: object) -> bool:
        """Whether each item text is a complete JSON value equal to the decoded element
        at its place: what makes the split safe to identify the list by."""
        if not isinstance(elements, list) or len(elements) != len(self.items):
            return False
        try:
            return all(
                orjson.loads(b"{" + text + b"}") == element
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
    if not text:
        return Split(body[:start], [], body[end:])
    if not (text.startswith(b"{") and text.endswith(b"}")):
        return None
    # Joined again with `},{` the items give back the list text exactly, by construction.
    return Split(body[:start], text[1:-1].split(b"},{"), body[end:])
