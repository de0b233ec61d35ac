"""What the fetcher remembers between checks, so that an answer seen before costs little.

`ParseCaches` holds the two tables; whoever owns it decides how long they live (the
checker keeps one for its lifetime: `monitor.runtime.caches`). Nothing here is global:
two owners never share a hit, and a test gets empty tables by making its own.

Parsed pages. Most checks of a cycle read a body already read: the tokens of one group
see the same list, and an unchanged list comes back byte for byte every cycle. Decoding
and normalizing 1,000 models costs ~1.5 ms of CPU; hashing the bytes costs ~0.1 ms, with
the GIL released. So the fetcher keys each page by (flavor, request, SHA-256 of the
body) and reuses the parsed page when it has seen the key before.

Only flavors whose `parse` is a pure function of (body, request) take part, and
only where identical bodies are common (`Flavor.caches_pages`; new-api shuffles its
list on every request, so its records are interned instead). A cached page is never
changed (`Page.models` is only iterated). The table is bounded by the number of models
it holds, evicting the least recently used pages.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable

from monitor.sources.base import Flavor, Page, Request
from monitor.sources.interning import RecordTable

# A digest of (flavor, request, body), or `monitor.sources.reordered`'s key of a list.
PageKey = Hashable


def page_key(flavor: Flavor, request: Request, body: bytes) -> bytes:
    """What decides a page's parse: the flavor, the request (its url and params, never
    its headers, which carry the token) and the exact body."""
    head = repr((flavor.name, request.key)).encode()
    return hashlib.sha256(head + b"\0" + hashlib.sha256(body).digest()).digest()


class PageCache:
    """A thread-safe LRU of parsed pages, bounded by the models they hold."""

    def __init__(self, max_models: int = 200_000) -> None:
        self.max_models = max_models
        self._pages: OrderedDict[PageKey, Page] = OrderedDict()
        self._models = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: PageKey) -> Page | None:
        with self._lock:
            page = self._pages.get(key)
            if page is None:
                self.misses += 1
                return None
            self._pages.move_to_end(key)
            self.hits += 1
            return page

    def put(self, key: PageKey, page: Page) -> None:
        size = len(page.models)
        if size > self.max_models:
            return
        with self._lock:
            if key in self._pages:
                return
            self._pages[key] = page
            self._models += size
            while self._models > self.max_models:
                _, evicted = self._pages.popitem(last=False)
                self._models -= len(evicted.models)

    def clear(self) -> None:
        with self._lock:
            self._pages.clear()
            self._models = 0
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._pages)


class ParseCaches:
    """The fetcher's tables: parsed pages (by body, or by item set for a list sent in
    random order: `monitor.sources.reordered`) and interned records."""

    def __init__(self, max_models: int = 200_000, max_records: int = 100_000) -> None:
        self.pages = PageCache(max_models)
        self.records = RecordTable(max_records)

    def clear(self) -> None:
        self.pages.clear()
        self.records.clear()
