"""``vaer init``: a commented experiment guessed from a data file's columns, which
``vaer validate`` accepts for the synthetic table and panel ``vaer simulate`` writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from vaer.cli import app
from vaer.data.guess import guess_roles
from vaer.data.synthetic import TYPE_COLUMNS

runner = CliRunner()


def _invoke(*args: str) -> str:
    done = runner.invoke(app, list(args))
    assert done.exit_code == 0, done.output
    return done.output


@pytest.mark.parametrize(
    ("mode", "file", "settings"),
    [
        ("panel", "panel.parquet", ["n_firms=600", "n_cities=30"]),
        ("panel", "panel.dta", ["n_firms=400", "n_cities=20"]),
        ("table", "table.csv", ["n_units=800", "n_clusters=40"]),
    ],
)
def test_init_on_simulated_data_passes_validate(
    mode: str, file: str, settings: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sets = [a for s in settings for a in ("--set", s)]
    _invoke("simulate", "--out", file, "--mode", mode, "--seed", "3", *sets)
    _invoke("init", file, "-o", "experiments/study.yaml")
    text = Path("experiments/study.yaml").read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    assert config["data"] == {"path": file, "mode": mode}
    roles = config["roles"]
    assert roles["unit"] == "firm_id"
    assert roles["cluster"] == "city"
    assert sorted(roles["firm_types"]) == sorted(TYPE_COLUMNS)
    if mode == "panel":
        assert roles["time"] == "year"
        assert roles["exports"] == "exports"
        assert roles["va_components"][0] == "ict_share"
        assert "pilot_year: looks like a policy's adoption year" in text
    else:
        assert (roles["outcome"], roles["treatment"]) == ("resilience", "va_index")
        assert roles["mediators"]["congestion"] == ["d_congestion"]
        assert not any(c.startswith("d_") for c in roles["modifiers"])
    # every role guessed from the data is marked for the user to confirm
    role_lines = [
        line
        for line in text.split("roles:")[1].splitlines()
        if line.startswith("  ") and "built" not in line and ": []" not in line
    ]
    valued = [line for line in role_lines if not line.split("#")[0].rstrip().endswith(":")]
    assert valued
    for line in valued:
        assert "# guessed: " in line and line.endswith("; confirm"), line
    assert "# guessed: " in text.split("mode:")[1].splitlines()[0]
    output = _invoke("validate", "experiments/study.yaml")
    assert "ok: study" in output or "ok: panel" in output or "ok: table" in output


def test_init_does_not_overwrite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _invoke("simulate", "--out", "t.csv", "--mode", "table", "--set", "n_units=300")
    _invoke("init", "t.csv")
    done = runner.invoke(app, ["init", "t.csv"])
    assert done.exit_code == 2
    assert "t.yaml exists; choose another file with -o, or overwrite it with --force" in (
        " ".join(done.output.split())
    )
    _invoke("init", "t.csv", "--force")


def _firms(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "score": rng.normal(size=n),  # numeric, not unique-safe (float): never the unit
            "code": [f"X{i:05d}" for i in range(n)],  # id-like name, unique
            "province": rng.choice([f"P{i:02d}" for i in range(20)], size=n),  # cluster
            "segment": rng.choice(list("abc"), size=n),  # firm type
            "rare": np.where(np.arange(n) < 5, "tiny", "big"),  # a level of 5 firms
            "district": [f"D{i % 150}" for i in range(n)],  # too many levels
            "sales_text": [f"{1000 + i:,}" for i in range(n)],  # numbers stored as text
            "outcome_growth": rng.normal(size=n),
            "treat_index": rng.normal(size=n),
        }
    )


def test_guesses_on_a_table() -> None:
    guesses = guess_roles(_firms())
    assert guesses.mode == "table"
    singles = {role: g.value for role, g in guesses.singles.items()}
    assert singles["unit"] == "code"
    assert singles["cluster"] == "province"  # 20 values of 20 firms, named like a place
    assert singles["treatment"] == "treat_index"
    assert [g.value for g in guesses.firm_types] == ["segment"]
    modifiers = [g.value for g in guesses.modifiers]
    assert "rare" in modifiers and "score" in modifiers
    left = {g.value: g.reason for g in guesses.left_out}
    assert left["district"].startswith("text with 150 levels")
    assert left["sales_text"].startswith("numbers stored as text")


def test_integer_years_make_a_panel() -> None:
    firms = _firms(100)
    panel = pd.concat([firms.assign(yr=year) for year in range(2010, 2016)], ignore_index=True)
    panel["exports_usd"] = 1.0
    guesses = guess_roles(panel)
    assert guesses.mode == "panel"
    assert guesses.singles["time"].value == "yr"
    assert guesses.singles["time"].reason.endswith("(2010-2015)")
    assert guesses.singles["unit"].value == "code"
    assert guesses.singles["exports"].value == "exports_usd"


def test_an_unnamed_id_is_found_by_uniqueness() -> None:
    firms = _firms().rename(columns={"code": "nsrsbh"})
    assert guess_roles(firms).singles["unit"].value == "nsrsbh"


def test_no_firm_identifier_is_an_error() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "x", "y"]})
    with pytest.raises(ValueError, match="no column identifies the firms"):
        guess_roles(frame)
