"""Every JSON the monitor writes is strict RFC 8259: no NaN, no Infinity, whatever came in.
Here a change record whose percent no float can hold; the command line's documents, from
an upstream that sends non-finite numbers, in tests/e2e/test_strict_json.py."""

from __future__ import annotations

import json

import pytest

from monitor.core.records import Change, ChangeType, percent_change
from tests.support.json_check import strict


@pytest.mark.parametrize(
    ("before", "after"),
    [(1e-300, 1e300), ("1", "1e999999999"), ("1e-999999999", "1")],
)
def test_a_percent_no_float_can_hold_is_left_out(before: object, after: object) -> None:
    assert percent_change(before, after) is None
    change = Change(ChangeType.FIELD_CHANGED, "m", field="f", before=before, after=after)
    out = change.to_json()
    assert "percent" not in out
    strict(json.dumps(out))
