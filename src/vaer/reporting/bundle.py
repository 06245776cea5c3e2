"""What a report is made from: the run's tables and a metadata record.

The same bundle is written by ``vaer run`` and read back from a run's artifacts, so a
report can be re-rendered without refitting, from one source of truth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

TABLES_DIR = "tables"
META_FILE = "run.json"


@dataclass(frozen=True)
class ReportBundle:
    """Tables (by name, e.g. ``ate``, ``cate``) and metadata (run id, config, versions...).

    Tables named in ``parquet`` (large per-unit tables such as ``shap_values``) are written
    as ``tables/<name>.parquet`` instead of CSV.
    """

    tables: dict[str, pd.DataFrame]
    meta: dict[str, Any] = field(default_factory=dict)
    parquet: frozenset[str] = frozenset()

    def write(self, folder: Path) -> list[Path]:
        """Write ``tables/<name>.csv`` (or ``.parquet``) and ``run.json`` under ``folder``."""
        (folder / TABLES_DIR).mkdir(parents=True, exist_ok=True)
        written = []
        for name, table in self.tables.items():
            if name in self.parquet:
                path = folder / TABLES_DIR / f"{name}.parquet"
                table.to_parquet(path, index=False)
            else:
                path = folder / TABLES_DIR / f"{name}.csv"
                table.to_csv(path, index=False, float_format="%.10g")
            written.append(path)
        meta_path = folder / META_FILE
        meta_path.write_text(
            json.dumps(self.meta, indent=2, sort_keys=True, default=str), encoding="utf-8"
        )
        written.append(meta_path)
        return written

    @classmethod
    def read(cls, folder: Path) -> ReportBundle:
        """Read a bundle written by :meth:`write`.

        Raises
        ------
        FileNotFoundError
            If ``run.json`` is missing from ``folder``.
        """
        meta_path = folder / META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path} not found: not a vaer run folder")
        tables = {
            path.stem: pd.read_csv(path) for path in sorted((folder / TABLES_DIR).glob("*.csv"))
        }
        parquet = sorted((folder / TABLES_DIR).glob("*.parquet"))
        tables.update({path.stem: pd.read_parquet(path) for path in parquet})
        return cls(
            tables=tables,
            meta=json.loads(meta_path.read_text(encoding="utf-8")),
            parquet=frozenset(path.stem for path in parquet),
        )
