"""Printing results for people (aligned tables) and programs (JSON, CSV).

Tables are for people: every cell goes through `printable`, so a model id holding an ESC,
CR or newline shows as `\\x1b`, `\\r`, `\\n` instead of acting on the terminal or forging a
row. JSON and CSV are data and keep exact values: JSON escapes control characters itself
(`json_text` also spells DEL, C1 and bidi controls as `\\uNNNN`), and CSV quotes a cell
holding a newline or CR. Only when CSV goes straight to a terminal are its cells shown
through `printable`: someone is reading it there, and the terminal would obey an ESC.
Nor are CSV cells defused (no quote put before a leading `=`, `+`, `-` or `@`): CSV is
data, a changed value would mislead every program that reads it, and a spreadsheet
should import the file as text, not as formulas.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import click

from monitor.core.prices import describe
from monitor.core.printable import json_text, printable
from monitor.core.records import Change, ChangeType, ModelRecord, number


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(str(v) for v in value)
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    text_rows = [[printable(cell(v)) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in text_rows:
        widths = [max(w, len(v)) for w, v in zip(widths, row, strict=True)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in text_rows:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def to_csv(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], show: Callable[[str], str] = str
) -> str:
    """Exact values, unless `show` (`printable`, for a terminal) says otherwise."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    # Rows ending in "\n" quote a field holding "\n" but not one holding a bare "\r",
    # which readers take for a line end: such a row is written with every field quoted.
    quoting = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(headers)
    for row in rows:
        fields = ["" if v is None else show(cell(v)) for v in row]
        (quoting if any("\r" in f for f in fields) else writer).writerow(fields)
    return buffer.getvalue()


# Fields that get a column of their own in `models` when any model has them; the
# rest are listed together. Prices are per token upstream; shown per million tokens.
_COLUMNS = (
    ("context", "context_window"),
    ("max out", "max_output_tokens"),
    ("$/M in", "pricing.prompt"),
    ("$/M out", "pricing.completion"),
)


def per_million(value: Any) -> Any:
    parsed = number(value)
    return value if parsed is None else f"{float(parsed * 1_000_000):.4g}"


def model_table(
    models: Sequence[tuple[str, ModelRecord]],
) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows for `models`: only the columns that these models have values for."""
    fields = [record.field_map() for _, record in models]
    has_types = any(record.endpoint_types is not None for _, record in models)
    columns = [(title, key) for title, key in _COLUMNS if any(key in f for f in fields)]
    shown = {key for _, key in columns}
    headers = ["token", "model"] + (["endpoint types"] if has_types else [])
    headers += [title for title, _ in columns] + ["other fields"]
    rows = []
    for (token, record), values in zip(models, fields, strict=True):
        row: list[Any] = [token, record.id]
        if has_types:
            row.append(sorted(record.endpoint_types or ()))
        for _, key in columns:
            value = values.get(key)
            row.append(per_million(value) if key.startswith("pricing.") else value)
        rest = {k: v for k, v in values.items() if k not in shown}
        row.append(" ".join(f"{k}={cell(v)}" for k, v in rest.items()) or None)
        rows.append(row)
    return headers, rows


def value_text(value: Any) -> str:
    """A field value as `diff` shows it: strings and numbers as they are, anything else
    (lists, tables, booleans) as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def change_line(change: Change) -> str:
    """One change as a line for people, the way the text alerts write it:

    `+ MODEL [endpoint types]`, `- MODEL`, `~ MODEL endpoint types: +gained -lost`,
    `~ MODEL FIELD: before -> after (+1.25%)`, `~ MODEL FIELD: set to after`,
    `~ MODEL FIELD: before -> (removed)`, `! MODEL: listed but not callable — ERROR`,
    `✓ MODEL: callable again`. Not yet through `printable`.
    """
    if change.type is ChangeType.ADDED:
        types = change.record.endpoint_types if change.record is not None else None
        return f"+ {change.model}" + (f" [{', '.join(sorted(types))}]" if types else "")
    if change.type is ChangeType.REMOVED:
        return f"- {change.model}"
    if change.type is ChangeType.ENDPOINT_TYPES_CHANGED:
        moves = [f"+{t}" for t in change.gained] + [f"-{t}" for t in change.lost]
        return f"~ {change.model} endpoint types: {' '.join(moves)}"
    if change.type in (ChangeType.PRICE_CHANGED, ChangeType.GROUP_RATIO_CHANGED):
        return f"$ {describe(change)}"
    if change.type is ChangeType.UNAVAILABLE:
        said = f" — {change.error.text()}" if change.error is not None else ""
        return f"! {change.model}: listed but not callable{said}"
    if change.type is ChangeType.AVAILABLE:
        return f"✓ {change.model}: callable again"
    data = change.to_json()
    before, after = data.get("before"), data.get("after")
    if before is None:
        move = f"set to {value_text(after)}"
    elif after is None:
        move = f"{value_text(before)} -> (removed)"
    else:
        move = f"{value_text(before)} -> {value_text(after)}"
    if data.get("percent") is not None:
        move += f" ({data['percent']:+.2f}%)"
    return f"~ {change.model} {change.field}: {move}"


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot serialize {type(value).__name__}")


def to_json(data: Any) -> str:
    return json_text(
        json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False, default=_default)
    )


def emit(fmt: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], records: Any) -> None:
    """Print rows as a table or CSV, or `records` (the structured form) as JSON."""
    if fmt == "json":
        click.echo(to_json(records))
    elif fmt == "csv":
        # sys.stdout is what click.echo writes to (click 8.5 deprecates get_text_stream).
        on_terminal = sys.stdout.isatty()
        show: Callable[[str], str] = printable if on_terminal else str
        # color=True: click would otherwise cut what looks like ANSI codes out of the data.
        click.echo(to_csv(headers, rows, show), nl=False, color=True)
    else:
        click.echo(table(headers, rows) if rows else "(nothing)")
