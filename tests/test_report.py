"""The report: sections from the bundle, summary from the tables, LaTeX/XLSX/PDF, `vaer report`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import small_config
from report_fixtures import add_missing_stages, stage_tables
from vaer.config import validate_config
from vaer.pipeline import RunResult, run_experiment
from vaer.reporting import ReportBundle, render_html
from vaer.reporting.export import parse_formats, write_report
from vaer.reporting.latex import SPECS, LatexSpec, latex_table, write_latex
from vaer.reporting.pdf import write_pdf
from vaer.reporting.sections import SECTIONS, render_sections
from vaer.reporting.summary import summarize
from vaer.reporting.tables import display_table
from vaer.reporting.xlsx import write_xlsx
from vaer.tracking.artifacts import download_run_bundle

BUNDLE_OUTPUTS = ("report.html", "latex/ate.tex", "latex/tables.tex")


@pytest.fixture(scope="module")
def report_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, str]:
    """One small tracked run (linear DML on 1,000 firms) and its tracking URI."""
    tmp_path = tmp_path_factory.mktemp("report-run")
    raw = small_config(
        tmp_path,
        data={"source": "synthetic", "synthetic": {"n_units": 1000, "n_clusters": 30}},
        estimators=[{"kind": "linear_dml", "params": {"cv": 3}}],
    )
    result = run_experiment(validate_config(raw))
    return result, raw["tracking"]["uri"]


@pytest.fixture(scope="module")
def rich_bundle(report_run: tuple[RunResult, str]) -> ReportBundle:
    """The run's own bundle plus every other stage's table."""
    bundle = ReportBundle.read(report_run[0].out_dir)
    return ReportBundle(tables=add_missing_stages(bundle.tables), meta=bundle.meta)


def _section_ids(html: str) -> list[str]:
    return re.findall(r'<(?:section|footer) id="([a-z-]+)"', html)


# --- sections and summary -------------------------------------------------------------


@pytest.mark.integration
def test_run_writes_every_format_and_logs_them(report_run: tuple[RunResult, str]) -> None:
    result, uri = report_run
    for name in (*BUNDLE_OUTPUTS, "tables.xlsx", "tables/treatment.csv"):
        assert (result.out_dir / name).is_file(), name
    logged = {item.path for item in MlflowClient(uri).list_artifacts(result.run_id)}
    assert {"report.html", "tables.xlsx", "latex", "tables"} <= logged
    treatment = pd.read_csv(result.out_dir / "tables" / "treatment.csv")
    assert list(treatment.columns) == ["unit", "treatment", "t_hat"]
    assert len(treatment) == 1000
    # cross-fitted predictions explain part, not all, of the treatment: overlap holds
    r2 = 1 - (treatment["treatment"] - treatment["t_hat"]).var() / treatment["treatment"].var()
    assert 0 < r2 < 0.95


@pytest.mark.integration
def test_sections_appear_for_present_tables_in_a_fixed_order(
    report_run: tuple[RunResult, str], rich_bundle: ReportBundle
) -> None:
    result = report_run[0]
    plain = _section_ids(result.report_path.read_text(encoding="utf-8"))  # type: ignore[union-attr]
    present = set(ReportBundle.read(result.out_dir).tables)
    shown = [s.id for s in SECTIONS if s.always or present & set(s.tables)]
    assert plain == ["summary", "data", *shown, "truth", "reproducibility"]
    assert "gates" in shown
    rich = _section_ids(render_html(rich_bundle))
    expected = [s.id for s in SECTIONS]
    assert rich == ["summary", "data", *expected, "truth", "reproducibility"]


def test_an_unknown_table_renders_generically_and_per_unit_tables_are_summarised() -> None:
    tables = {
        "new_stage": pd.DataFrame(
            {"estimator": ["a"], "estimate": [0.5], "se": [0.1], "p_value": [0.004], "n": [12]}
        ),
        "per_firm": pd.DataFrame({"unit": range(5), "value": range(5)}),
    }
    sections = render_sections(tables, {})
    other = sections[-1]
    assert other.id == "other-tables"
    by_name = {t.name: t for t in other.tables}
    assert by_name["new_stage"].headers == ["Estimator", "Estimate", "SE", "p", "N"]
    assert by_name["new_stage"].rows == [["a", "0.500***", "(0.100)", "0.004", "12"]]
    assert by_name["per_firm"].per_unit and by_name["per_firm"].rows == []


def test_display_table_formats_cis_shares_and_booleans() -> None:
    frame = pd.DataFrame(
        {
            "channel": ["x"],
            "share": [0.4231],
            "estimate": [1.23456],
            "se": [2.0],
            "ci_low": [-2.8],
            "ci_high": [5.2],
            "passed": [False],
        }
    )
    table = display_table("t", frame)
    assert table.headers == ["Channel", "Estimate", "SE", "95% CI", "Share", "Passes"]
    assert table.rows == [["x", "1.23", "(2.00)", "[-2.80, 5.20]", "42.3%", "no"]]


def test_summary_statements_come_from_the_tables() -> None:
    tables = stage_tables()
    summary = summarize(tables)
    gate = tables["gate"][tables["gate"]["estimator"] == "causal_forest_dml"]
    assert summary["gates"]["most"]["estimate"] == gate["estimate"].max()
    assert summary["gates"]["least"]["estimate"] == gate["estimate"].min()
    channels = tables["shap_channels"]
    first = channels[channels["estimator"] == "causal_forest_dml"]
    assert summary["channels"][0]["channel"] == first.loc[first["share"].idxmax(), "channel"]
    assert summary["robustness"] == {"n": 3, "passed": 2, "failed": ["data_subset (80%)"]}
    tests = tables["gate_tests"]
    ownership = tests[
        (tests["estimator"] == "causal_forest_dml") & (tests["dimension"] == "ownership")
    ]
    assert summary["gates"]["equality_p"]["ownership"] == ownership["p_value"].iloc[0]
    assert "ate" not in summary


@pytest.mark.integration
def test_summary_page_states_each_headline_in_words(rich_bundle: ReportBundle) -> None:
    html = render_html(rich_bundle)
    summary = html[html.index('id="summary"') : html.index('id="data"')]
    gates = summarize(rich_bundle.tables)["gates"]
    assert f"{gates['most']['dimension']} = {gates['most']['level']}" in summary
    assert "Channels." in summary and "robustness checks hold" in summary
    assert "2 of 3" in summary and "data_subset (80%)" in summary
    assert "equality (p " in summary


@pytest.mark.integration
def test_did_figures_in_chinese_have_every_glyph(rich_bundle: ReportBundle) -> None:
    import warnings

    from vaer.reporting import figures
    from vaer.reporting.labels import ReportLabels

    tables = rich_bundle.tables
    labels = ReportLabels.from_meta({**rich_bundle.meta, "language": "zh"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        drawn = [
            figures.event_study(tables["did_aggregates"], labels),
            figures.att_gt_heatmap(tables["att_gt"], labels),
            figures.bacon_scatter(tables["bacon"], tables["did_aggregates"], labels),
            figures.honest_did(tables["honest_did"], tables["honest_did_breakdown"], labels),
            figures.type_event_study(tables["did_types"], tables["did_type_tests"], labels),
        ]
    assert [str(w.message) for w in caught if "missing from font" in str(w.message)] == []
    assert "城市实施政策后的年数（事件时间）" in drawn[0]
    assert "TWFE 系数的 Goodman-Bacon 分解" in drawn[2] and "相对幅度" in drawn[3]
    assert "各水平相等（总体）：p = " in drawn[4]


@pytest.mark.integration
def test_rendering_is_deterministic(rich_bundle: ReportBundle) -> None:
    assert render_html(rich_bundle) == render_html(rich_bundle)


# --- LaTeX ------------------------------------------------------------------------------


def _structure_ok(tex: str) -> None:
    begins = re.findall(r"\\begin\{(\w+)\}", tex)
    ends = re.findall(r"\\end\{(\w+)\}", tex)
    assert sorted(begins) == sorted(ends)
    stack: list[str] = []
    for kind, name in re.findall(r"\\(begin|end)\{(\w+)\}", tex):
        if kind == "begin":
            stack.append(name)
        else:
            assert stack.pop() == name
    assert tex.count(r"\toprule") == tex.count(r"\bottomrule") == 1


def test_latex_tables_have_one_row_per_estimate_with_se_beneath() -> None:
    tables = stage_tables()
    for spec in SPECS:
        if spec.table not in tables:
            continue
        tex = latex_table(tables[spec.table], spec, n_obs=1500)
        frame = tables[spec.table].query(spec.query) if spec.query else tables[spec.table]
        _structure_ok(tex)
        body = tex[tex.index(r"\midrule") : tex.rindex(r"\midrule")]
        estimate_rows = [ln for ln in body.splitlines() if re.match(r"^(\\quad )?[^ &\\]", ln)]
        # a row's first column may be empty (an event time CS has no estimate at)
        se_rows = [ln for ln in body.splitlines() if re.match(r"^( &\s*)+\(", ln)]
        key_cols = [c for c in spec.rows if c in frame.columns]
        assert re.search(r"\bnan\b", tex) is None
        assert len(estimate_rows) == len(se_rows) == len(frame.drop_duplicates(key_cols)), spec
        columns = frame["estimator"].nunique() if "estimator" in frame else 1
        assert all(row.count("&") == columns for row in estimate_rows)


def test_latex_escapes_and_stars() -> None:
    frame = pd.DataFrame(
        {"estimator": ["a_b"], "check": ["50% & more"], "estimate": [1.0], "se": [0.1]}
    )
    tex = latex_table(frame, LatexSpec("robustness", "R", ("check",)))
    assert r"a\_b" in tex and r"50\% \& more" in tex and "1.00$^{***}$" in tex


def test_latex_needs_estimates() -> None:
    with pytest.raises(ValueError, match="needs columns estimate and se"):
        latex_table(pd.DataFrame({"estimate": [1.0]}), SPECS[0])


@pytest.fixture(scope="session")
def pdflatex() -> str:
    """pdflatex, installed from Debian's packages when missing (root, as in CI)."""
    from browser_setup import ensure_pdflatex

    return ensure_pdflatex()


@pytest.mark.integration
def test_latex_tables_compile(
    pdflatex: str, report_run: tuple[RunResult, str], tmp_path: Path
) -> None:
    tables = {**stage_tables(), "ate": report_run[0].estimation.to_frame()}
    main = write_latex(tables, tmp_path, n_obs=1500)[-1]
    assert {p.name for p in main.parent.glob("*.tex")} == {
        "ate.tex", "gate.tex", "clan.tex", "mechanisms.tex", "robustness.tex", "event_study.tex",
        "tables.tex",
    }  # fmt: skip
    done = subprocess.run(
        [pdflatex, "-interaction=nonstopmode", "-halt-on-error", main.name],
        cwd=main.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert (main.parent / "tables.pdf").stat().st_size > 1000


@pytest.fixture(scope="session")
def xelatex() -> str:
    """xelatex with ctex, installed from Debian's packages when missing (root, as in CI)."""
    from browser_setup import ensure_xelatex

    return ensure_xelatex()


@pytest.mark.integration
@pytest.mark.parametrize("language", ["zh", "en"])
def test_chinese_latex_tables_compile_with_xelatex(
    xelatex: str, language: str, tmp_path: Path
) -> None:
    """Chinese levels and labels (and, in zh, Chinese captions and notes) compile with
    xelatex and ctex, with a glyph for every character."""
    from report_fixtures import chinese_meta, chinese_tables
    from vaer.reporting.labels import ReportLabels

    labels = ReportLabels.from_meta(chinese_meta(language))
    tables = labels.relabel_tables(chinese_tables())
    main = write_latex(tables, tmp_path, n_obs=300, labels=labels)[-1]
    text = main.read_text(encoding="utf-8")
    assert r"\documentclass[UTF8]{ctexart}" in text
    gate = (main.parent / "gate.tex").read_text(encoding="utf-8")
    assert "企业所有制" in gate and "国有" in gate
    caption = "按企业类型的组平均效应（GATE）" if language == "zh" else "Group average effects"
    assert caption in gate
    done = subprocess.run(
        [xelatex, "-interaction=nonstopmode", "-halt-on-error", main.name],
        cwd=main.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    log = (main.parent / "tables.log").read_text(encoding="utf-8", errors="replace")
    assert "Missing character" not in log
    assert (main.parent / "tables.pdf").stat().st_size > 5000


# --- XLSX and PDF ---------------------------------------------------------------------


@pytest.mark.integration
def test_xlsx_has_one_sheet_per_table(rich_bundle: ReportBundle, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    path = write_report(rich_bundle, tmp_path, ["xlsx"])["xlsx"]
    book = load_workbook(path, read_only=True)
    assert book.sheetnames == ["run", *rich_bundle.tables]
    for name, frame in rich_bundle.tables.items():
        assert len(list(book[name].values)) == len(frame) + 1  # streamed: no stored dimension
    first = next(iter(rich_bundle.tables))
    again = pd.read_excel(path, sheet_name=first)
    assert list(again.columns) == [str(c) for c in rich_bundle.tables[first].columns]


def test_xlsx_continues_a_long_table_on_further_sheets(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    long = pd.DataFrame({"firm": np.arange(12), "tau": np.linspace(0.0, 1.0, 12)})
    long.loc[3, "tau"] = np.nan
    meta = {"run_id": "r1", "created": "2026-11-30 08:00 UTC"}
    path = write_xlsx({"cate": long, "ate": long.head(2)}, meta, tmp_path / "t.xlsx", sheet_rows=6)
    book = load_workbook(path, read_only=True)
    assert book.sheetnames == ["run", "cate", "cate_2", "cate_3", "ate"]
    parts = [list(book[name].values) for name in ("cate", "cate_2", "cate_3")]
    assert [len(rows) for rows in parts] == [6, 6, 3]  # header + 5, header + 5, header + 2
    assert all(rows[0] == ("firm", "tau") for rows in parts)
    firms = [row[0] for rows in parts for row in rows[1:]]
    assert firms == list(range(12))
    first = pd.read_excel(path, sheet_name="cate")
    assert first["tau"].isna().tolist() == [False, False, False, True, False]  # NaN -> empty
    info = dict(book["run"].values)
    assert info["run_id"] == "r1"
    assert info["table cate"] == "12 rows on sheets cate, cate_2, cate_3"
    assert book.properties.created.year == 2026


@pytest.mark.slow
@pytest.mark.integration
def test_pdf_of_the_report(rich_bundle: ReportBundle, tmp_path: Path) -> None:
    pytest.importorskip("weasyprint", reason="the optional extra vaer[pdf]")
    path = write_report(rich_bundle, tmp_path, ["pdf"])["pdf"]
    assert path.read_bytes()[:5] == b"%PDF-" and path.stat().st_size > 20_000


def test_pdf_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "weasyprint", None)
    with pytest.raises(ImportError, match=r"vaer\[pdf\]"):
        write_pdf("<html></html>", tmp_path / "r.pdf")


def test_bad_formats_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="`--format` takes a comma-separated list"):
        parse_formats("html,docx")
    with pytest.raises(ValueError, match="`--format` takes"):
        parse_formats(" , ")
    with pytest.raises(ValueError, match="unknown report format"):
        write_report(ReportBundle(tables={}), tmp_path, ["docx"])


# --- vaer report ------------------------------------------------------------------------


@pytest.mark.integration
def test_vaer_report_reproduces_the_run_byte_for_byte(
    report_run: tuple[RunResult, str], tmp_path: Path
) -> None:
    result, uri = report_run
    out = tmp_path / "again"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "vaer.cli", "report", result.run_id, "--out", str(out)),
            *("--format", "html,latex,xlsx,csv", "--tracking-uri", uri),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    for name in BUNDLE_OUTPUTS:
        assert (out / name).read_bytes() == (result.out_dir / name).read_bytes(), name
    originals = sorted(p.name for p in (result.out_dir / "tables").iterdir())
    assert set(originals) <= {p.name for p in (out / "tables").iterdir()}  # + MLflow tables
    for name in originals:
        assert (out / "tables" / name).read_bytes() == (
            result.out_dir / "tables" / name
        ).read_bytes()
    assert (out / "tables.xlsx").is_file()


@pytest.mark.integration
def test_vaer_report_errors(report_run: tuple[RunResult, str], tmp_path: Path) -> None:
    _, uri = report_run
    with pytest.raises(ValueError, match="no run with id 'nope'"):
        download_run_bundle("nope", tmp_path, uri=uri)
    from typer.testing import CliRunner

    from vaer.cli import app

    done = CliRunner().invoke(app, ["report", "nope", "--tracking-uri", uri])
    assert done.exit_code == 2 and "no run with id" in done.output
    done = CliRunner().invoke(app, ["report", "x", "--format", "docx"])
    assert done.exit_code == 2 and "--format" in done.output


@pytest.mark.integration
def test_vaer_report_renders_a_run_in_another_language(
    report_run: tuple[RunResult, str], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from vaer.cli import app

    result, uri = report_run
    args = ["report", result.run_id, "--tracking-uri", uri, "--format", "html"]
    done = CliRunner().invoke(app, [*args, "--language", "zh", "--out", str(tmp_path)])
    assert done.exit_code == 0, done.output
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in html and "<h2>摘要</h2>" in html
    assert "<h2>Summary</h2>" in (result.out_dir / "report.html").read_text(encoding="utf-8")
    done = CliRunner().invoke(app, [*args, "--language", "fr"])
    assert done.exit_code == 2 and "`--language` must be one of ['en', 'zh']" in done.output


@pytest.mark.integration
def test_unfinished_or_foreign_runs_are_refused(
    report_run: tuple[RunResult, str], tmp_path: Path
) -> None:
    import mlflow

    _, uri = report_run
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("small")
    assert experiment is not None
    running = client.create_run(experiment.experiment_id)
    with pytest.raises(ValueError, match="is RUNNING, not FINISHED"):
        download_run_bundle(running.info.run_id, tmp_path, uri=uri)
    client.set_terminated(running.info.run_id, "FINISHED")
    with pytest.raises(FileNotFoundError, match=r"has no run\.json artifact"):
        download_run_bundle(running.info.run_id, tmp_path, uri=uri)
