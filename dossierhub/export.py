"""Tables of statistics written as a terminal table, CSV, JSON or an Excel workbook."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

FORMATS = ("table", "csv", "json", "xlsx")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: _plain(v) for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def to_json(rows: Sequence[dict[str, Any]]) -> str:
    return json.dumps(
        [{k: _plain(v) for k, v in r.items()} for r in rows], ensure_ascii=False, indent=2
    )


def write_xlsx(rows: Sequence[dict[str, Any]], path: Path, *, title: str) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title[:31]
    if rows:
        sheet.append(list(rows[0]))
        for row in rows:
            sheet.append([_plain(v) for v in row.values()])
    book.save(path)
