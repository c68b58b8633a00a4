"""What the finder returns (`Number`), and what it works on while it reads a mention (`RawNumber`)."""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("percent", "money", "quantity", "duration", "count", "date", "number")


@dataclass(frozen=True)
class Number:
    """One numeric mention. `text` is `source[start:end]` verbatim.

    Dates have unit "date" and value year*10000 + month*100 + day, with 0 for a part the text
    does not give ("June 9" -> 609, "2025" -> 20250000); see `date_parts`.
    """

    value: float
    unit: str
    kind: str
    text: str
    start: int
    end: int
    # Place value of the last digit the text gives, in the units of `value`: "18.4 billion" -> 1e8,
    # "三千" -> 1000, "45%" -> 1. It bounds how far a rounded restatement may differ.
    precision: float = 1.0
    # Written without Arabic digits ("forty-five", "九成", "three months").
    spelled: bool = False


def date_parts(value: float) -> tuple[int, int, int]:
    """(year, month, day) of a date Number's value; 0 where the text gave no such part."""
    v = int(round(value))
    return v // 10000, (v // 100) % 100, v % 100


@dataclass(slots=True)
class RawNumber:
    """A mention while it is being parsed; frozen into a Number at the end."""

    start: int
    end: int
    base: float
    base_precision: float
    spelled: bool
    multiplier: float = 1.0
    kind: str = "number"
    unit: str = ""
    currency: str = ""
    per: str = ""
    has_magnitude: bool = False

    @property
    def bare(self) -> bool:
        """A plain number so far: no kind, no unit."""
        return self.kind == "number" and self.unit == ""


class Claims:
    """The characters of a text that a mention already covers (dates first, then the rest)."""

    def __init__(self, length: int):
        self._claimed = bytearray(length)

    def claim(self, start: int, end: int) -> None:
        self._claimed[start:end] = b"\x01" * (end - start)

    def free(self, start: int, end: int) -> bool:
        return self._claimed.find(1, start, end) < 0
