"""Start-up objects, out of the garbage collector's way.

The modules, classes, functions and SQLAlchemy mappings loaded at start-up live as long
as the process, yet every full collection walks them again: about 100,000 objects, so
one full collection took ~60 ms, and a cycle of 1,000 tokens triggers about ten of
them, a quarter of the cycle's CPU (measured with `gc.callbacks`; see
docs/performance.md). `gc.freeze()` moves them to a generation the collector never
scans; whatever is created later is collected as usual.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Call once, when set-up is done and before the work starts."""
    gc.collect()  # garbage frozen now would never be freed
    gc.freeze()
