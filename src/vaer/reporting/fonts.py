"""Fonts for Chinese (CJK) text in the report's figures, HTML and PDF.

matplotlib's default font, DejaVu Sans, has no CJK glyphs: a figure with Chinese labels
warns "Glyph ... missing from font(s) DejaVu Sans" and draws boxes. vaer ships a CJK font,
"Vaer CJK SC" (a GB2312 subset of Noto Sans CJK SC, SIL Open Font License 1.1; see
``fonts/README.md``), so Chinese works without installing anything:

- figures: :func:`cjk_figure` draws a figure function's text with DejaVu Sans first and,
  glyph by glyph, the shipped font after it (then any system CJK font, for a character
  outside GB2312);
- HTML and PDF: :func:`font_face_css` embeds the subset of the shipped font holding the
  CJK characters the document uses, as an ``@font-face`` rule with a ``data:`` URL, so
  the self-contained report shows them in any browser and in WeasyPrint's PDF.
"""

from __future__ import annotations

import base64
import functools
import io
import logging
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ParamSpec, TypeVar

FAMILY = "Vaer CJK SC"
"""The shipped font's family name (in figures' SVG text and the report's CSS)."""

FONT_FILE = Path(__file__).parent / "fonts" / "VaerCJKSC-Regular.otf"

SYSTEM_CJK = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Microsoft YaHei",
    "PingFang SC",
    "SimHei",
)
"""System CJK fonts used after the shipped one (for characters outside GB2312), if present."""

_CJK_RANGES = (
    (0x2E80, 0x2FDF),  # radicals
    (0x3000, 0x303F),  # CJK punctuation
    (0x3400, 0x4DBF),  # extension A
    (0x4E00, 0x9FFF),  # unified ideographs
    (0xF900, 0xFAFF),  # compatibility ideographs
    (0xFF00, 0xFFEF),  # full-width forms
)

P = ParamSpec("P")
R = TypeVar("R")


_CJK_PATTERN = re.compile("[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _CJK_RANGES) + "]")


def cjk_characters(text: str) -> list[str]:
    """The distinct CJK ideographs, CJK punctuation and full-width forms of ``text``,
    sorted."""
    return sorted(set(_CJK_PATTERN.findall(text)))


@functools.cache
def register() -> str:
    """Add the shipped font to matplotlib's font manager (once); return its family."""
    from matplotlib import font_manager

    font_manager.fontManager.addfont(str(FONT_FILE))
    return FAMILY


@functools.cache
def figure_fonts() -> tuple[str, ...]:
    """The sans-serif fonts of a figure, in fallback order: DejaVu Sans (matplotlib's own),
    the shipped CJK font, then the system CJK fonts that are installed."""
    from matplotlib import font_manager

    register()
    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    return ("DejaVu Sans", FAMILY, *(name for name in SYSTEM_CJK if name in installed))


def cjk_figure(draw: Callable[P, R]) -> Callable[P, R]:
    """Decorate a function that draws a figure: its text (created, laid out and saved
    inside it) falls back to the CJK fonts of :func:`figure_fonts` for any glyph DejaVu
    Sans lacks, so Chinese labels draw without "Glyph missing" warnings."""

    @functools.wraps(draw)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        with plt.rc_context({"font.family": list(figure_fonts())}):
            return draw(*args, **kwargs)

    return wrapped


@functools.cache
def _font_bytes() -> bytes:
    return FONT_FILE.read_bytes()


@functools.cache
def _covered() -> frozenset[str]:
    """The characters the shipped font has."""
    from fontTools.ttLib import TTFont

    cmap = TTFont(io.BytesIO(_font_bytes()), lazy=True).getBestCmap()
    return frozenset(chr(code) for code in cmap)


def subset_font(characters: Iterable[str]) -> bytes:
    """The shipped font cut down to ``characters`` (OpenType/CFF bytes, deterministic:
    no timestamp is rewritten)."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    font = TTFont(io.BytesIO(_font_bytes()), recalcTimestamp=False)
    options = subset.Options()
    options.layout_features = ["kern"]
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6, 13, 14]  # keep the copyright and licence
    options.notdef_outline = True
    options.hinting = False
    subsetter = subset.Subsetter(options)
    subsetter.populate(text="".join(characters))
    log = logging.getLogger("fontTools.subset")  # its timings and pruning notes, at INFO
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        subsetter.subset(font)
    finally:
        log.setLevel(level)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


def font_face_css(text: str) -> str:
    """An ``@font-face`` rule embedding the shipped font's glyphs for the characters of
    ``text`` (a ``data:`` URL, so no file or network is needed), or ``""`` when ``text``
    has no CJK character. Besides the CJK characters the subset holds the text's other
    characters the font has (ASCII, punctuation), so a run of mixed text set in it (as
    WeasyPrint does) has every glyph; the glyphs the font lacks are left to the reader's
    fonts."""
    if not cjk_characters(text):
        return ""
    data = base64.b64encode(subset_font(sorted(set(text) & _covered()))).decode("ascii")
    return (
        f'@font-face {{ font-family: "{FAMILY}"; font-style: normal; font-weight: 400; '
        f'src: url(data:font/otf;base64,{data}) format("opentype"); }}'
    )
