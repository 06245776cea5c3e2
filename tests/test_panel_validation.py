"""A catalogue of bad firm-year panels, each with the message it must produce."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from vaer.config.models import Roles
from vaer.config.panel import SyntheticPanelConfig
from vaer.data.panel_validation import validate_panel
from vaer.data.synthetic import PANEL_ROLES, make_synthetic_panel
from vaer.data.validation import DataValidationError

ROLES = Roles(**PANEL_ROLES)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def good() -> pd.DataFrame:
    frame = make_synthetic_panel(
        SyntheticPanelConfig(n_firms=800, n_cities=30, n_industries=5), random_state=4
    ).frame
    return frame.copy()


def _set(column: str, rows: list[int], value: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        if isinstance(value, str) or (value is None and frame[column].dtype != object):
            frame[column] = frame[column].astype(object)
        if isinstance(value, float) and pd.api.types.is_integer_dtype(frame[column]):
            frame[column] = frame[column].astype(np.float64)
        frame.loc[rows, column] = value
        return frame

    return change


def _rename(old: str, new: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda frame: frame.rename(columns={old: new})


def _duplicate(rows: list[int]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda frame: pd.concat([frame, frame.loc[rows]], ignore_index=True)


def _chain(
    *changes: Callable[[pd.DataFrame], pd.DataFrame],
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        for step in changes:
            frame = step(frame)
        return frame

    return change


def _rare_type(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    first = frame["firm_id"].iloc[0]
    frame.loc[frame["firm_id"] == first, "ownership"] = "collective"
    return frame


def _continuous_type(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["size_class"] = frame["productivity"]
    return frame


CATALOGUE: list[tuple[str, Callable[[pd.DataFrame], pd.DataFrame], dict[str, Any], list[str]]] = [
    (
        "unit column misspelt",
        _rename("firm_id", "firmid"),
        {},
        [r"roles\.unit: column 'firm_id' is not in the data; did you mean 'firmid'\?"],
    ),
    (
        "year column missing",
        lambda f: f.drop(columns=["year"]),
        {},
        [r"roles\.time: column 'year' is not in the data"],
    ),
    ("time role unset", lambda f: f, {"time": None}, [r"roles\.time: panel mode needs the year"]),
    (
        "exports role unset",
        lambda f: f,
        {"exports": None},
        [r"roles\.exports: panel mode needs the export value column"],
    ),
    (
        "exports column missing",
        _rename("exports", "Exports"),
        {},
        [r"roles\.exports: column 'exports' is not in the data; did you mean 'Exports'\?"],
    ),
    (
        "no VA components",
        lambda f: f,
        {"va_components": []},
        [r"roles\.va_components: panel mode builds the VA index"],
    ),
    ("no city", lambda f: f, {"cluster": None}, [r"roles\.cluster: panel mode needs the city"]),
    (
        "duplicate firm-year",
        _duplicate([5, 6]),
        {},
        [r"4 rows share a \(firm, year\) pair.*rows 5, 6, \d+, \d+.*aggregate the duplicates"],
    ),
    (
        "negative exports",
        _set("exports", [3, 8], -10.0),
        {},
        [
            r"roles\.exports: column 'exports' has 2 negative export values \(rows 3, 8, e\.g\. -10\.0\)"
        ],
    ),
    (
        "missing exports",
        _set("exports", [4], np.nan),
        {},
        [r"column 'exports' has 1 missing values \(rows 4\); use 0 for a year without exports"],
    ),
    (
        "text in exports",
        _set("exports", [2], "n/a"),
        {},
        [
            r"roles\.exports: column 'exports' must be numeric but holds text in 1 rows \(rows 2, e\.g\. 'n/a'\)"
        ],
    ),
    (
        "infinite exports",
        _set("exports", [7], np.inf),
        {},
        [r"roles\.exports: column 'exports' has 1 infinite values \(rows 7\)"],
    ),
    (
        "fractional year",
        _set("year", [9], 2010.5),
        {},
        [r"roles\.time: column 'year' must hold integer years .*e\.g\. 2010\.5"],
    ),
    (
        "text year",
        _set("year", [10], "FY2010"),
        {},
        [
            r"roles\.time: column 'year' must be numeric but holds text in 1 rows \(rows 10, e\.g\. 'FY2010'\)"
        ],
    ),
    (
        "missing firm id",
        _set("firm_id", [11], None),
        {},
        [r"roles\.unit: column 'firm_id' has 1 missing values \(rows 11\); drop these rows"],
    ),
    (
        "text instrument",
        _set("pilot", [12, 13, 14, 15, 16, 17], "yes"),
        {},
        [
            r"roles\.instrument: column 'pilot' must be numeric .* \(rows 12, 13, 14, 15, 16 and 1 more"
        ],
    ),
    (
        "infinite VA component",
        _set("ict_share", [20], np.inf),
        {},
        [r"roles\.va_components: column 'ict_share' has 1 infinite values"],
    ),
    (
        "text in a mechanism proxy",
        _set("congestion", [21], "high"),
        {},
        [r"roles\.mechanisms\.congestion_relief: column 'congestion' must be numeric"],
    ),
    (
        "rare firm type",
        _rare_type,
        {},
        [
            r"roles\.firm_types: column 'ownership' has levels with fewer than 20 firms: 'collective' \(1\)"
        ],
    ),
    (
        "continuous firm type",
        _continuous_type,
        {},
        [r"roles\.firm_types: column 'size_class' looks continuous .* bin it"],
    ),
    (
        "mixture: duplicates, negative exports and text instrument",
        _chain(_set("exports", [3], -1.0), _set("pilot", [12], "no"), _duplicate([5])),
        {},
        [r"share a \(firm, year\) pair", r"negative export values", r"'pilot' must be numeric"],
    ),
    (
        "mixture: misspelt proxy, missing exports, fractional year, rare type",
        _chain(
            _rename("smart_green", "smartgreen"),
            _set("exports", [4], np.nan),
            _set("year", [9], 2011.25),
            _rare_type,
        ),
        {},
        [
            r"column 'smart_green' is not in the data; did you mean 'smartgreen'\?",
            r"'exports' has 1 missing values",
            r"integer years",
            r"fewer than 20 firms",
        ],
    ),
]


@pytest.mark.parametrize(
    ("name", "change", "role_changes", "messages"), CATALOGUE, ids=[c[0] for c in CATALOGUE]
)
def test_bad_panels_get_every_expected_message(
    good: pd.DataFrame,
    name: str,
    change: Callable[[pd.DataFrame], pd.DataFrame],
    role_changes: dict[str, Any],
    messages: list[str],
) -> None:
    frame = change(good.copy())
    roles = ROLES.model_copy(update=role_changes)
    with pytest.raises(DataValidationError) as caught:
        validate_panel(frame, roles, min_firms_per_type=20, source="bad.parquet")
    text = str(caught.value)
    assert "in bad.parquet" in text
    for message in messages:
        assert any(re.search(message, problem) for problem in caught.value.problems), (
            f"{name}: {message!r} not in {caught.value.problems}"
        )
    assert len(caught.value.problems) == len(messages), caught.value.problems


def test_catalogue_is_large_enough() -> None:
    assert len(CATALOGUE) >= 15


def test_good_panel_passes(good: pd.DataFrame) -> None:
    validate_panel(good, ROLES, min_firms_per_type=20)
