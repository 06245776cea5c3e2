"""Chinese throughout: ``report.language: zh`` and Chinese column names, levels and labels in
every output (figures without missing glyphs, HTML, PDF, XLSX; LaTeX in test_report.py).

The report is built from a finished run's tables (report_fixtures.chinese_tables: the
columns every stage writes, with the firm-type column ``所有制`` and its levels in Chinese);
the logged model's round trip of Chinese columns and labelled levels is
test_labels.test_labelled_dta_run_finishes_and_its_model_predicts_raw_rows.
"""

from __future__ import annotations

import re
import string
import warnings
import zlib
from pathlib import Path

import pandas as pd
import pytest

from report_fixtures import ZH_LABELS, chinese_meta, chinese_tables
from vaer.config import validate_config
from vaer.config.loader import ConfigError
from vaer.reporting import ReportBundle, render_html
from vaer.reporting.attribution_figures import channel_share_bars, type_share_heatmap
from vaer.reporting.export import write_report
from vaer.reporting.figures import cate_histogram, channel_heatmap, treatment_overlap
from vaer.reporting.fonts import FAMILY, cjk_characters, font_face_css, subset_font
from vaer.reporting.format import sig
from vaer.reporting.heterogeneity import gate_forest_plot
from vaer.reporting.labels import ReportLabels
from vaer.reporting.robustness import refutation_plot
from vaer.reporting.words import WORDS, Words

ROOT = Path(__file__).resolve().parents[1]
REPORTING = ROOT / "src" / "vaer" / "reporting"
SECTION_TITLES_ZH = (
    "摘要",
    "数据与样本",
    "各估计量的平均效应",
    "按企业类型的效应（GATE）",
    "稳健性与敏感性",
)


@pytest.fixture(scope="module")
def zh_bundle() -> ReportBundle:
    return ReportBundle(tables=chinese_tables(), meta=chinese_meta("zh"))


@pytest.fixture(scope="module")
def zh_html(zh_bundle: ReportBundle) -> str:
    return render_html(zh_bundle)


# --- the language setting and the catalogue -------------------------------------------


def test_language_is_en_by_default_and_must_be_en_or_zh(tmp_path: Path) -> None:
    from conftest import small_config

    raw = small_config(tmp_path)
    assert validate_config(raw).report.language == "en"
    raw["report"]["language"] = "zh"
    assert validate_config(raw).report.language == "zh"
    raw["report"]["language"] = "cn"
    with pytest.raises(ConfigError, match=r"report.language.*`en` \(English\) or `zh`.*'cn'"):
        validate_config(raw)
    with pytest.raises(ValueError, match=r"`report.language` must be one of"):
        Words("fr")


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_entry_has_both_languages_with_the_same_placeholders() -> None:
    for key, (english, chinese) in WORDS.items():
        assert english.strip() and chinese.strip(), key
        assert _fields(english) == _fields(chinese), key
        if re.search(r"[a-z]{4,} [a-z]{3,}", english.split("{")[0]):  # a sentence, not a symbol
            assert cjk_characters(chinese), key


def test_every_key_the_report_uses_is_in_the_catalogue() -> None:
    used = set()
    for template in (REPORTING / "templates").rglob("*.j2"):
        used |= set(re.findall(r'\bt\("([a-z_.\-]+)"', template.read_text(encoding="utf-8")))
    for module in REPORTING.glob("*.py"):
        text = module.read_text(encoding="utf-8")
        used |= set(re.findall(r'words\("([a-z_.\-]+)"', text))
        used |= set(re.findall(r'"((?:latex|did\.fig|honest\.fig)\.[a-z_.]+)"', text))
    assert len(used) > 150
    assert used - set(WORDS) == set()


# --- figures ---------------------------------------------------------------------------


def test_figures_with_chinese_labels_have_every_glyph(zh_bundle: ReportBundle) -> None:
    tables = zh_bundle.tables
    labels = ReportLabels.from_meta(zh_bundle.meta)
    shown = labels.relabel_tables(tables)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        figures = [
            cate_histogram(tables["cate"], tables["ate"], labels),
            treatment_overlap(tables["treatment"], labels),
            gate_forest_plot(shown["gate"], tables["ate"], labels),
            channel_heatmap(shown["shap_by_type"], labels=labels),
            channel_share_bars(tables["shap_channels"], labels),
            type_share_heatmap(shown["shap_by_type"], "linear_dml", labels),
            refutation_plot(tables["robustness"], labels),
        ]
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert missing == []
    gate_svg = figures[2]
    assert "企业所有制: 国有" in gate_svg  # the levels' labels as text, in the shipped font
    assert "虚拟集聚指数对出口韧性的组平均效应" in gate_svg
    assert f"font-family: DejaVu Sans,{FAMILY}" in gate_svg  # a list WeasyPrint reads too
    assert "处理变量的分布" in figures[1] and "企业数" in figures[0]


def test_a_character_outside_the_shipped_font_still_warns() -> None:
    """The check above can fail: a hanzi outside GB2312 (U+20000) has no glyph."""
    tables = chinese_tables()
    labels = ReportLabels(columns={"va_index": "\U00020000"}, treatment_column="va_index")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        treatment_overlap(tables["treatment"], labels)
    assert any("missing from font" in str(w.message) for w in caught)


# --- HTML --------------------------------------------------------------------------------


def test_chinese_report_has_chinese_words_and_unchanged_numbers(
    zh_bundle: ReportBundle, zh_html: str
) -> None:
    assert '<html lang="zh-CN">' in zh_html
    assert "<h1>虚拟集聚指数对出口韧性的影响</h1>" in zh_html
    for title in SECTION_TITLES_ZH:
        assert f">{title}</h2>" in zh_html, title
    assert "平均效应。</strong>根据 causal_forest_dml" in zh_html  # the plain-words summary
    assert "<h2>机制检验：虚拟集聚指数是否影响各渠道？</h2>" in zh_html
    assert "虚拟集聚指数每增加一个单位的平均偏效应" in zh_html  # the estimand
    assert "聚类稳健（DR 得分） 标准误" in zh_html and "(DR scores)" not in zh_html
    for english in ("Data and sample", "Average effect per estimator", "Who gains most"):
        assert english not in zh_html
    english = render_html(ReportBundle(tables=zh_bundle.tables, meta=chinese_meta("en")))
    assert "<h1>Effect of 虚拟集聚指数 on 出口韧性</h1>" in english and "摘要" not in english
    # the same numbers and estimator names in both languages
    numbers = re.compile(r"<td>(-?[\d.,]+\**)</td>")
    assert numbers.findall(zh_html) == numbers.findall(english)
    for estimate in zh_bundle.tables["gate"]["estimate"]:
        assert f">{sig(estimate)}<" in zh_html
    assert re.search(r"<td[^>]*>企业所有制</td>\s*<td[^>]*>国有</td>", zh_html)


def test_chinese_report_embeds_the_glyphs_it_uses(zh_html: str) -> None:
    found = re.search(r"url\(data:font/otf;base64,([A-Za-z0-9+/=]+)\)", zh_html)
    assert found is not None
    from base64 import b64decode
    from io import BytesIO

    from fontTools.ttLib import TTFont

    cmap = TTFont(BytesIO(b64decode(found.group(1)))).getBestCmap()
    body = zh_html.replace(found.group(0), "")
    assert {ord(c) for c in cjk_characters(body)} <= set(cmap)
    assert len(found.group(1)) < 400_000  # a subset, not the 1.6 MB font
    # deterministic: the same subset twice (no timestamp), so reports re-render identically
    assert subset_font("国有民营") == subset_font("国有民营")
    assert font_face_css("English only") == ""


@pytest.mark.integration
def test_chinese_report_in_chromium_has_no_missing_glyphs(zh_html: str, tmp_path: Path) -> None:
    """Chromium lays out every Chinese character with the embedded font (this machine and
    CI have no CJK font of their own)."""
    from browser_setup import chromium_page

    page_file = tmp_path / "report.html"
    page_file.write_text(zh_html, encoding="utf-8")
    with chromium_page() as page:
        page.goto(page_file.as_uri())
        session = page.context.new_cdp_session(page)
        session.send("DOM.enable")
        session.send("CSS.enable")
        root = session.send("DOM.getDocument")["root"]["nodeId"]
        h1 = session.send("DOM.querySelector", {"nodeId": root, "selector": "h1"})["nodeId"]
        fonts = session.send("CSS.getPlatformFontsForNode", {"nodeId": h1})["fonts"]
    used = {font["familyName"]: font["glyphCount"] for font in fonts}
    assert used.get(FAMILY, 0) >= len("虚拟集聚指数对出口韧性的影响"), used


def _pdf_objects(path: Path) -> bytes:
    """The PDF's bytes with its compressed streams (object streams too) inflated."""
    raw = path.read_bytes()
    parts = [raw]
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", raw, flags=re.S):
        try:
            parts.append(zlib.decompress(stream))
        except zlib.error:
            continue
    return b"\n".join(parts)


# --- XLSX and PDF ------------------------------------------------------------------------


def test_xlsx_keeps_chinese_headers_levels_and_labels(
    zh_bundle: ReportBundle, tmp_path: Path
) -> None:
    path = write_report(zh_bundle, tmp_path, ["xlsx"])["xlsx"]
    gate = pd.read_excel(path, sheet_name="gate")
    assert set(gate["dimension"]) == {ZH_LABELS["所有制"], "贸易方式"}
    assert set(gate["level"]) == {"国有", "民营", "外资", "一般贸易", "加工贸易"}
    data = pd.read_excel(path, sheet_name="shap_data")
    assert list(data.columns) == ["unit", "所有制", "生产率"]
    channels = pd.read_excel(path, sheet_name="shap_channels")
    assert set(channels["channel"]) == {"知识溢出", "拥挤缓解", "出口成本"}


@pytest.mark.slow
@pytest.mark.integration
def test_chinese_pdf_embeds_the_shipped_font_only(zh_bundle: ReportBundle, tmp_path: Path) -> None:
    pytest.importorskip("weasyprint", reason="the optional extra vaer[pdf]")
    path = write_report(zh_bundle, tmp_path, ["pdf"])["pdf"]
    fonts = set(re.findall(rb"/BaseFont\s*/[A-Z]{6}\+([\w-]+)", _pdf_objects(path)))
    assert b"Vaer-CJK-SC" in fonts
    # no Chinese text fell to a system CJK font (TeX Live brings AR PL and Fandol fonts)
    system_cjk = re.compile(rb"AR-PL|CJK|WenQuanYi|Fandol|Hei|Song|Kai|Ming")
    assert [f for f in fonts if system_cjk.search(f) and not f.startswith(b"Vaer")] == []
