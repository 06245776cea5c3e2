"""An Excel workbook of the run: one sheet per table, and a ``run`` sheet of metadata."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

_BAD = re.compile(r"[\[\]\:\*\?\/\\]")


def sheet_name(name: str, taken: set[str]) -> str:
    """A valid, unique Excel sheet name (31 characters, none of ``[]:*?/\\``)."""
    base = _BAD.sub("_", name)[:31] or "table"
    candidate, index = base, 1
    while candidate.lower() in taken:
        suffix = f"_{index}"
        candidate, index = base[: 31 - len(suffix)] + suffix, index + 1
    taken.add(candidate.lower())
    return candidate


def _created(meta: dict[str, Any]) -> datetime | None:
    try:
        return datetime.strptime(str(meta.get("created", "")), "%Y-%m-%d %H:%M UTC")
    except ValueError:
        return None


def write_xlsx(tables: dict[str, pd.DataFrame], meta: dict[str, Any], path: Path) -> Path:
    """Write ``tables`` to ``path`` (openpyxl), one sheet per table in bundle order.

    The workbook's creation time is the run's own (not the clock's), so it describes the run.
    """
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    info = workbook.active
    info.title = "run"
    taken = {"run"}
    for key in ("experiment", "run_name", "run_id", "created", "seed"):
        info.append([key, str(meta.get(key, ""))])
    for key, value in sorted(meta.get("provenance", {}).items()):
        info.append([key, str(value)])
    info.column_dimensions["A"].width = 28
    info.column_dimensions["B"].width = 48
    for name, frame in tables.items():
        sheet = workbook.create_sheet(sheet_name(name, taken))
        sheet.append([str(c) for c in frame.columns])
        for record in frame.itertuples(index=False):
            sheet.append([None if _is_nan(v) else _plain(v) for v in record])
        sheet.freeze_panes = "A2"
        for index, column in enumerate(frame.columns, start=1):
            sheet.column_dimensions[get_column_letter(index)].width = max(10, len(str(column)) + 2)
    created = _created(meta)
    if created is not None:
        workbook.properties.created = created
        workbook.properties.modified = created
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    return path


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and value != value


def _plain(value: object) -> object:
    if hasattr(value, "item"):
        return value.item()
    return value
