"""The bad-input catalogue: each bad table or panel, written to a file and checked with
``vaer validate`` (a few also with ``vaer run``), exits with status 2 before anything is
fitted, with a message naming the column and the fix."""

from __future__ import annotations

import copy
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import BASE_ROLES, write_yaml
from vaer.cli import app
from vaer.config.models import SyntheticTableConfig
from vaer.config.panel import SyntheticPanelConfig
from vaer.data.synthetic import PANEL_ROLES, make_synthetic_panel
from vaer.data.synthetic_table import make_synthetic_table

runner = CliRunner()

TABLE_ROLES: dict[str, Any] = {
    **copy.deepcopy(BASE_ROLES),
    "mechanisms": {"knowledge_spillover": ["knowledge_spillover"], "smart_green": ["smart_green"]},
    "mediators": {"knowledge_spillover": ["d_knowledge_spillover"]},
}
TABLE_ROLES["modifiers"] = [m for m in BASE_ROLES["modifiers"] if m != "smart_green"]


@dataclass(frozen=True)
class Case:
    """A bad input: how it is made from a good frame, and what the message must say."""

    name: str
    mode: str  # table or panel
    change: Callable[[pd.DataFrame], pd.DataFrame]
    column: str  # the message names it, quoted
    fix: str  # a regex of the message's fix or finding
    roles: dict[str, Any] = field(default_factory=dict)  # role changes
    write: str = "csv"  # csv, gbk_mixed or dta_a (Stata .a in `column`)


def _with(
    column: str, values: Callable[[pd.DataFrame], Any]
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame[column] = values(frame)
        return frame

    return change


def _at(column: str, rows: list[int], value: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        if isinstance(value, str):
            frame[column] = frame[column].astype(object)
        elif isinstance(value, float):
            frame[column] = frame[column].astype(np.float64)
        frame.loc[rows, column] = value
        return frame

    return change


def _levels(n: int, prefix: str) -> Callable[[pd.DataFrame], Any]:
    return lambda f: [f"{prefix}{i % n:03d}" for i in range(len(f))]


def _firm_levels(n: int, prefix: str) -> Callable[[pd.DataFrame], Any]:
    """A level per firm group, constant within firm (panel)."""
    return lambda f: [f"{prefix}{int(i) % n:03d}" for i in f["firm_id"]]


def _same(frame: pd.DataFrame) -> pd.DataFrame:
    return frame


def _drop(column: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda f: f.drop(columns=[column])


def _rare_treatment(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["va_index"] = 0.0
    frame.loc[[1, 2, 3], "va_index"] = 1.0
    return frame


def _duplicate_rows(rows: list[int]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda f: pd.concat([f, f.loc[rows]], ignore_index=True)


CASES: list[Case] = [
    # ---------------------------------------------------------------- table mode
    Case("unit suffix in a numeric modifier ('12y')", "table",
         _with("firm_age", lambda f: [f"{round(a)}y" for a in f["firm_age"]]),
         "firm_age", r"numbers stored as text .*written with units/signs 'y'.*clean it into plain numbers"),
    Case("thousands separators in a control ('1,234')", "table",
         _with("productivity", lambda f: [f"{1000 * abs(v) + 1000:,.0f}" for v in f["productivity"]]),
         "productivity", r"written with thousands separators.*one-hot encoded as a category with 5\d\d levels"),
    Case("percent signs in a modifier ('30%')", "table",
         _with("export_cost", lambda f: [f"{v:.0%}" for v in f["export_cost"]]),
         "export_cost", r"numbers stored as text .*units/signs '%'"),
    Case("Chinese units in a control ('5万')", "table",
         _with("city_dev", lambda f: [f"{abs(v) * 10:.0f}万" for v in f["city_dev"]]),
         "city_dev", r"numbers stored as text .*units/signs '万'"),
    Case("a word among the numbers of a mechanism proxy", "table",
         _at("smart_green", [4], "high"),
         "smart_green", r"roles\.mechanisms\.smart_green: .*599 of 600 values are numbers.*'high'.*recode the words"),
    Case("text in the outcome (a decimal comma)", "table", _at("resilience", [7], "12,5"),
         "resilience", r"must be numeric but holds text \(rows 7, e\.g\. '12,5'\).*clean or recode"),
    Case("thousands separators in the treatment", "table",
         _with("va_index", lambda f: [f"{1000 + 1000 * v:,.1f}" for v in f["va_index"]]),
         "va_index", r"must be numeric but holds text"),
    Case("firm type with hundreds of levels", "table",
         _with("ownership", _levels(300, "own")),
         "ownership", r"text with 300 levels.*Group its levels into a few"),
    Case("text modifier with hundreds of levels", "table",
         _with("district", _levels(400, "D")),
         "district", r"400 levels.*one-hot columns.*`data\.max_levels`",
         roles={"modifiers": [*TABLE_ROLES["modifiers"], "district"]}),
    Case("duplicate firms in a table", "table", _duplicate_rows([5]),
         "firm_id", r"one row per unit: aggregate or drop the duplicates"),
    Case("every firm in a cluster of its own", "table",
         _with("city", lambda f: f["firm_id"]),
         "city", r"puts a single firm in 600 of its 600 clusters.*leave `roles\.cluster` unset"),
    Case("all firms in one cluster", "table", _with("city", lambda f: "C001"),
         "city", r"single value \('C001'\) for all 600 firms"),
    Case("firm type with one level", "table", _with("trade_mode", lambda f: "general"),
         "trade_mode", r"single level \('general'\).*remove 'trade_mode' from `roles\.firm_types`"),
    Case("firm type level with too few firms", "table", _at("ownership", [0, 1, 2], "collective"),
         "ownership", r"fewer than 20 firms: 'collective' \(3\)"),
    Case("all-missing mechanism column", "table", _with("smart_green", lambda f: np.nan),
         "smart_green", r"is empty: all 600 values are missing.*remove 'smart_green'"),
    Case("all-missing mediator column", "table",
         _with("d_knowledge_spillover", lambda f: np.nan),
         "d_knowledge_spillover", r"is empty"),
    Case("all-missing outcome", "table", _with("resilience", lambda f: np.nan),
         "resilience", r"roles\.outcome: .* is empty"),
    Case("treatment with under 1% variation", "table", _rare_treatment,
         "va_index", r"0\.0 in 99\.5% of the rows \(only 3 of 600 differ"),
    Case("constant treatment", "table", _with("va_index", lambda f: 2.0),
         "va_index", r"is constant"),
    Case("missing values in a control", "table", _at("productivity", [3, 9], np.nan),
         "productivity", r"2 missing values \(rows 3, 9\); drop or impute"),
    Case("infinite value in a control", "table", _at("geo_agglom", [2], np.inf),
         "geo_agglom", r"infinite values.*cap the values"),
    Case("misspelt firm-type column", "table",
         lambda f: f.rename(columns={"trade_mode": "trademode"}),
         "trade_mode", r"is not in the data; did you mean 'trademode'"),
    Case("a CSV mixing UTF-8 and GBK lines", "table", _same,
         "city", r"mixes two text encodings.*re-save the parts in one encoding",
         write="gbk_mixed"),
    Case("Stata extended missing values (.a) in a control", "table", _same,
         "productivity", r"Stata extended missing values among them: \.a \(1\)", write="dta_a"),
    # ---------------------------------------------------------------- panel mode
    Case("duplicate firm-years", "panel", _duplicate_rows([5, 6]),
         "firm_id", r"share a \(firm, year\) pair.*one row per firm-year"),
    Case("unit suffix in a panel control ('12y')", "panel",
         _with("firm_age", lambda f: [f"{round(a)}y" for a in f["firm_age"]]),
         "firm_age", r"numbers stored as text"),
    Case("thousands separators in exports", "panel",
         _with("exports", lambda f: [f"{v:,.0f}" for v in f["exports"]]),
         "exports", r"must be numeric but holds text"),
    Case("fractional years", "panel", _at("year", [3], 2015.5),
         "year", r"must hold integer years"),
    Case("negative exports", "panel", _at("exports", [8], -5.0),
         "exports", r"negative export values"),
    Case("panel firm type with hundreds of levels", "panel",
         _with("ownership", _firm_levels(200, "own")),
         "ownership", r"text with 200 levels"),
    Case("panel text modifier with hundreds of levels", "panel",
         _with("district", _firm_levels(300, "D")),
         "district", r"300 levels.*one-hot columns",
         roles={"modifiers": [*PANEL_ROLES["modifiers"], "district"]}),  # type: ignore[list-item]
    Case("panel firm type with one level", "panel", _with("region", lambda f: "east"),
         "region", r"single level \('east'\)"),
    Case("panel firms each in a city of their own", "panel",
         _with("city", lambda f: [f"C{i}" for i in f["firm_id"]]),
         "city", r"puts a single firm in \d+ of its \d+ clusters"),
    Case("panel all-missing mechanism column", "panel", _with("congestion", lambda f: np.nan),
         "congestion", r"is empty"),
    Case("panel all-missing VA component", "panel", _with("broadband_rate", lambda f: np.nan),
         "broadband_rate", r"roles\.va_components: .* is empty"),
    Case("text in the instrument", "panel", _at("pilot", [4], "yes"),
         "pilot", r"must be numeric but holds text"),
    Case("missing year column", "panel", _drop("year"),
         "year", r"is not in the data"),
    Case("a panel CSV mixing UTF-8 and GBK lines", "panel", _same,
         "city", r"mixes two text encodings", write="gbk_mixed"),
    Case("Stata extended missing values (.a) in exports", "panel", _same,
         "exports", r"missing values.*Stata extended missing values among them: \.a \(1\)",
         write="dta_a"),
]  # fmt: skip


@pytest.fixture(scope="module")
def good_table() -> pd.DataFrame:
    return make_synthetic_table(
        SyntheticTableConfig(n_units=600, n_clusters=30), random_state=1
    ).frame


@pytest.fixture(scope="module")
def good_panel() -> pd.DataFrame:
    frame = make_synthetic_panel(
        SyntheticPanelConfig(n_firms=800, n_cities=30, n_industries=5), random_state=4
    ).frame
    return frame.reset_index(drop=True)


def _write_mixed(frame: pd.DataFrame, path: Path) -> None:
    """The frame as CSV with Chinese city names: the header and first half of the rows in
    UTF-8, the rest in GBK (two exports pasted together)."""
    frame = frame.copy()
    names = {c: f"城市{i}" for i, c in enumerate(sorted(frame["city"].unique()))}
    frame["city"] = frame["city"].map(names)
    text = frame.to_csv(index=False)
    lines = text.splitlines(keepends=True)
    half = len(lines) // 2
    path.write_bytes("".join(lines[:half]).encode("utf-8") + "".join(lines[half:]).encode("gbk"))


def _write_stata_a(frame: pd.DataFrame, path: Path, column: str, row: int) -> None:
    """The frame as .dta with ``frame.loc[row, column]`` stored as Stata's ``.a``."""
    frame = frame.copy()
    for name in frame.columns:
        if pd.api.types.is_string_dtype(frame[name]) or frame[name].dtype == object:
            frame[name] = frame[name].astype(str)
    marker = 987654.321012345
    frame[column] = frame[column].astype(np.float64)
    frame.loc[row, column] = marker
    frame.to_stata(path, write_index=False)
    data = path.read_bytes()
    assert data.count(struct.pack("<d", marker)) == 1
    dot_a = struct.pack("<Q", 0x7FE0010000000000)  # Stata's '.a' (double)
    path.write_bytes(data.replace(struct.pack("<d", marker), dot_a))


def _experiment(tmp_path: Path, case: Case, data_file: Path) -> Path:
    roles = copy.deepcopy(TABLE_ROLES if case.mode == "table" else PANEL_ROLES)
    roles.update(copy.deepcopy(case.roles))
    raw = {
        "name": "bad",
        "data": {"path": str(data_file), "mode": case.mode},
        "roles": roles,
        "estimators": [{"kind": "linear_dml"}],
        "tracking": {"enabled": False},
        "robustness": {"enabled": False},
        "report": {"out": str(tmp_path / "report"), "formats": ["csv"]},
    }
    return write_yaml(tmp_path / "bad.yaml", raw)


def _prepare(case: Case, tmp_path: Path, table: pd.DataFrame, panel: pd.DataFrame) -> Path:
    good = table if case.mode == "table" else panel
    frame = case.change(good.copy())
    if case.write == "gbk_mixed":
        path = tmp_path / "firms.csv"
        _write_mixed(frame, path)
    elif case.write == "dta_a":
        path = tmp_path / "firms.dta"
        _write_stata_a(frame, path, case.column, row=6)
    else:
        path = tmp_path / "firms.csv"
        frame.to_csv(path, index=False)
    return _experiment(tmp_path, case, path)


def test_the_catalogue_has_at_least_30_cases_of_both_modes() -> None:
    modes = [case.mode for case in CASES]
    assert len(CASES) >= 30
    assert modes.count("table") >= 10 and modes.count("panel") >= 10


@pytest.mark.parametrize("mode", ["table", "panel"])
def test_the_good_files_pass(
    mode: str, tmp_path: Path, good_table: pd.DataFrame, good_panel: pd.DataFrame
) -> None:
    experiment = _prepare(Case("good", mode, _same, "", ""), tmp_path, good_table, good_panel)
    done = runner.invoke(app, ["validate", str(experiment)])
    assert done.exit_code == 0, done.output


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_exits_2_naming_the_column_and_the_fix(
    case: Case, tmp_path: Path, good_table: pd.DataFrame, good_panel: pd.DataFrame
) -> None:
    experiment = _prepare(case, tmp_path, good_table, good_panel)
    done = runner.invoke(app, ["validate", str(experiment)])
    assert done.exit_code == 2, done.output
    message = " ".join(done.output.split())  # Rich wraps long lines
    assert f"'{case.column}'" in message, message
    assert pytest.importorskip("re").search(case.fix, message), (case.fix, message)


@pytest.mark.parametrize(
    "name", ["unit suffix in a numeric modifier ('12y')", "duplicate firm-years"]
)
def test_vaer_run_stops_before_fitting(
    name: str, tmp_path: Path, good_table: pd.DataFrame, good_panel: pd.DataFrame
) -> None:
    case = next(c for c in CASES if c.name == name)
    experiment = _prepare(case, tmp_path, good_table, good_panel)
    done = runner.invoke(app, ["run", str(experiment)])
    assert done.exit_code == 2, done.output
    assert f"'{case.column}'" in done.output
    assert "estimating effects" not in done.output
    assert not (tmp_path / "report").exists()


def test_a_gbk_csv_is_read_with_its_encoding(tmp_path: Path, good_table: pd.DataFrame) -> None:
    frame = good_table.copy()
    frame["ownership"] = frame["ownership"].map(
        {"SOE": "国有", "private": "民营", "foreign": "外资"}
    )
    assert frame["ownership"].notna().all()
    path = tmp_path / "firms.csv"
    frame.to_csv(path, index=False, encoding="gbk")
    from vaer.data.readers import read_frame

    assert sorted(read_frame(path)["ownership"].unique()) == sorted(["国有", "民营", "外资"])
    done = runner.invoke(app, ["validate", str(_experiment(tmp_path, CASES[0], path))])
    assert done.exit_code == 0, done.output
