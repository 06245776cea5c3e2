"""Reading firm data files: CSV, Parquet and Stata ``.dta``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".dta": "stata"}


def read_frame(path: Path | str) -> pd.DataFrame:
    """Read a data file by its extension.

    Parameters
    ----------
    path : path-like
        A ``.csv``, ``.parquet`` (``.pq``) or Stata ``.dta`` file.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the extension is not one of the supported ones, or the file cannot be parsed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path} (check `data.path`)")
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(
            f"cannot read '{path.name}': unknown extension '{path.suffix}'; "
            f"use one of {', '.join(sorted(READERS))}"
        )
    try:
        if kind == "csv":
            return pd.read_csv(path)
        if kind == "parquet":
            return pd.read_parquet(path)
        return pd.read_stata(path)
    except Exception as exc:  # parse errors differ by engine; name the file in one message
        raise ValueError(f"cannot read {kind} file {path}: {exc}") from exc


def file_fingerprint(path: Path | str) -> str:
    """SHA-256 of a file's bytes (first 16 hex digits), to tag runs with their input."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
