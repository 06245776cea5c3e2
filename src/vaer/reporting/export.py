"""Every output format of a run's report from its bundle: HTML, PDF, LaTeX, XLSX, CSV."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from vaer.reporting.bundle import ReportBundle
from vaer.reporting.html import render_html
from vaer.reporting.labels import ReportLabels
from vaer.reporting.latex import write_latex
from vaer.reporting.pdf import write_pdf
from vaer.reporting.xlsx import write_xlsx

FORMATS = ("html", "csv", "pdf", "latex", "xlsx")


def parse_formats(text: str) -> list[str]:
    """``"html,latex"`` -> ``["html", "latex"]``.

    Raises
    ------
    ValueError
        On an unknown format name.
    """
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        raise ValueError(
            f"`--format` takes a comma-separated list of {', '.join(FORMATS)}; got {text!r}"
        )
    return list(dict.fromkeys(names))


def write_report(bundle: ReportBundle, folder: Path, formats: Iterable[str]) -> dict[str, Path]:
    """Write the report of ``bundle`` into ``folder`` in each of ``formats``.

    ``csv`` writes the bundle itself (``tables/*.csv`` and ``run.json``); ``html`` writes
    ``report.html``; ``pdf`` ``report.pdf``; ``latex`` ``latex/*.tex``; ``xlsx``
    ``tables.xlsx``. Returns the main file of each format. The PDF is the HTML printed
    (its embedded CJK glyphs too, so Chinese prints on a machine without a CJK font). The
    rendered formats name columns by their display labels (``meta["labels"]``); the CSV
    tables keep the names.

    Raises
    ------
    ValueError
        On an unknown format.
    ImportError
        For ``pdf`` without the ``vaer[pdf]`` extra.
    """
    wanted = list(formats)
    unknown = [name for name in wanted if name not in FORMATS]
    if unknown:
        raise ValueError(f"unknown report format(s) {unknown}; choose from {list(FORMATS)}")
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    if "csv" in wanted:
        written["csv"] = bundle.write(folder)[-1].parent / "tables"
    html = render_html(bundle) if {"html", "pdf"} & set(wanted) else ""
    if "html" in wanted:
        path = folder / "report.html"
        path.write_text(html, encoding="utf-8")
        written["html"] = path
    labels = ReportLabels.from_meta(bundle.meta)
    shown = labels.relabel_tables(bundle.tables)
    if "latex" in wanted:
        n_obs = bundle.meta.get("data", {}).get("units")
        written["latex"] = write_latex(shown, folder, n_obs=n_obs, labels=labels)[-1]
    if "xlsx" in wanted:
        written["xlsx"] = write_xlsx(shown, bundle.meta, folder / "tables.xlsx")
    if "pdf" in wanted:
        written["pdf"] = write_pdf(html, folder / "report.pdf")
    return written
