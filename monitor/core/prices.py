"""Model prices in one unit, and how two price lists differ.

Gateways state prices in their own terms: new-api in ratios (model_ratio 1 is $2 per
1M input tokens), OpenRouter in USD per token. Here every price is a `Price` in USD per
1M tokens (input, output, cached input) or USD per request, held as exact Decimals: a
float would turn 0.1 into 0.1000000000000000055 and make a re-spelling look like a move.
All arithmetic is exact (`_EXACT`), so a price compared, stored and read back is the
same number.

A new-api group pays every price times its group ratio. A `PriceList` keeps the base
prices (ratio 1) and the ratios apart, because one ratio change is one fact, not a
change of every model's price.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    Context,
    Decimal,
    Inexact,
    InvalidOperation,
    Overflow,
)
from types import MappingProxyType
from typing import Any, ClassVar

from monitor.core.money import decimal_text, money
from monitor.core.records import Change, ChangeType

# The components of a price, in the order they are listed everywhere (pairs, JSON,
# describe): what a reader looks for first comes first.
COMPONENTS: tuple[str, ...] = ("input", "output", "cache_input", "request")
# Components priced per 1M tokens; the rest ("request") per request.
TOKEN_COMPONENTS: frozenset[str] = frozenset({"input", "output", "cache_input"})

# A price or ratio is refused beyond 1E+40 or below 1E-40 (zero aside): no gateway
# charges that, and decimal_text of a hostile 1E+999999 would be a million digits.
MAX_EXPONENT = 40

# Exact arithmetic: addition, subtraction and multiplication of finite Decimals never
# round in this context (the C implementation sizes results to what they need), and
# Inexact is trapped so a mistake raises instead of rounding silently. Never divide
# with it: a non-terminating quotient would try to fill MAX_PREC digits.
_EXACT = Context(
    prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[InvalidOperation, Inexact, Overflow]
)
# Percentages are for people and thresholds, not money: 28 digits are plenty.
_PERCENT = Context(prec=28, Emax=MAX_EMAX, Emin=MIN_EMIN)
_HUNDRED = Decimal(100)
_MILLION = Decimal(1_000_000)


def amount(value: object) -> Decimal:
    """A price or ratio as a Decimal, or ValueError saying what is wrong with it.

    Takes ints, floats (through their shortest repr, so 0.1 stays 0.1), Decimals and
    numeric strings. Refuses booleans (True is an int to Python, not a price), NaN and
    infinities, negatives and absurd magnitudes (`MAX_EXPONENT`). The reason reads
    after a name: f"model_ratio {reason}".
    """
    if isinstance(value, bool):
        return _refuse("is a boolean, not a number")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            return _refuse("is not a finite number")
        number = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except (InvalidOperation, ValueError):
            return _refuse("is a string that is not a number")
    elif value is None:
        return _refuse("is null, not a number")
    elif isinstance(value, list | tuple):
        return _refuse("is an array, not a number")
    elif isinstance(value, Mapping):
        return _refuse("is an object, not a number")
    else:
        return _refuse(f"is {type(value).__name__}, not a number")
    if not number.is_finite():
        return _refuse("is not a finite number")
    if number.is_zero():
        return Decimal(0)  # also -0: no sign to carry around
    if number.is_signed():
        return _refuse("is negative")
    if abs(number.adjusted()) > MAX_EXPONENT:
        return _refuse(f"is out of range (beyond 1E+{MAX_EXPONENT} or below 1E-{MAX_EXPONENT})")
    return number


def times(a: Decimal, b: Decimal) -> Decimal:
    """a x b exactly, never rounded (Decimal's default context keeps 28 digits)."""
    return _EXACT.multiply(a, b)


def _refuse(reason: str) -> Decimal:
    raise ValueError(reason)


def _decode(text: object) -> Decimal:
    """A decimal text this module wrote (pairs, canonical JSON), at any magnitude: a
    group's price may exceed MAX_EXPONENT though the wire values may not. ValueError
    for anything else."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a decimal text")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a decimal text") from None
    _valid_amount(number, "a price")
    return number


def _valid_amount(value: object, what: str) -> None:
    """For values built in code: a finite, non-negative Decimal, else ValueError."""
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise ValueError(f"{what} must be a finite, non-negative Decimal, not {value!r}")


@dataclass(frozen=True, slots=True)
class Price:
    """What one model costs: USD per 1M tokens, and USD per request.

    A component is None when the gateway does not charge that way (a per-request model
    has no input price) or did not say. All None (`Price.NONE`) is "no price": new-api's
    sentinel for a model nobody priced. Equality is numeric: Decimal("2.50") equals
    Decimal("2.5"), so a re-spelled price is the same price.
    """

    NONE: ClassVar[Price]

    input: Decimal | None = None
    output: Decimal | None = None
    cache_input: Decimal | None = None
    request: Decimal | None = None

    def __post_init__(self) -> None:
        for name, value in self._items():
            if value is not None:
                _valid_amount(value, f"Price.{name}")

    def _items(self) -> Iterator[tuple[str, Decimal | None]]:
        yield "input", self.input
        yield "output", self.output
        yield "cache_input", self.cache_input
        yield "request", self.request

    @property
    def empty(self) -> bool:
        """No component at all: the model has no price."""
        return all(value is None for _, value in self._items())

    def scaled(self, ratio: Decimal) -> Price:
        """Every present component times `ratio`, exactly (a group's prices)."""
        _valid_amount(ratio, "ratio")
        return Price(*(None if v is None else times(v, ratio) for _, v in self._items()))

    def to_pairs(self) -> tuple[tuple[str, str], ...]:
        """The present components as (name, decimal text), in `COMPONENTS` order.

        The form a PRICE_CHANGED change carries: hashable, JSON-friendly and one
        spelling per number.
        """
        return tuple((name, decimal_text(v)) for name, v in self._items() if v is not None)

    def to_map(self) -> dict[str, Decimal]:
        """The present components by name."""
        return {name: v for name, v in self._items() if v is not None}

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> Price:
        """The inverse of `to_pairs`. ValueError for unknown or repeated names and for
        texts that are not decimals."""
        values: dict[str, Decimal] = {}
        for name, text in pairs:
            if name not in COMPONENTS or name in values:
                raise ValueError(f"unknown or repeated price component {name!r}")
            values[name] = _decode(text)
        return cls(**values)


Price.NONE = Price()


@dataclass(frozen=True)
class PriceList:
    """A gateway's prices: each model's base price (group ratio 1), and the group ratios.

    Both mappings are copied into read-only views, so a list cannot change once built
    (it is stored by content hash). Models and groups have no order: two lists with the
    same contents are equal, and `canonical_json` gives them the same bytes.
    """

    prices: Mapping[str, Price] = field(default_factory=dict)
    group_ratios: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        prices = dict(self.prices)
        ratios = dict(self.group_ratios)
        for model, price in prices.items():
            if not isinstance(model, str) or not isinstance(price, Price):
                raise ValueError(f"prices must map model names to Price, not {model!r}")
        for group, ratio in ratios.items():
            if not isinstance(group, str):
                raise ValueError(f"group names must be strings, not {group!r}")
            _valid_amount(ratio, f"the ratio of group {group!r}")
        object.__setattr__(self, "prices", MappingProxyType(prices))
        object.__setattr__(self, "group_ratios", MappingProxyType(ratios))

    def knows_group(self, group: str | None) -> bool:
        """Whether `effective` can price models for `group` (None: base prices, always)."""
        return group is None or group in self.group_ratios

    def effective(self, model: str, group: str | None) -> Price | None:
        """What a token of `group` pays for `model`; None when that cannot be said.

        None when the model is not listed, and when the group is not in `group_ratios`:
        new-api lists only the ratios of groups the asker may use, so a missing group
        means "unknown ratio", not "ratio 1", and a guessed price would be a wrong one.
        Callers check `knows_group` to warn about it. `group` None: the base prices.
        """
        base = self.prices.get(model)
        if base is None:
            return None
        if group is None:
            return base
        ratio = self.group_ratios.get(group)
        return None if ratio is None else base.scaled(ratio)


def canonical_json(price_list: PriceList) -> bytes:
    """The one byte form of a price list: sorted keys, decimal texts, no whitespace.

    `{"group_ratios": {group: text}, "prices": {model: {component: text}}}`; a model
    without a price maps to {}. Lists that differ only in upstream order or in the
    spelling of numbers ("2.50", "2.5") give the same bytes, hence the same SHA-256.
    ASCII escapes keep any model name (even a lone surrogate) encodable.
    """
    body = {
        "group_ratios": {g: decimal_text(r) for g, r in price_list.group_ratios.items()},
        "prices": {m: dict(p.to_pairs()) for m, p in price_list.prices.items()},
    }
    return json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def from_canonical(data: bytes) -> PriceList:
    """The price list `canonical_json` wrote. ValueError when `data` is not one."""
    body = json.loads(data)
    if not isinstance(body, dict) or set(body) != {"group_ratios", "prices"}:
        raise ValueError("not a canonical price list")
    ratios, prices = body["group_ratios"], body["prices"]
    if not isinstance(ratios, dict) or not isinstance(prices, dict):
        raise ValueError("not a canonical price list")
    parsed: dict[str, Price] = {}
    for model, pairs in prices.items():
        if not isinstance(pairs, dict) or not all(isinstance(v, str) for v in pairs.values()):
            raise ValueError(f"the price of {model!r} is not a map of decimal texts")
        parsed[model] = Price.from_pairs(tuple(pairs.items()))
    return PriceList(parsed, {g: _decode(r) for g, r in ratios.items()})


def diff_prices(
    before: PriceList,
    after: PriceList,
    group: str | None,
    models: Iterable[str] | None = None,
) -> list[Change]:
    """One PRICE_CHANGED per model whose price for `group` differs, sorted by model
    (only among `models`, when given).

    Only models in both lists: a model appearing or going is reported by the models
    diff, not as a price. A model gaining or losing its price (new-api's "no price"
    sentinel) is a change, with an empty side. Nothing for a group either list cannot
    price (`PriceList.knows_group`). A group ratio change moves every model's price
    for that group; `diff_prices(..., None)` with `diff_group_ratios` says it once.
    """
    changes: list[Change] = []
    both = before.prices.keys() & after.prices.keys()
    for model in sorted(both if models is None else both.intersection(models)):
        old, new = before.effective(model, group), after.effective(model, group)
        if old is None or new is None or old == new:
            continue
        changes.append(
            Change(
                ChangeType.PRICE_CHANGED,
                model,
                before=old.to_pairs(),
                after=new.to_pairs(),
                group=group,
            )
        )
    return changes


def diff_group_ratios(before: PriceList, after: PriceList) -> list[Change]:
    """One GROUP_RATIO_CHANGED per group whose ratio differs, sorted by group.

    Groups in both lists only: which groups exist (for the asker) is not a price.
    """
    changes: list[Change] = []
    for group in sorted(before.group_ratios.keys() & after.group_ratios.keys()):
        old, new = before.group_ratios[group], after.group_ratios[group]
        if old != new:
            changes.append(
                Change(
                    ChangeType.GROUP_RATIO_CHANGED,
                    "",
                    group=group,
                    before=decimal_text(old),
                    after=decimal_text(new),
                )
            )
    return changes


def _sides(change: Change) -> list[tuple[str, Decimal | None, Decimal | None]]:
    """(component, before, after) for every component that differs, in COMPONENTS
    order; "ratio" for a group ratio change. ValueError for other change types."""
    if change.type is ChangeType.GROUP_RATIO_CHANGED:
        old = None if change.before is None else _decode(change.before)
        new = None if change.after is None else _decode(change.after)
        return [] if old == new else [("ratio", old, new)]
    if change.type is not ChangeType.PRICE_CHANGED:
        raise ValueError(f"{change.type} is not a price change")
    olds = Price.from_pairs(change.before or ()).to_map()
    news = Price.from_pairs(change.after or ()).to_map()
    return [
        (name, olds.get(name), news.get(name))
        for name in COMPONENTS
        if olds.get(name) != news.get(name)
    ]


def percent_moves(change: Change) -> dict[str, Decimal | None]:
    """How far each differing component of a price or group ratio change moved, in percent.

    Keyed by component ("ratio" for a group ratio). None where no percentage exists:
    the component appeared, disappeared or moved away from zero. ValueError for
    changes that are not about prices.
    """
    return {name: _percent(old, new) for name, old, new in _sides(change)}


def _percent(old: Decimal | None, new: Decimal | None) -> Decimal | None:
    if old is None or new is None or old.is_zero():
        return None
    return _PERCENT.multiply(_PERCENT.divide(_EXACT.subtract(new, old), old), _HUNDRED)


def passes_threshold(change: Change, min_percent: Decimal) -> bool:
    """Whether a change is big enough to tell: some component moved by at least
    `min_percent` percent (5 means 5%), or appeared, disappeared or left zero.

    Exact: |after - before| * 100 >= min_percent * before, no rounded division in
    between, so a move of exactly 5% passes a 5% threshold. Changes that are not about
    prices always pass. This compares the two sides of one change: to catch slow drift,
    callers diff against the prices they last reported, not the previous check.
    """
    if change.type not in (ChangeType.PRICE_CHANGED, ChangeType.GROUP_RATIO_CHANGED):
        return True
    for _, old, new in _sides(change):
        if old is None or new is None or old.is_zero():
            return True
        moved = _EXACT.multiply(abs(_EXACT.subtract(new, old)), _HUNDRED)
        if moved >= _EXACT.multiply(min_percent, old):
            return True
    return False


def openrouter_price(fields: Mapping[str, Any]) -> Price:
    """The price in an OpenRouter record's fields (`ModelRecord.field_map()`).

    `pricing.prompt`, `pricing.completion` and `pricing.input_cache_read` are USD per
    token, times 1,000,000 exactly; `pricing.request` is USD per request as it is.
    Absent, variable ("-1") and unreadable values are None: there is no fixed price.
    """

    def read(key: str, scale: Decimal) -> Decimal | None:
        if key not in fields:
            return None
        try:
            value = amount(fields[key])
        except ValueError:
            return None
        return times(value, scale)

    return Price(
        input=read("pricing.prompt", _MILLION),
        output=read("pricing.completion", _MILLION),
        cache_input=read("pricing.input_cache_read", _MILLION),
        request=read("pricing.request", Decimal(1)),
    )


def percent_text(value: Decimal) -> str:
    """A signed percentage to 0.01: "+100%", "-16.67%"; "+<0.01%" for tinier moves."""
    sign = "-" if value < 0 else "+"
    size = abs(value)
    if size.is_zero():
        return "0%"
    # Wide enough for any magnitude, so quantize never runs out of digits.
    context = Context(prec=max(28, size.adjusted() + 4), Emax=MAX_EMAX, Emin=MIN_EMIN)
    rounded = size.quantize(Decimal("0.01"), context=context)
    if rounded.is_zero():
        return f"{sign}<0.01%"
    return f"{sign}{decimal_text(rounded)}%"


def describe(change: Change) -> str:
    """A price or group ratio change as one line for people.

    "gpt-4o input $2.50 -> $5.00 per 1M tokens (+100%)"; several components are listed
    together, and one percentage closes the line when all moved alike, else each is
    named: "m input $1.00 -> $2.00, output $4.00 -> $6.00 per 1M tokens (input +100%,
    output +50%)". A component only on one side shows "none". A model gaining or losing
    its whole price: "m price set: ..." / "m price no longer set (was ...)". Group
    ratios: "group vip ratio 1 -> 1.5 (+50%)". ValueError for other change types.
    """
    sides = _sides(change)
    if change.type is ChangeType.GROUP_RATIO_CHANGED:
        old, new = change.before, change.after
        return f"group {change.group} ratio {old} -> {new}{_percent_suffix(sides)}"
    head = change.model if change.group is None else f"{change.model} (group {change.group})"
    if not change.before and change.after:
        return f"{head} price set: {_listing(Price.from_pairs(change.after))}"
    if change.before and not change.after:
        return f"{head} price no longer set (was {_listing(Price.from_pairs(change.before))})"
    if not sides:
        return f"{head} price unchanged"
    moves = {name: f"{name} {_shown(old)} -> {_shown(new)}" for name, old, new in sides}
    return f"{head} {_by_unit(moves)}{_percent_suffix(sides)}"


def _shown(value: Decimal | None) -> str:
    return "none" if value is None else money(value)


def _listing(price: Price) -> str:
    """ "input $2.50, output $10.00 per 1M tokens" for a whole price."""
    return _by_unit({name: f"{name} {money(v)}" for name, v in price.to_map().items()})


def _by_unit(parts: Mapping[str, str]) -> str:
    """Component texts (in COMPONENTS order) with their unit after each run of them."""
    tokens = [text for name, text in parts.items() if name in TOKEN_COMPONENTS]
    requests = [text for name, text in parts.items() if name not in TOKEN_COMPONENTS]
    segments = []
    if tokens:
        segments.append(", ".join(tokens) + " per 1M tokens")
    if requests:
        segments.append(", ".join(requests) + " per request")
    return ", ".join(segments)


def _percent_suffix(sides: list[tuple[str, Decimal | None, Decimal | None]]) -> str:
    """ " (+100%)" when every component moved by the same shown percentage, else the
    named ones " (input +100%, output +50%)"; nothing when no percentage exists."""
    shown = [(name, _percent(old, new)) for name, old, new in sides]
    texts = [(name, percent_text(p)) for name, p in shown if p is not None]
    if not texts:
        return ""
    if len(texts) == len(shown) and len({text for _, text in texts}) == 1:
        return f" ({texts[0][1]})"
    return " (" + ", ".join(f"{name} {text}" for name, text in texts) + ")"


def describe_payload(change: Mapping[str, Any]) -> str:
    """`describe` for a change as the payload carries it (templates and feeds get those):
    "gpt-4o input $2.50 -> $5.00 per 1M tokens (+100%)". Anything unreadable is shown as
    its type."""
    kind = change.get("type")
    try:
        if kind == ChangeType.PRICE_CHANGED:
            rebuilt = Change(
                ChangeType.PRICE_CHANGED,
                str(change.get("model", "")),
                before=tuple(dict(change.get("before") or {}).items()),
                after=tuple(dict(change.get("after") or {}).items()),
                group=change.get("group"),
            )
        elif kind == ChangeType.GROUP_RATIO_CHANGED:
            rebuilt = Change(
                ChangeType.GROUP_RATIO_CHANGED,
                "",
                before=change.get("before"),
                after=change.get("after"),
                group=change.get("group"),
            )
        else:
            return str(kind)
        return describe(rebuilt)
    except (ValueError, TypeError, ArithmeticError):
        return str(kind)
