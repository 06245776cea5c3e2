from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import BASE_ROLES
from vaer.config.models import Roles, SyntheticTableConfig
from vaer.data import (
    DataValidationError,
    build_analysis_data,
    make_synthetic_table,
    read_frame,
    validate_table,
)
from vaer.data.design import sample_clusters

ROLES = Roles(**BASE_ROLES)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return make_synthetic_table(
        SyntheticTableConfig(n_units=600, n_clusters=30), random_state=1
    ).frame


def test_synthetic_truth_is_consistent() -> None:
    synthetic = make_synthetic_table(SyntheticTableConfig(n_units=1000, ate=0.3), random_state=2)
    truth = synthetic.truth
    assert truth.ate == pytest.approx(0.3)
    assert len(truth.tau) == 1000
    units = synthetic.frame["firm_id"].to_numpy()[::-1]
    np.testing.assert_array_equal(truth.tau_for(units), truth.tau[::-1])
    # true SHAP values sum to tau minus its mean, firm by firm
    np.testing.assert_allclose(truth.shap_for(units).sum(axis=1), truth.tau_for(units) - truth.ate)
    # true GATEs are group means of tau
    frame = synthetic.frame
    expected = pd.Series(truth.tau).groupby(frame["ownership"].to_numpy()).mean()
    pd.testing.assert_series_equal(truth.gates("ownership"), expected)
    shares = truth.channel_shares()
    assert shares.sum() == pytest.approx(1.0)
    assert shares.idxmax() == "knowledge_spillover"
    assert shares["smart_green"] == 0.0
    assert set(truth.mediator_effects) <= set(frame.columns)


def test_synthetic_table_is_reproducible() -> None:
    a = make_synthetic_table(SyntheticTableConfig(n_units=300), random_state=5).frame
    b = make_synthetic_table(SyntheticTableConfig(n_units=300), random_state=5).frame
    pd.testing.assert_frame_equal(a, b)


def test_valid_table_passes(table: pd.DataFrame) -> None:
    validate_table(table, ROLES)


def _broken(table: pd.DataFrame, how: str) -> pd.DataFrame:
    bad = table.copy()
    if how == "missing_column":
        bad = bad.drop(columns=["productivity"])
    elif how == "misspelt_column":
        bad = bad.rename(columns={"trade_mode": "trademode"})
    elif how == "duplicate_units":
        bad.loc[5, "firm_id"] = bad.loc[4, "firm_id"]
    elif how == "text_in_outcome":
        bad["resilience"] = bad["resilience"].astype(object)
        bad.loc[7, "resilience"] = "n/a"
    elif how == "nan_in_treatment":
        bad.loc[[3, 9], "va_index"] = np.nan
    elif how == "inf_in_control":
        bad.loc[2, "productivity"] = np.inf
    elif how == "constant_treatment":
        bad["va_index"] = 1.0
    elif how == "small_firm_type":
        bad.loc[:4, "ownership"] = "collective"
    return bad


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("missing_column", r"roles\.controls: column 'productivity' is not in the data"),
        ("misspelt_column", r"column 'trade_mode' is not in the data; did you mean 'trademode'\?"),
        (
            "duplicate_units",
            r"roles\.unit: column 'firm_id' has 2 rows sharing 1 ids .*one row per unit",
        ),
        (
            "text_in_outcome",
            r"roles\.outcome: column 'resilience' must be numeric but holds text \(rows 7, e\.g\. 'n/a'\)",
        ),
        (
            "nan_in_treatment",
            r"roles\.treatment: column 'va_index' has 2 missing values \(rows 3, 9\); drop or impute",
        ),
        (
            "inf_in_control",
            r"roles\.controls: column 'productivity' has 1 infinite values \(rows 2\)",
        ),
        ("constant_treatment", r"roles\.treatment: column 'va_index' is constant"),
        (
            "small_firm_type",
            r"roles\.firm_types: column 'ownership' has levels with fewer than 20 firms: 'collective' \(5\)",
        ),
    ],
)
def test_bad_tables_get_one_clear_message(table: pd.DataFrame, how: str, message: str) -> None:
    with pytest.raises(DataValidationError, match=message):
        validate_table(_broken(table, how), ROLES)


def test_several_problems_are_reported_in_one_pass(table: pd.DataFrame) -> None:
    bad = _broken(_broken(table, "nan_in_treatment"), "inf_in_control")
    with pytest.raises(DataValidationError) as caught:
        validate_table(bad, ROLES)
    assert len(caught.value.problems) == 2


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".dta"])
def test_readers_round_trip(tmp_path: Path, table: pd.DataFrame, suffix: str) -> None:
    path = tmp_path / f"firms{suffix}"
    if suffix == ".csv":
        table.to_csv(path, index=False)
    elif suffix == ".parquet":
        table.to_parquet(path, index=False)
    else:
        table.to_stata(path, write_index=False)
    loaded = read_frame(path)
    assert list(loaded.columns) == list(table.columns)
    np.testing.assert_allclose(loaded["resilience"], table["resilience"])


def test_reader_errors(tmp_path: Path) -> None:
    with pytest.raises(
        FileNotFoundError, match=r"data file not found: .*nope\.csv \(check `data\.path`\)"
    ):
        read_frame(tmp_path / "nope.csv")
    odd = tmp_path / "firms.xlsx"
    odd.write_bytes(b"x")
    with pytest.raises(ValueError, match=r"unknown extension '\.xlsx'; use one of"):
        read_frame(odd)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(ValueError, match=r"cannot read parquet file .*broken\.parquet"):
        read_frame(broken)


def test_design_encodes_categoricals_and_keeps_names(table: pd.DataFrame) -> None:
    data = build_analysis_data(table, ROLES)
    levels = sorted(table["ownership"].unique())
    assert data.feature_groups["ownership"] == [f"ownership={level}" for level in levels[1:]]
    assert data.feature_groups["knowledge_spillover"] == ["knowledge_spillover"]
    assert all(dtype == np.float64 for dtype in data.x.dtypes)
    assert list(data.w.columns) == ["city_dev", "productivity", "geo_agglom", "firm_age"]
    assert data.n_clusters == table["city"].nunique()
    assert data.firm_types.shape == (len(table), 5)


def test_sample_clusters_takes_whole_clusters_up_to_the_cap() -> None:
    clusters = np.repeat(np.arange(50), 20)  # 1000 units
    assert sample_clusters(clusters, None, 0) is None
    assert sample_clusters(clusters, 1000, 0) is None
    keep = sample_clusters(clusters, 330, 0)
    assert keep is not None and keep.sum() == 340  # 17 whole clusters of 20
    kept = set(clusters[keep])
    assert all(keep[clusters == c].all() for c in kept)
    np.testing.assert_array_equal(keep, sample_clusters(clusters, 330, 0))
    assert not np.array_equal(keep, sample_clusters(clusters, 330, 1))
