"""The ``sweep:`` block: expansion into variants, validation before anything runs, the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import small_config, write_yaml
from vaer.cli import app
from vaer.config import ConfigError, SweepConfig, expand_sweep, load_sweep, validate_config

runner = CliRunner()


def with_sweep(tmp_path: Path, sweep: dict[str, Any]) -> dict[str, Any]:
    raw = small_config(tmp_path)
    raw["sweep"] = sweep
    return raw


def test_grid_times_seeds_in_written_order(tmp_path: Path) -> None:
    raw = with_sweep(
        tmp_path,
        {
            "grid": {
                "estimators.0.params.min_samples_leaf": [5, 20],
                "data.synthetic.heterogeneity": [0.5, 1.0, 2.0],
            },
            "seeds": [7, 8],
        },
    )
    plan = expand_sweep(raw)
    assert len(plan.variants) == 12 == plan.sweep.n_variants
    first, second, last = plan.variants[0], plan.variants[1], plan.variants[-1]
    assert first.assignments == {
        "estimators.0.params.min_samples_leaf": 5,
        "data.synthetic.heterogeneity": 0.5,
        "seed": 7,
    }
    assert second.assignments["seed"] == 8
    assert last.label == (
        "estimators.0.params.min_samples_leaf=20 data.synthetic.heterogeneity=2.0 seed=8"
    )
    assert last.config.estimators[0].params.min_samples_leaf == 20
    assert last.config.data.synthetic.heterogeneity == 2.0
    assert last.config.seed == 8
    assert all(v.config.sweep is None for v in plan.variants)
    assert [v.index for v in plan.variants] == list(range(1, 13))
    frame = plan.to_frame()
    assert list(frame.columns) == [
        "variant",
        "estimators.0.params.min_samples_leaf",
        "data.synthetic.heterogeneity",
        "seed",
    ]
    # the rest of the experiment is untouched
    assert last.config.estimators[1] == validate_config(small_config(tmp_path)).estimators[1]


def test_seeds_alone_and_grid_alone(tmp_path: Path) -> None:
    seeds = expand_sweep(with_sweep(tmp_path, {"seeds": [1, 2, 3]}))
    assert [v.config.seed for v in seeds.variants] == [1, 2, 3]
    grid = expand_sweep(with_sweep(tmp_path, {"grid": {"estimators.1.params.cv": [2, 4]}}))
    assert [v.config.seed for v in grid.variants] == [3, 3]
    assert [v.config.estimators[1].params.cv for v in grid.variants] == [2, 4]


def test_a_grid_can_add_a_key_the_experiment_left_at_its_default(tmp_path: Path) -> None:
    plan = expand_sweep(with_sweep(tmp_path, {"grid": {"nuisance.model": ["lightgbm", "ridge"]}}))
    assert [v.config.nuisance.model for v in plan.variants] == ["lightgbm", "ridge"]


def test_every_bad_variant_is_named_with_its_key(tmp_path: Path) -> None:
    raw = with_sweep(tmp_path, {"grid": {"estimators.1.params.cv": [2, 1]}, "seeds": [1, 2]})
    with pytest.raises(ConfigError) as caught:
        expand_sweep(raw)
    assert caught.value.problems == [
        f"variant {i} (estimators.1.params.cv=1 seed={s}): "
        "estimators.1.params.cv: must be an int >= 2; got 1"
        for i, s in ((3, 1), (4, 2))
    ]


def test_a_misspelt_grid_key_fails_with_a_suggestion(tmp_path: Path) -> None:
    raw = with_sweep(tmp_path, {"grid": {"estimators.0.params.n_estimator": [40]}})
    with pytest.raises(
        ConfigError,
        match=r"variant 1 \(estimators.0.params.n_estimator=40\): "
        r"estimators.0.params.n_estimator: unknown key; did you mean 'n_estimators'\?",
    ):
        expand_sweep(raw)


def test_a_grid_index_out_of_range_is_named(tmp_path: Path) -> None:
    raw = with_sweep(tmp_path, {"grid": {"estimators.5.params.cv": [2]}})
    with pytest.raises(ConfigError, match=r"variant 1 .*estimators.5: index 5 is out of range"):
        expand_sweep(raw)


@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        ({}, "a sweep needs a `grid` or `seeds`"),
        ({"grid": {"seed": [1, 2]}}, "grid key 'seed' is not allowed: vary the seed with"),
        ({"grid": {"tracking.uri": ["x"]}}, "grid key 'tracking.uri' is not allowed"),
        ({"grid": {"name": ["a", "b"]}}, "grid key 'name' is not allowed"),
        ({"grid": {"compute.backend": ["local", "ray"]}}, "grid key 'compute.backend' is not"),
        ({"grid": {"estimators.0.kind": []}}, "needs at least one value; got \\[\\]"),
        ({"grid": {"estimators..cv": [2]}}, "must be a dotted config path"),
        ({"grid": {"seed ": [2]}}, "must be a dotted config path"),
        ({"grid": {"estimators.1.params.cv": [2, 2]}}, "lists 2 twice"),
        ({"seeds": [1, 1]}, "seeds must be distinct; \\[1\\] appear twice"),
        ({"seeds": [-1]}, "seeds must be ints >= 0; got \\[-1\\]"),
        ({"seeds": [1], "grid_": {}}, "sweep.grid_: unknown key; did you mean 'grid'\\?"),
        (
            {"seeds": list(range(30)), "grid": {"estimators.1.params.cv": [2, 3, 4, 5]}},
            "the sweep has 120 variants, more than `max_variants` = 100",
        ),
        ({"seeds": [1], "on_error": "ignore"}, "sweep.on_error: must be one of"),
    ],
)
def test_bad_sweep_blocks(tmp_path: Path, sweep: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        expand_sweep(with_sweep(tmp_path, sweep))


def test_max_variants_can_be_raised() -> None:
    sweep = SweepConfig(seeds=list(range(120)), max_variants=200)
    assert sweep.n_variants == 120


def test_expanding_an_experiment_without_a_sweep_block_fails(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="this experiment has no `sweep:` block"):
        expand_sweep(small_config(tmp_path))


def test_set_overrides_apply_to_every_variant(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "e.yaml", with_sweep(tmp_path, {"seeds": [1, 2]}))
    plan = load_sweep(path, ["estimators.1.params.cv=4"])
    assert [v.config.estimators[1].params.cv for v in plan.variants] == [4, 4]


def test_vaer_run_refuses_a_sweep_and_says_what_to_do(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "e.yaml", with_sweep(tmp_path, {"seeds": [1, 2]}))
    done = runner.invoke(app, ["run", str(path)])
    assert done.exit_code == 2
    text = " ".join(done.output.split())
    assert "has a `sweep:` block (2 variants)" in text
    assert "vaer sweep" in text and "--set sweep=null" in text


def test_sweep_null_runs_the_base_experiment_once(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "e.yaml", with_sweep(tmp_path, {"seeds": [1, 2]}))
    done = runner.invoke(app, ["validate", str(path), "--set", "sweep=null"])
    assert done.exit_code == 0, done.output
    assert "sweep of" not in done.output


def test_vaer_sweep_dry_run_lists_the_variants(tmp_path: Path) -> None:
    raw = with_sweep(tmp_path, {"grid": {"estimators.1.params.cv": [2, 3]}, "seeds": [1, 2]})
    path = write_yaml(tmp_path / "e.yaml", raw)
    done = runner.invoke(app, ["sweep", str(path), "--dry-run"])
    assert done.exit_code == 0, done.output
    assert "4 variants of small" in done.output
    assert not (tmp_path / "mlruns").exists()  # nothing ran, nothing was tracked


def test_vaer_sweep_stops_on_a_bad_variant_before_running_anything(tmp_path: Path) -> None:
    raw = with_sweep(tmp_path, {"grid": {"estimators.1.params.cv": [2, 1]}})
    path = write_yaml(tmp_path / "e.yaml", raw)
    done = runner.invoke(app, ["sweep", str(path)])
    assert done.exit_code == 2
    text = " ".join(done.output.split())
    assert "variant 2 (estimators.1.params.cv=1): estimators.1.params.cv" in text
    assert not (tmp_path / "mlruns").exists()


def test_vaer_validate_checks_every_variant(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "e.yaml", with_sweep(tmp_path, {"seeds": [1, 2, 3]}))
    done = runner.invoke(app, ["validate", str(path)])
    assert done.exit_code == 0, done.output
    assert "ok: sweep of 3 valid variants" in done.output
