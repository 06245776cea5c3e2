"""Which text encoding a CSV file is in: UTF-8, or GBK (read as GB18030, its superset).

Chinese firm data often come as GBK CSV files exported by Stata, Excel or a statistics
office. :func:`csv_encoding` tells UTF-8 from GBK line by line, and refuses a file that
mixes the two (e.g. two exports concatenated) with a message naming the lines and the
column that hold the odd bytes.
"""

from __future__ import annotations

import codecs
import csv
from pathlib import Path

FALLBACK = "gb18030"
"""The encoding tried when a file is not UTF-8 (a superset of GBK and GB2312)."""


def _is_utf8(path: Path, block: int = 1 << 20) -> bool:
    """Whether the whole file decodes as UTF-8 (read a block at a time)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as handle:
        try:
            for chunk in iter(lambda: handle.read(block), b""):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def _field_of(line: bytes, header: list[str]) -> str:
    """The header name of the first field of ``line`` that is not ASCII."""
    fields = next(csv.reader([line.decode("latin-1")]), [])
    for index, value in enumerate(fields):
        if any(ord(ch) > 127 for ch in value):
            return header[index] if index < len(header) else f"field {index + 1}"
    return "an unknown column"


def csv_encoding(path: Path) -> str:
    """The encoding to read a CSV file with: ``utf-8`` or ``gb18030``.

    Parameters
    ----------
    path : Path
        The CSV file.

    Returns
    -------
    str
        ``utf-8`` (the file decodes as UTF-8, a byte-order mark allowed) or ``gb18030``
        (every line that is not UTF-8 decodes as GBK/GB18030 and no line needs UTF-8).

    Raises
    ------
    ValueError
        If some lines are UTF-8 text and others GBK (a file in two encodings), or a line
        is in neither; the message names the lines, the column and the fix.
    """
    if _is_utf8(path):
        return "utf-8"
    lines = path.read_bytes().splitlines()
    header_line = lines[0] if lines else b""
    utf8: list[int] = []
    other: list[int] = []
    neither: list[int] = []
    for number, line in enumerate(lines, start=1):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            try:
                line.decode(FALLBACK)
            except UnicodeDecodeError:
                neither.append(number)
            else:
                other.append(number)
        else:
            utf8.append(number)
    encoding = "utf-8" if utf8 and (not other or utf8[0] == 1) else FALLBACK
    header = next(csv.reader([header_line.decode(encoding, errors="replace")]), [])
    if neither:
        line = lines[neither[0] - 1]
        raise ValueError(
            f"cannot read {path.name}: line {neither[0]} (column '{_field_of(line, header)}') "
            "is neither UTF-8 nor GBK text; re-save the file as UTF-8 (e.g. Excel: Save As "
            "'CSV UTF-8'; Stata: export delimited, which writes UTF-8), or name its encoding "
            "in `data.encoding` (e.g. big5, latin-1)"
        )
    if utf8 and other:
        line = lines[other[0] - 1]
        raise ValueError(
            f"cannot read {path.name}: it mixes two text encodings: UTF-8 text on lines "
            f"{', '.join(map(str, utf8[:3]))} and GBK text on lines "
            f"{', '.join(map(str, other[:3]))} (column '{_field_of(line, header)}'); re-save "
            "the parts in one encoding before joining them (e.g. `iconv -f gbk -t utf-8 "
            "part.csv`), then run again"
        )
    return FALLBACK
