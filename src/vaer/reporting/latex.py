"""LaTeX tables (booktabs) in the layout economics journals use.

Rows are the estimated quantities, columns the estimators ("(1)", "(2)", ... with the
estimator's name beneath); each estimate carries significance stars and its standard
error sits in parentheses on the line below; the table ends with N and a notes block.
Needs only ``booktabs`` in the preamble.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from vaer.reporting.fonts import cjk_characters
from vaer.reporting.format import normal_p_value, sig, stars
from vaer.reporting.labels import ReportLabels
from vaer.reporting.words import WORDS

_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


CTEX_PREAMBLE = (
    "% Chinese text: compile with xelatex (ctex)",
    r"\documentclass[UTF8]{ctexart}",
)
"""The start of ``tables.tex`` when the tables hold Chinese."""


def escape(text: object) -> str:
    """``text`` with LaTeX's special characters escaped."""
    return "".join(_SPECIAL.get(ch, ch) for ch in str(text))


@dataclass(frozen=True)
class LatexSpec:
    """How one bundle table becomes a LaTeX table.

    Attributes
    ----------
    table : str
        Bundle table name.
    caption : str
        Key of the caption in the report's words (:mod:`vaer.reporting.words`), or a
        caption's text; either may name ``{treatment}`` and ``{outcome}``.
    rows : tuple of str
        Columns whose values name a row (e.g. ``("dimension", "level")``); a change in
        the first of several starts a new panel with its value as a heading.
    notes : str
        Key of the notes in the report's words, as ``caption``.
    query : str or None
        A ``DataFrame.query`` filter applied first (e.g. keep cluster-robust ATE rows).
    panels : bool
        Whether the first row column starts panels (else row names join all columns).
    estimate : str
        The column holding the estimate (its SE is ``se``).
    name : str or None
        File name (``latex/<name>.tex``) and label, when not the table's.
    estimators : tuple of (str, str)
        The estimator columns in order with their headings (default: every estimator of
        the table, named as in it).
    integer_rows : bool
        Row names are integers (e.g. event times): printed as such, rows sorted by them.
    footer : tuple of (str, str)
        Rows under the estimates: (key of the row's label in the report's words, column),
        the column's value for each estimator as an integer.
    """

    table: str
    caption: str
    rows: tuple[str, ...]
    notes: str = ""
    query: str | None = None
    panels: bool = True
    estimate: str = "estimate"
    name: str | None = None
    estimators: tuple[tuple[str, str], ...] = ()
    integer_rows: bool = False
    footer: tuple[tuple[str, str], ...] = ()


SPECS: tuple[LatexSpec, ...] = (
    LatexSpec(
        "ate",
        "latex.ate.caption",
        ("estimand",),
        "latex.ate.notes",
        query="se_type.str.contains('DR')",
    ),
    LatexSpec("gate", "latex.gate.caption", ("dimension", "level"), "latex.gate.notes"),
    LatexSpec(
        "clan", "latex.clan.caption", ("variable",), "latex.clan.notes", estimate="difference"
    ),
    LatexSpec(
        "mechanisms",
        "latex.mechanisms.caption",
        ("channel", "mediator", "dimension", "level"),
        "latex.mechanisms.notes",
    ),
    LatexSpec(
        "robustness",
        "latex.robustness.caption",
        ("check", "variant"),
        "latex.robustness.notes",
        panels=False,
    ),
    LatexSpec(
        "did_aggregates",
        "latex.event_study.caption",
        ("key",),
        "latex.event_study.notes",
        query="aggregation == 'dynamic' and ~overall",
        name="event_study",
        estimators=(("cs_did", "CS"), ("event_study", "SA"), ("twfe", "TWFE")),
        integer_rows=True,
        footer=(("latex.n_firm_years", "n_obs"), ("latex.clusters_cities", "n_clusters")),
    ),
)


def _text(value: object) -> str:
    return "" if not _present(value) else str(value)


def _integer(value: object) -> str:
    return str(int(float(value))) if _present(value) else ""  # type: ignore[arg-type]


def _present(value: object) -> bool:
    return not (value is None or (isinstance(value, float) and math.isnan(value)))


def _named(key: str, labels: ReportLabels) -> str:
    """A caption or note in the report's language, naming the treatment and outcome by
    their labels; a ``key`` that is not in the report's words is the text itself."""
    if key in WORDS:
        return labels.words(key, treatment=labels.treatment, outcome=labels.outcome)
    return key.replace("{treatment}", labels.treatment).replace("{outcome}", labels.outcome)


def latex_table(
    frame: pd.DataFrame,
    spec: LatexSpec,
    *,
    n_obs: object = None,
    labels: ReportLabels | None = None,
) -> str:
    """One booktabs table of estimates (SEs beneath, stars), N and notes.

    Parameters
    ----------
    frame : DataFrame
        Must have the spec's estimate column and ``se``; ``estimator`` (the columns) and ``p_value``
        are used when present.
    spec : LatexSpec
    n_obs : int, optional
        The number of firms, written as the N row when the table has no ``n`` column.
    labels : ReportLabels, optional
        Name the treatment and outcome in the caption and notes, in the report's language
        (default: generic names, English).

    Returns
    -------
    str

    Raises
    ------
    ValueError
        If ``frame`` lacks the estimate or the ``se`` column.
    """
    names = labels or ReportLabels()
    missing = {spec.estimate, "se"} - set(frame.columns)
    if missing:
        raise ValueError(
            f"table `{spec.table}` needs columns {spec.estimate} and se for LaTeX; "
            f"missing {sorted(missing)}"
        )
    data = frame.query(spec.query) if spec.query else frame
    data = data.rename(columns={spec.estimate: "estimate"}) if spec.estimate != "estimate" else data
    row_cols = [c for c in spec.rows if c in data.columns]
    if spec.integer_rows:
        data = data.sort_values(row_cols, kind="stable")
        data = data.assign(**{c: data[c].map(_integer) for c in row_cols})
    estimators = (
        list(dict.fromkeys(data["estimator"].astype(str)))
        if "estimator" in data
        else [names.words("latex.estimate")]
    )
    headings = dict(spec.estimators)
    if spec.estimators:
        estimators = [e for e in headings if e in estimators]
    keys = list(dict.fromkeys(tuple(_text(r[c]) for c in row_cols) for _, r in data.iterrows()))
    k = len(estimators)
    lines = [
        r"\begin{table}[htbp]",
        r"\centering",
        rf"\caption{{{escape(_named(spec.caption, names))}}}",
        rf"\label{{tab:vaer-{(spec.name or spec.table).replace('_', '-')}}}",
        rf"\begin{{tabular}}{{l*{{{k}}}{{c}}}}",
        r"\toprule",
        " & " + " & ".join(f"({i + 1})" for i in range(k)) + r" \\",
        " & " + " & ".join(escape(headings.get(e, e)) for e in estimators) + r" \\",
        r"\midrule",
    ]
    panel: str | None = None
    for key in keys:
        paneled = spec.panels and len(key) > 1
        if paneled and key[0] != panel:
            if panel is not None:
                lines.append(r"\addlinespace")
            panel = key[0]
            lines.append(rf"\multicolumn{{{k + 1}}}{{l}}{{\textit{{{escape(panel)}}}}} \\")
        parts = [part for part in (key[1:] if paneled else key) if part]
        name = ": ".join(parts) or names.treatment
        est_cells, se_cells = [], []
        for estimator in estimators:
            match = data
            if "estimator" in data:
                match = match[match["estimator"].astype(str) == estimator]
            for column, value in zip(row_cols, key, strict=True):
                match = match[match[column].map(_text) == value]
            if match.empty:
                est_cells.append("")
                se_cells.append("")
                continue
            row = match.iloc[0]
            p_value = row["p_value"] if "p_value" in row and _present(row["p_value"]) else None
            if p_value is None:
                p_value = normal_p_value(float(row["estimate"]), float(row["se"]))
            mark = stars(float(p_value))
            est_cells.append(sig(float(row["estimate"])) + (f"$^{{{mark}}}$" if mark else ""))
            se_cells.append(f"({sig(float(row['se']))})")
        indent = r"\quad " if paneled else ""
        lines.append(f"{indent}{escape(name)} & " + " & ".join(est_cells) + r" \\")
        lines.append(" & " + " & ".join(se_cells) + r" \\")
    lines.append(r"\midrule")
    for heading, column in spec.footer:
        values = [data.loc[data["estimator"].astype(str) == e, column] for e in estimators]
        cells = [f"{int(v.iloc[0]):,}" if len(v) and _present(v.iloc[0]) else "" for v in values]
        lines.append(f"{escape(names.words(heading))} & " + " & ".join(cells) + r" \\")
    if "n" in data.columns and len(keys) == 1 and not spec.footer:
        counts = [
            data.loc[data["estimator"].astype(str) == e, "n"].iloc[0] if "estimator" in data else 0
            for e in estimators
        ]
        lines.append("N & " + " & ".join(f"{int(c):,}" for c in counts) + r" \\")
    elif n_obs is not None and not spec.footer:
        lines.append(
            f"{escape(names.words('latex.n_firms'))} & "
            + " & ".join([f"{int(n_obs):,}"] * k)  # type: ignore[call-overload]
            + r" \\"
        )
    lines += [
        r"\bottomrule",
        r"\end{tabular}",
        r"\par\medskip",
        r"\begin{minipage}{0.92\linewidth}\footnotesize",
        rf"\textit{{{escape(names.words('latex.notes'))}}} {escape(_named(spec.notes, names))} "
        + names.words("latex.star_note"),
        r"\end{minipage}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


def write_latex(
    tables: dict[str, pd.DataFrame],
    folder: Path,
    *,
    n_obs: object = None,
    labels: ReportLabels | None = None,
) -> list[Path]:
    """Write ``latex/<name>.tex`` for every table with a spec and rows for it (the name is
    the spec's ``name`` or its table's), and ``latex/tables.tex``. ``labels`` name the
    treatment and outcome in captions and notes, in the report's language.

    ``tables.tex`` is a complete document that inputs them all: an ``article`` for
    pdflatex, or, when the tables hold Chinese (CJK) text or the report's language is
    Chinese, a ``ctexart`` to compile with xelatex (ctex picks the system's Chinese fonts:
    Fandol with TeX Live, the Windows or macOS fonts there).
    """
    out = folder / "latex"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    chinese = labels is not None and labels.words.zh
    for spec in SPECS:
        frame = tables.get(spec.table)
        if frame is None or not {spec.estimate, "se"} <= set(frame.columns):
            continue
        if spec.query and frame.query(spec.query).empty:
            continue
        path = out / f"{spec.name or spec.table}.tex"
        text = latex_table(frame, spec, n_obs=n_obs, labels=labels)
        path.write_text(text, encoding="utf-8")
        chinese = chinese or bool(cjk_characters(text))
        written.append(path)
    document = [
        *(CTEX_PREAMBLE if chinese else [r"\documentclass{article}"]),
        r"\usepackage[margin=2cm]{geometry}",
        r"\usepackage{booktabs}",
        r"\begin{document}",
        *(rf"\input{{{path.name}}}" for path in written),
        r"\end{document}",
    ]
    main = out / "tables.tex"
    main.write_text("\n".join(document) + "\n", encoding="utf-8")
    return [*written, main]
