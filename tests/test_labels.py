"""Stata value and variable labels, and the ``labels:`` block, through every stage.

A ``.dta`` file whose firm-type column carries value labels (read by pandas as
``category``) and a Chinese name used to fit everything and then fail when MLflow logged
the CATE model ("Can not safely convert category to <U0"), leaving the run FAILED. The
end-to-end test runs ``vaer init`` and ``vaer run`` on such a file in an empty folder and
predicts with the logged model from rows read back from the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import BASE_ROLES
from vaer.cli import app
from vaer.config.estimators import DRLearnerParams, LinearDMLParams
from vaer.config.labels import LabelsConfig, value_key
from vaer.config.models import ExperimentConfig, SyntheticTableConfig
from vaer.data.labels import apply_value_labels, display_labels
from vaer.data.readers import read_frame
from vaer.data.synthetic_table import make_synthetic_table
from vaer.data.validation import DataValidationError
from vaer.estimators.registry import get_kind
from vaer.measures.study import load_study_data
from vaer.reporting.figures import cate_histogram, treatment_overlap
from vaer.reporting.heterogeneity import gate_forest_plot
from vaer.reporting.labels import ReportLabels
from vaer.reporting.latex import SPECS, latex_table

runner = CliRunner()

OWNERSHIP = {"SOE": 1, "private": 2, "foreign": 3}
ZH_OWNERSHIP = {1: "国有", 2: "民营", 3: "外资"}
VARIABLE_LABELS = {"所有制": "企业所有制", "va_index": "虚拟集聚指数", "resilience": "出口韧性"}
FIXED_WORDS = (
    "VA index",
    "one more unit of VA",
    "of VA on",
    "export resilience",
    "virtual agglomeration",
)


def _table(n_units: int = 600, n_clusters: int = 30, seed: int = 1) -> pd.DataFrame:
    config = SyntheticTableConfig(n_units=n_units, n_clusters=n_clusters)
    return make_synthetic_table(config, random_state=seed).frame


def write_labelled_dta(path: Path) -> pd.DataFrame:
    """The synthetic table as Stata 118 with ownership coded 1/2/3 under the Chinese name
    ``所有制``, value-labelled in Chinese, and Chinese variable labels."""
    keep = ["firm_id", "city", "trade_mode", "city_dev", "productivity",
            "knowledge_spillover", "export_cost", "va_index", "resilience"]  # fmt: skip
    frame = _table()
    out = frame[keep].copy()
    out["所有制"] = frame["ownership"].map(OWNERSHIP).astype("int8")
    out.to_stata(path, write_index=False, version=118, value_labels={"所有制": ZH_OWNERSHIP},
                 variable_labels=VARIABLE_LABELS)  # fmt: skip
    return out


def _invoke(*args: str) -> str:
    done = runner.invoke(app, list(args))
    assert done.exit_code == 0, done.output
    return done.output


# ---------------------------------------------------------------- the whole run


@pytest.fixture(scope="module")
def dta_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``vaer init`` then ``vaer run`` on a labelled ``.dta`` file, in an empty folder."""
    folder = tmp_path_factory.mktemp("dta_study")
    before = Path.cwd()
    uri = f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"
    os.chdir(folder)
    try:
        write_labelled_dta(Path("firms.dta"))
        _invoke("init", "firms.dta", "-o", "study.yaml")
        sets = ["robustness.enabled=false", f"tracking.uri={uri}",
                "estimators.0.params.n_estimators=100", "estimators.0.params.cv=3",
                "estimators.1.params.cv=3"]  # fmt: skip
        output = _invoke("run", "study.yaml", *[a for s in sets for a in ("--set", s)])
        run_id = re.search(r"MLflow run id: (\w+)", output)
        assert run_id is not None, output
        (report,) = Path("reports").glob("*/report.html")
        yield {
            "folder": folder,
            "uri": uri,
            "run_id": run_id.group(1),
            "report": report.parent,
            "console": "".join(output.split()),
        }
    finally:
        os.chdir(before)


@pytest.mark.integration
@pytest.mark.slow
def test_labelled_dta_run_finishes_and_its_model_predicts_raw_rows(
    dta_run: dict[str, Any],
) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=dta_run["uri"])
    assert client.get_run(dta_run["run_id"]).info.status == "FINISHED"
    mlflow.set_tracking_uri(dta_run["uri"])
    try:
        model = mlflow.pyfunc.load_model(f"runs:/{dta_run['run_id']}/cate_model")
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    inputs = {spec.name: repr(spec.type) for spec in model.metadata.get_input_schema().inputs}
    assert inputs["所有制"] == "Any" and inputs["trade_mode"] == "Any"
    assert inputs["city_dev"] == "double"
    raw = pd.read_stata(dta_run["folder"] / "firms.dta").head(40)
    assert isinstance(raw["所有制"].dtype, pd.CategoricalDtype)  # what the bug needed
    predicted = model.predict(raw)
    assert len(predicted) == 40 and np.isfinite(predicted["tau_hat"]).all()
    # the same firms as plain text (a CSV export) give the same effects
    plain = raw.astype({"所有制": str}).astype({"所有制": object})
    np.testing.assert_array_equal(model.predict(plain)["tau_hat"], predicted["tau_hat"])
    # and the effect differs by ownership level as the fitted model says
    for_each = raw.head(3).copy()
    for_each["所有制"] = pd.Categorical(["国有", "民营", "外资"])
    assert model.predict(for_each)["tau_hat"].nunique() == 3
    unseen = raw.head(2).astype({"所有制": object})
    unseen.loc[:, "所有制"] = "集体"
    with pytest.raises(Exception, match="column '所有制' has levels \\['集体'\\] not seen"):
        model.predict(unseen)


@pytest.mark.integration
@pytest.mark.slow
def test_value_and_variable_labels_reach_tables_and_report(dta_run: dict[str, Any]) -> None:
    tables = dta_run["report"] / "tables"
    gate = pd.read_csv(tables / "gate.csv")
    levels = set(gate.loc[gate["dimension"] == "所有制", "level"])
    assert levels == set(ZH_OWNERSHIP.values())
    ate = pd.read_csv(tables / "ate.csv")
    assert (ate["estimand"] == "average partial effect of one more unit of 虚拟集聚指数").all()
    html = (dta_run["report"] / "report.html").read_text(encoding="utf-8")
    assert "<h1>Effect of 虚拟集聚指数 on 出口韧性</h1>" in html
    assert "企业所有制 (所有制)" in html and "出口韧性 (resilience)" in html
    assert "effect of 虚拟集聚指数 on 出口韧性 (tau_hat)" in html  # the histogram's axis
    assert "group average effect of 虚拟集聚指数 on 出口韧性" in html  # the GATE plot's axis
    # the GATE table shows the dimension by its variable label, the levels by value label
    assert re.search(r"<td[^>]*>企业所有制</td>\s*<td[^>]*>国有</td>", html)
    for words in FIXED_WORDS:
        assert words not in html, words
    assert "Averageeffectof虚拟集聚指数on出口韧性" in dta_run["console"]
    assert "GATEsequalacross企业所有制" in dta_run["console"]
    latex = (dta_run["report"] / "latex" / "ate.tex").read_text(encoding="utf-8")
    assert "Average effect of 虚拟集聚指数 on 出口韧性" in latex


# ------------------------------------------------------------ reading and config


def test_dta_variable_labels_are_kept_and_value_labels_become_categories(tmp_path: Path) -> None:
    write_labelled_dta(tmp_path / "f.dta")
    frame = read_frame(tmp_path / "f.dta")
    assert frame.attrs["variable_labels"] == VARIABLE_LABELS
    assert list(frame["所有制"].cat.categories) == ["国有", "民营", "外资"]


def _config(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "labels",
        "data": {"path": "firms.csv"},
        "roles": {**BASE_ROLES, "modifiers": [*BASE_ROLES["modifiers"]]},
        "estimators": [{"kind": "linear_dml"}],
    }
    raw.update(changes)
    return raw


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"sales": "Sales"}, r"`labels.sales`: 'sales' is not a column of any role"),
        (
            {"va_index": {"values": {1: "high"}}},
            r"`labels.va_index.values`: value labels make a column categorical, but "
            r"'va_index' is the treatment",
        ),
        ({"ownership": {"values": {1: "a", 2: "a"}}}, r"1 and 2 have the same label 'a'"),
        ({"ownership": {"values": {1: "a", 2: ""}}}, r"the labels of \['2'\] are empty"),
        ({"ownership": {"label": " "}}, r"`label` must be non-empty text"),
        ({"ownership": 3}, r"`labels.ownership` must be a display label"),
        ({"ownership": {"lable": "x"}}, r"lable"),
    ],
)
def test_labels_block_errors_name_the_column(labels: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ExperimentConfig.model_validate(_config(labels=labels))


def test_value_keys_match_numbers_and_text() -> None:
    assert value_key(1) == value_key(1.0) == value_key("1") == value_key(np.int8(1)) == "1"
    assert value_key(1.5) == "1.5" and value_key("SOE") == "SOE"
    config = LabelsConfig.model_validate({"own": {"label": "O", "values": {1: "a", 2.0: "b"}}})
    assert config.value_labels() == {"own": {"1": "a", "2": "b"}}
    assert LabelsConfig.model_validate(config.model_dump(mode="json")) == config
    # a later key for the same value wins (a --set override of a YAML number key)
    later = LabelsConfig.model_validate({"own": {"values": {1: "a", "1": "b"}}})
    assert later.value_labels() == {"own": {"1": "b"}}


def test_labels_block_on_a_csv_makes_firm_types_and_display_labels(tmp_path: Path) -> None:
    frame = _table(n_units=400, n_clusters=20)
    frame["ownership"] = frame["ownership"].map(OWNERSHIP)
    frame.to_csv(tmp_path / "firms.csv", index=False)
    labels = {
        "ownership": {"label": "Ownership", "values": {1: "state", 2: "private", 3: "foreign"}},
        "va_index": "Digital agglomeration",
    }
    config = ExperimentConfig.model_validate(
        _config(data={"path": str(tmp_path / "firms.csv")}, labels=labels)
    )
    study = load_study_data(config.data, config.roles, seed=0, labels=config.labels)
    expected = frame["ownership"].map({1: "state", 2: "private", 3: "foreign"})
    assert (study.frame["ownership"].astype(str) == expected).all()
    assert study.label("va_index") == "Digital agglomeration"
    assert study.label("ownership") == "Ownership"
    assert study.label("resilience") == "resilience"  # default: the column name
    # unlabelled values stop the run before anything is fitted, naming the column
    frame.loc[:3, "ownership"] = 4
    frame.to_csv(tmp_path / "firms.csv", index=False)
    with pytest.raises(
        DataValidationError,
        match=r"labels.ownership.values: column 'ownership' holds values without a label \(4; 4 rows\)",
    ):
        load_study_data(config.data, config.roles, seed=0, labels=config.labels)


def test_value_labels_keep_missing_values_and_config_labels_override_the_file() -> None:
    frame = pd.DataFrame({"t": [1.0, np.nan, 2.0]})
    out, problems = apply_value_labels(frame, {"t": {"1": "one", "2": "two"}})
    assert problems == [] and out["t"].isna().tolist() == [False, True, False]
    assert list(out["t"].cat.categories) == ["one", "two"]
    _, missing = apply_value_labels(frame, {"u": {"1": "one"}})
    assert missing and "column 'u' is not in the data" in missing[0]
    shown = display_labels(["a", "b", "c"], {"a": "file A", "b": "file B"}, {"b": "config B"})
    assert shown == {"a": "file A", "b": "config B", "c": "c"}


# ------------------------------------------------------------------ the words


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (LinearDMLParams(), "average partial effect of one more unit of cigarettes"),
        (
            DRLearnerParams(),
            "average effect of high vs low cigarettes (high = cigarettes above its median)",
        ),
    ],
)
def test_estimand_names_the_treatment(params: Any, expected: str) -> None:
    kind = "linear_dml" if isinstance(params, LinearDMLParams) else "dr_learner"
    assert get_kind(kind).estimand(params, "cigarettes") == expected
    assert "VA" not in get_kind(kind).estimand(params)


def _labels() -> ReportLabels:
    meta = {
        "roles": {"treatment": "cigs", "outcome": "quit"},
        "labels": {"cigs": "Cigarettes per day", "quit": "Quit smoking", "sex": "Sex"},
    }
    return ReportLabels.from_meta(meta)


def test_report_labels_default_to_column_names() -> None:
    plain = ReportLabels.from_meta({"roles": {"treatment": "cigs", "outcome": "quit"}})
    assert (plain.treatment, plain.outcome, plain.full("cigs")) == ("cigs", "quit", "cigs")
    labels = _labels()
    assert labels.full("cigs") == "Cigarettes per day (cigs)"
    assert labels.of("sex x cigs") == "Sex x Cigarettes per day"
    assert labels.of("sex=f") == "Sex=f" and labels.of("age=1") == "age=1"
    assert labels.rule("sex = f & cigs <= 3.5") == "Sex = f & Cigarettes per day <= 3.5"


def test_tables_are_relabelled_for_display_only() -> None:
    gate = pd.DataFrame({"dimension": ["sex", "age"], "level": ["f", "1"]})
    shown = _labels().relabel_tables({"gate": gate, "ate": pd.DataFrame({"x": ["sex"]})})
    assert shown["gate"]["dimension"].tolist() == ["Sex", "age"]
    assert gate["dimension"].tolist() == ["sex", "age"]  # the bundle's own table unchanged
    assert shown["ate"]["x"].tolist() == ["sex"]


def test_figures_and_latex_use_the_role_labels() -> None:
    rng = np.random.default_rng(0)
    labels = _labels()
    cate = pd.DataFrame({"estimator": "linear_dml", "tau_hat": rng.normal(size=200)})
    ate = pd.DataFrame(
        {"estimator": ["linear_dml"], "estimand": ["e"], "estimate": [0.1], "se": [0.05],
         "ci_low": [0.0], "ci_high": [0.2], "n": [200], "se_type": ["cluster-robust (DR scores)"]}
    )  # fmt: skip
    svg = cate_histogram(cate, ate, labels)
    assert "effect of Cigarettes per day on Quit smoking (tau_hat)" in svg
    treatment = pd.DataFrame({"treatment": rng.normal(size=200), "t_hat": rng.normal(size=200)})
    assert "Cigarettes per day (treatment)" in treatment_overlap(treatment, labels)
    gate = pd.DataFrame(
        {"estimator": "linear_dml", "dimension": ["Sex", "Sex"], "level": ["f", "m"],
         "estimate": [0.1, 0.2], "ci_low": [0.0, 0.1], "ci_high": [0.2, 0.3]}
    )  # fmt: skip
    assert "group average effect of Cigarettes per day on Quit smoking" in gate_forest_plot(
        gate, ate, labels
    )
    spec = next(s for s in SPECS if s.table == "ate")
    text = latex_table(ate, spec, labels=labels)
    assert "Average effect of Cigarettes per day on Quit smoking" in text
    default = latex_table(ate, spec)
    assert "Average effect of treatment on outcome" in default
    for svg_or_tex in (svg, text, default):
        for words in FIXED_WORDS:
            assert words not in svg_or_tex


def test_a_misspelt_key_in_the_labels_block_is_named_with_the_fix() -> None:
    from vaer.config.loader import ConfigError, validate_config

    with pytest.raises(ConfigError, match=r"labels.ownership.lable: unknown key; did you mean"):
        validate_config(_config(labels={"ownership": {"lable": "Ownership"}}))
