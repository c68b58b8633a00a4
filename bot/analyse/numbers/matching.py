"""When two numbers state the same figure, and when a source's number backs a claim's.

"80 million" = "80,000,000" = "8000万"; "18.4 billion" = "184亿"; "45%" = "百分之四十五".
"""

from __future__ import annotations

from bot.analyse.numbers.number import Number, date_parts
from bot.analyse.numbers.numerals import trailing_zero_place

_MASS_IN_KG = {"kg": 1.0, "t": 1000.0}


def _dates_agree(a: float, b: float) -> bool:
    pa, pb = date_parts(a), date_parts(b)
    shared = [(x, y) for x, y in zip(pa, pb) if x and y]
    return bool(shared) and all(x == y for x, y in shared)


def _bare(n: Number) -> bool:
    return n.kind == "number" and n.unit == ""


def _same_money(unit_a: str, unit_b: str) -> bool:
    """"1,890 yuan" restates "1890元/公斤" without the unit; a different price unit is different."""
    cur_a, _, per_a = unit_a.partition("/")
    cur_b, _, per_b = unit_b.partition("/")
    return cur_a == cur_b and not (per_a and per_b and per_a != per_b)


def _comparable(a: Number, b: Number) -> tuple[float, float, float, float] | None:
    """Both values (and precisions) in a common unit, or None when the units say different things."""
    if a.kind == "date" or b.kind == "date":
        return None
    as_stated = (a.value, b.value, a.precision, b.precision)
    if _bare(a) or _bare(b):
        return as_stated  # a bare number ("80 million") is the same figure as one stated with its unit
    if a.kind == b.kind == "quantity" and a.unit in _MASS_IN_KG and b.unit in _MASS_IN_KG:
        fa, fb = _MASS_IN_KG[a.unit], _MASS_IN_KG[b.unit]
        return a.value * fa, b.value * fb, a.precision * fa, b.precision * fb
    if a.kind == b.kind == "money":
        return as_stated if _same_money(a.unit, b.unit) else None
    return as_stated if a.kind == b.kind and a.unit == b.unit else None


def _within(x: float, y: float, precision: float) -> bool:
    """|x - y| within half the given place value and never more than 5 % apart."""
    diff = abs(x - y)
    scale = max(abs(x), abs(y))
    eps = 1e-9 * max(scale, 1.0)
    return diff <= min(0.5 * precision, 0.05 * scale) + eps


def values_match(a: Number, b: Number) -> bool:
    """Same figure: compatible units and values equal within the rounding of the less precise one.

    "80 million" = "80,000,000" = "8000万"; "18.4 billion" = "184亿"; "45%" = "百分之四十五";
    "about 1.3 billion" = "1,287,000,000". Dates match when every part both give agrees.
    """
    if a.kind == "date" or b.kind == "date":
        return a.kind == b.kind == "date" and _dates_agree(a.value, b.value)
    comparable = _comparable(a, b)
    if comparable is None:
        return False
    va, vb, pa, pb = comparable
    return _within(va, vb, max(pa, pb))


def supports(source: Number, claim: Number, approximate: bool = False) -> bool:
    """Does `source` back `claim`? Like values_match, but only the claim's own rounding counts.

    A claim may round the source ("1.3 billion" for 1,287,000,000) but not be more exact than it
    ("82,000" does not stand on "8万"). `approximate` (the claim says "about", "nearly", "约", ...)
    lets trailing zeros round too: "nearly 4,000 tonnes" stands on 3,980 tonnes.
    """
    if source.kind == "date" or claim.kind == "date":
        return values_match(source, claim)
    comparable = _comparable(source, claim)
    if comparable is None:
        return False
    vs, vc, _ps, pc = comparable
    if approximate:
        pc = max(pc, trailing_zero_place(round(vc, 6)))
    return _within(vs, vc, pc)
