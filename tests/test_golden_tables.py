"""Behaviour guard: two small runs give exactly the tables committed under tests/golden/.

The committed tables were written by ``tests/golden_runs.py`` before the stage refactor
(issue 18); any change that moves a number fails here, table and column named.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from golden_runs import GOLDEN, run_golden


@pytest.mark.integration
@pytest.mark.parametrize("name", ["panel", "table"])
def test_run_reproduces_the_committed_tables(name: str, tmp_path: Path) -> None:
    tables = run_golden(name, tmp_path)
    expected = {p.name.removesuffix(".csv.gz"): p for p in (GOLDEN / name).glob("*.csv.gz")}
    assert sorted(tables) == sorted(expected)
    for stem, path in sorted(expected.items()):
        pd.testing.assert_frame_equal(
            tables[stem], pd.read_csv(path), check_exact=False, rtol=1e-9, atol=1e-12,
            obj=f"{name}/{stem}",
        )  # fmt: skip
