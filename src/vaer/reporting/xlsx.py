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


EXCEL_MAX_ROWS = 1_048_576
"""Rows of one Excel sheet, header included."""


def write_xlsx(
    tables: dict[str, pd.DataFrame],
    meta: dict[str, Any],
    path: Path,
    sheet_rows: int = EXCEL_MAX_ROWS,
) -> Path:
    """Write ``tables`` to ``path`` (openpyxl), one sheet per table in bundle order.

    The workbook is streamed (openpyxl's write-only mode), so memory does not grow with
    the per-firm tables. A table longer than an Excel sheet continues on sheets named
    ``<table>_2``, ``<table>_3``, ..., each with the header; the ``run`` sheet lists them.
    The workbook's creation time is the run's own (not the clock's), so it describes the run.

    Parameters
    ----------
    tables : dict of str to DataFrame
        Sheet name -> table, in the order of the sheets.
    meta : dict
        The run's metadata for the ``run`` sheet (``provenance`` a dict of its own).
    path : Path
        The ``.xlsx`` file to write.
    sheet_rows : int, default EXCEL_MAX_ROWS
        Rows per sheet, header included (Excel's limit; smaller in tests).
    """
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    info = workbook.create_sheet("run")
    info.column_dimensions["A"].width = 28
    info.column_dimensions["B"].width = 48
    keys = ("experiment", "run_name", "run_id", "created", "seed")
    rows = [[key, str(meta.get(key, ""))] for key in keys]
    rows += [[key, str(value)] for key, value in sorted(meta.get("provenance", {}).items())]
    taken = {"run"}
    per_sheet = sheet_rows - 1
    for name, frame in tables.items():
        parts = range(0, max(len(frame), 1), per_sheet)
        titles = [name, *(f"{name}_{k}" for k in range(2, len(parts) + 1))]
        sheets = [sheet_name(title, taken) for title in titles]
        if len(sheets) > 1:
            rows.append([f"table {name}", f"{len(frame)} rows on sheets {', '.join(sheets)}"])
        for title, first in zip(sheets, parts, strict=True):
            _write_sheet(workbook.create_sheet(title), frame.iloc[first : first + per_sheet])
    for row in rows:
        info.append(row)
    created = _created(meta)
    if created is not None:
        workbook.properties.created = created
        workbook.properties.modified = created
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    return path


def _write_sheet(sheet: Any, frame: pd.DataFrame) -> None:
    """Header (frozen) and rows; NaN becomes an empty cell."""
    from openpyxl.utils import get_column_letter

    sheet.freeze_panes = "A2"
    for index, column in enumerate(frame.columns, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = max(10, len(str(column)) + 2)
    sheet.append([str(c) for c in frame.columns])
    for record in frame.itertuples(index=False):
        sheet.append([None if _is_nan(v) else _plain(v) for v in record])


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and value != value


def _plain(value: object) -> object:
    if hasattr(value, "item"):
        return value.item()
    return value
