"""Reporting periods: a year, a quarter or a month of local (Asia/Ho_Chi_Minh) dates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open range of local (Asia/Ho_Chi_Minh) dates: start <= day < end."""

    start: date
    end: date

    @classmethod
    def parse(cls, text: str) -> Period:
        """`2026`, `2026-Q1` or `2026-03`."""
        if m := re.fullmatch(r"(\d{4})", text):
            year = int(m.group(1))
            return cls(date(year, 1, 1), date(year + 1, 1, 1))
        if m := re.fullmatch(r"(\d{4})-Q([1-4])", text):
            year, quarter = int(m.group(1)), int(m.group(2))
            start = date(year, 3 * quarter - 2, 1)
            return cls(start, _add_months(start, 3))
        if m := re.fullmatch(r"(\d{4})-(0[1-9]|1[0-2])", text):
            start = date(int(m.group(1)), int(m.group(2)), 1)
            return cls(start, _add_months(start, 1))
        raise ValueError(
            f"period {text!r} is not a year (2026), quarter (2026-Q1) or month (2026-03)"
        )


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)
