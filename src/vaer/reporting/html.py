"""The self-contained HTML report (CSS inline, figures as inline SVG, no network).

Rendering is a pure function of the bundle: no clock, no randomness, SVG ids from a fixed
hash salt, so re-rendering a run's bundle reproduces its report byte for byte.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from vaer.reporting.attribution_figures import attribution_context
from vaer.reporting.bundle import ReportBundle
from vaer.reporting.fonts import font_face_css
from vaer.reporting.format import p_text, percent, sig
from vaer.reporting.heterogeneity import heterogeneity_context
from vaer.reporting.labels import ReportLabels
from vaer.reporting.robustness import robustness_context
from vaer.reporting.sections import render_sections
from vaer.reporting.summary import summarize


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("vaer.reporting", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["sig"] = sig
    env.filters["pct"] = percent
    env.filters["p"] = p_text
    return env


def render_html(bundle: ReportBundle) -> str:
    """Render the report of one run from its bundle.

    Parameters
    ----------
    bundle : ReportBundle
        The run's tables and metadata; sections appear for the tables present. Titles,
        axes and tables name the columns by their display labels (``meta["labels"]``,
        :mod:`vaer.reporting.labels`); the report's own words are in ``meta["language"]``
        (``en`` by default, or ``zh``; :mod:`vaer.reporting.words`). A report holding CJK
        text embeds the glyphs it uses (:func:`vaer.reporting.fonts.font_face_css`).

    Returns
    -------
    str
        The whole HTML document.
    """
    labels = ReportLabels.from_meta(bundle.meta)
    tables = labels.relabel_tables(bundle.tables)
    summary = summarize(tables)
    het = heterogeneity_context(tables, labels)
    robustness = robustness_context(tables, labels)
    attribution = attribution_context(bundle.tables, labels=labels)
    template = _environment().get_template("report.html.j2")
    html = template.render(
        t=labels.words.markup,
        meta=bundle.meta,
        labels=labels,
        summary=summary,
        sections=render_sections(tables, summary, labels),
        het=het,
        robustness=robustness,
        attribution=attribution,
        contexts={"het": het, "robustness": robustness, "attribution": attribution},
    )
    return html.replace(FONT_FACE_SLOT, font_face_css(html), 1)


FONT_FACE_SLOT = "/*vaer-font-face*/"
"""Where the template's CSS takes the embedded CJK font (nothing for a report without CJK)."""


def write_html(bundle: ReportBundle, folder: Path) -> Path:
    """Render and write ``report.html`` into ``folder``; return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "report.html"
    path.write_text(render_html(bundle), encoding="utf-8")
    return path
