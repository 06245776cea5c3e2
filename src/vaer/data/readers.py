"""Reading firm data files: CSV (UTF-8 or GBK), Parquet and Stata ``.dta``.

A CSV file that is not UTF-8 is read as GBK (GB18030) when it decodes as such
(:func:`vaer.data.encodings.csv_encoding`). Stata's extended missing values (``.a`` to
``.z``) become NaN like ``.``; how many of each a column held is kept in
``frame.attrs["stata_missing"]`` so that validation messages can name them. A Stata
variable with value labels becomes a ``category`` column of its labels (pandas' reading);
the file's variable labels are kept in ``frame.attrs["variable_labels"]`` (column ->
label, non-empty ones only) as the columns' display labels (:mod:`vaer.data.labels`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from vaer.data.encodings import csv_encoding

READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".dta": "stata"}


def read_frame(path: Path | str, *, encoding: str | None = None) -> pd.DataFrame:
    """Read a data file by its extension.

    Parameters
    ----------
    path : path-like
        A ``.csv``, ``.parquet`` (``.pq``) or Stata ``.dta`` file.
    encoding : str, optional
        The CSV file's text encoding (``data.encoding``); default: UTF-8, or GB18030 when
        the file is GBK.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the extension is not one of the supported ones, the file cannot be parsed, or a
        CSV file mixes text encodings.
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
    if kind == "csv" and encoding is None:
        encoding = csv_encoding(path)
    try:
        if kind == "csv":
            return pd.read_csv(path, encoding=encoding)
        if kind == "parquet":
            return pd.read_parquet(path)
        return _read_stata(path)
    except Exception as exc:  # parse errors differ by engine; name the file in one message
        raise ValueError(f"cannot read {kind} file {path}: {exc}") from exc


def _read_stata(path: Path) -> pd.DataFrame:
    """A ``.dta`` file with its variable labels and its extended missing values counted
    per column (both in ``attrs``)."""
    frame = pd.read_stata(path)
    with pd.read_stata(path, iterator=True) as reader:  # the header: variable labels
        labels = {str(k): str(v).strip() for k, v in reader.variable_labels().items()}
    labels = {k: v for k, v in labels.items() if v}
    if labels:
        frame.attrs["variable_labels"] = labels
    if not frame.isna().to_numpy().any():
        return frame
    raw = pd.read_stata(path, convert_missing=True, convert_categoricals=False)
    found: dict[str, dict[str, int]] = {}
    for column in raw.columns:
        series = raw[column]
        if series.dtype != object:
            continue
        # pandas' StataMissingValue objects: '.', '.a', ..., '.z' in their `string`
        codes = pd.Series(
            [v.string for v in series if type(v).__name__ == "StataMissingValue"],
            dtype=object,
        )
        extended = codes[codes != "."].value_counts()
        if len(extended):
            found[str(column)] = {str(c): int(n) for c, n in extended.items()}
    if found:
        frame.attrs["stata_missing"] = found
    return frame


def file_fingerprint(path: Path | str) -> str:
    """SHA-256 of a file's bytes (first 16 hex digits), to tag runs with their input."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
