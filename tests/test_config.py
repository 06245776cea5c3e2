from __future__ import annotations

from pathlib import Path

import pytest

from conftest import ROOT, small_config, write_yaml
from vaer.config import ConfigError, load_experiment, load_raw, validate_config
from vaer.config.loader import deep_merge, parse_override, set_path


def test_baseline_experiment_loads_with_defaults() -> None:
    config = load_experiment(ROOT / "experiments" / "baseline.yaml")
    assert config.name == "baseline"
    assert [e.kind for e in config.estimators] == ["causal_forest_dml", "linear_dml"]
    assert config.roles.cluster == "city"


def test_set_overrides_typed_values(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "e.yaml", small_config(tmp_path))
    config = load_experiment(
        path, ["seed=11", "estimators.0.params.cv=4", "data.synthetic.ate=0.25", "name=other"]
    )
    assert config.seed == 11
    assert config.estimators[0].params.cv == 4
    assert config.data.synthetic.ate == 0.25
    assert config.name == "other"


def test_base_files_merge_before_the_experiment(tmp_path: Path) -> None:
    write_yaml(tmp_path / "preset.yaml", {"seed": 5, "nuisance": {"model": "ridge"}})
    raw = small_config(tmp_path)
    raw.pop("seed")
    raw["base"] = ["preset.yaml"]
    config = load_experiment(write_yaml(tmp_path / "e.yaml", raw))
    assert config.seed == 5
    assert config.nuisance.model == "ridge"


def test_deep_merge_replaces_lists_and_merges_maps() -> None:
    merged = deep_merge({"a": {"b": 1, "c": [1, 2]}, "d": 1}, {"a": {"c": [3]}, "e": 2})
    assert merged == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("estimators.0.params.cv=1", r"estimators\.0\.params\.cv: must be an int >= 2; got 1"),
        (
            "estimators.0.params.cvv=3",
            r"estimators\.0\.params\.cvv: unknown key; did you mean 'cv'\?",
        ),
        (
            "estimators.1.kind=magic_forest",
            r"estimators\.1\.kind: unknown kind 'magic_forest'; allowed: 'linear_dml', 'sparse_linear_dml', 'causal_forest_dml', 'dr_learner'",
        ),
        (
            "estimators.0.params.n_estimators=10",
            r"estimators\.0\.params: `n_estimators` must be a multiple of `ci_group_size` \(4\)",
        ),
        (
            "estimators.0.params.max_samples=0.8",
            r"estimators\.0\.params\.max_samples: must be a number <= 0\.5; got 0\.8",
        ),
        ("seed=-1", r"seed: must be an int >= 0; got -1"),
        ("seed=abc", r"seed: must be an int; got 'abc'"),
        ("tracking.enable=false", r"tracking\.enable: unknown key; did you mean 'enabled'\?"),
        ("colour=blue", r"colour: unknown key"),
        ("data.mode=cube", r"data\.mode: must be one of 'table' or 'panel'; got 'cube'"),
        ("data.source=file", r"data: `data\.path` is required when `data\.source` is 'file'"),
        (
            "nuisance.model=xgboost",
            r"nuisance\.model: must be one of 'lightgbm', 'random_forest', 'hist_gradient_boosting' or 'ridge'",
        ),
        ("name=bad name", r"name: must start with a letter or digit"),
    ],
)
def test_bad_values_name_the_key_the_value_and_what_is_allowed(
    tmp_path: Path, override: str, message: str
) -> None:
    path = write_yaml(tmp_path / "e.yaml", small_config(tmp_path))
    with pytest.raises(ConfigError, match=message):
        load_experiment(path, [override])


def test_panel_mode_is_accepted(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "e.yaml", small_config(tmp_path))
    assert load_experiment(path, ["data.mode=panel"]).data.mode == "panel"


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "e.yaml", small_config(tmp_path))
    with pytest.raises(ConfigError) as caught:
        load_experiment(path, ["seed=-1", "estimators.0.params.cv=1"])
    assert len(caught.value.problems) == 2


@pytest.mark.parametrize(
    ("roles_change", "message"),
    [
        (
            {"treatment": "resilience"},
            r"column 'resilience' is given two roles \(outcome and treatment\)",
        ),
        (
            {"controls": ["va_index"]},
            r"column 'va_index' is both treatment and one of the controls",
        ),
        ({"modifiers": []}, r"`roles\.modifiers` must name at least one column"),
    ],
)
def test_inconsistent_roles_are_rejected(tmp_path: Path, roles_change: dict, message: str) -> None:
    raw = small_config(tmp_path)
    raw["roles"].update(roles_change)
    with pytest.raises(ConfigError, match=message):
        validate_config(raw)


def test_missing_roles_section_is_named(tmp_path: Path) -> None:
    raw = small_config(tmp_path)
    raw.pop("roles")
    with pytest.raises(ConfigError, match=r"roles: required but missing"):
        validate_config(raw)


def test_duplicate_estimator_names_are_rejected(tmp_path: Path) -> None:
    raw = small_config(tmp_path)
    raw["estimators"] = [{"kind": "linear_dml"}, {"kind": "linear_dml"}]
    with pytest.raises(ConfigError, match=r"estimator names must be unique; \['linear_dml'\]"):
        validate_config(raw)


def test_yaml_is_read_with_the_safe_loader(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['echo hacked']\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_raw(path)


def test_missing_experiment_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_experiment(tmp_path / "nope.yaml")


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="the top level must be a mapping"):
        load_raw(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [("novalue", r"--set expects key\.path=value; got 'novalue'"), ("=3", "--set expects")],
)
def test_bad_override_syntax(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_override(text)


def test_set_path_errors_on_bad_list_index() -> None:
    tree = {"estimators": [{"kind": "linear_dml"}]}
    with pytest.raises(ConfigError, match=r"estimators\.x: a list index must be an integer"):
        set_path(tree, ["estimators", "x", "kind"], "a")
    with pytest.raises(
        ConfigError, match=r"estimators\.3: index 3 is out of range; the list has 1 items"
    ):
        set_path(tree, ["estimators", "3", "kind"], "a")
    with pytest.raises(
        ConfigError, match=r"estimators\.0\.kind\.x: 'estimators\.0\.kind' is a value"
    ):
        set_path(tree, ["estimators", "0", "kind", "x"], "a")


def test_nuisance_jobs_auto_uses_every_core_only_on_large_samples() -> None:
    import os

    from vaer.config.estimators import AUTO_JOBS_MIN_ROWS, NuisanceConfig

    auto = NuisanceConfig()
    assert auto.n_jobs == "auto"
    assert auto.jobs(AUTO_JOBS_MIN_ROWS - 1) == 1
    assert auto.jobs(AUTO_JOBS_MIN_ROWS) == (os.cpu_count() or 1)
    assert NuisanceConfig(n_jobs=3).jobs(10) == 3
    with pytest.raises(ValueError, match=r"`n_jobs` must be an int >= 1 or 'auto'; got 0"):
        NuisanceConfig(n_jobs=0)
