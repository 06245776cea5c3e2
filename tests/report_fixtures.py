"""Tables of the heterogeneity, attribution and robustness stages, in their column layout.

The report must render these sections before those stages land on this branch; the
tables are built here with the columns those stages write (random numbers, fixed seed),
so the report's rendering is tested on every section.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from vaer.did.honest import HonestResult

ESTIMATORS = ("causal_forest_dml", "linear_dml")
LEVELS = {"ownership": ["private", "state", "foreign"], "size_class": ["small", "medium", "large"]}
CHANNELS = ("knowledge_spillover", "congestion", "supply_chain_flex", "market_response")


def _stat(rng: np.random.Generator, n: int, centre: float = 0.5) -> dict[str, np.ndarray]:
    estimate = centre + rng.normal(0, 0.2, n)
    se = rng.uniform(0.05, 0.15, n)
    return {
        "estimate": estimate,
        "se": se,
        "ci_low": estimate - 1.96 * se,
        "ci_high": estimate + 1.96 * se,
    }


def _firm_columns() -> Any:
    """The roles of the simulated staggered panel (vaer.did imported here, lazily)."""
    from vaer.did import PanelColumns

    return PanelColumns(unit="firm", period="year", cohort="cohort", cluster="city", outcome="y")


def did_tables(random_state: int = 0) -> dict[str, pd.DataFrame]:
    """The did stage's tables, from vaer.did on a small simulated staggered panel."""
    from vaer.did import aggregate, att_gt, pretrend_test
    from vaer.did.bacon import bacon_decomposition
    from vaer.did.simulate import HETEROGENEOUS_TYPES, simulate_staggered
    from vaer.did.stage import DidResult
    from vaer.did.sunab import sun_abraham
    from vaer.did.twfe import twfe, twfe_event_study
    from vaer.did.type_stage import DidTypesResult
    from vaer.did.type_tables import type_frames
    from vaer.did.types import att_gt_by_type

    frame, _ = simulate_staggered(
        400, 20, type_effects=HETEROGENEOUS_TYPES, random_state=random_state
    )
    columns = _firm_columns()
    cells = att_gt(frame, columns, covariates=["x1", "x2"])
    aggregates = {
        name: aggregate(cells, name) for name in ("simple", "dynamic", "group", "calendar")
    }
    by_type = att_gt_by_type(frame, columns, types=["firm_type"], covariates=["x1", "x2"])
    levels, tests = type_frames(by_type["firm_type"], n_draws=200)
    result = DidResult(
        att_gt=cells, aggregates=aggregates, pretrend=pretrend_test(aggregates["dynamic"]),
        outcome="y", dropped={"zero_exports": 3},
        sample=frame.rename(columns={"firm": "unit"})[["unit", "year", "cohort"]],
        twfe=twfe(frame, columns), twfe_dynamic=twfe_event_study(frame, columns),
        bacon=bacon_decomposition(frame, columns), event_study=sun_abraham(frame, columns),
        honest=_honest(frame),
        types=DidTypesResult(by_type, levels, tests),
        catt=_catt(random_state),
    )  # fmt: skip
    return result.tables()


@functools.lru_cache(maxsize=4)
def _catt(random_state: int) -> Any:
    """The CATT model's result on a small staggered panel with mechanism channels (fitted
    once per process and seed: the result is immutable)."""
    from vaer.did.catt import catt_channels, catt_tests, fit_catt
    from vaer.did.catt_stage import DidCattResult
    from vaer.did.mechanisms import did_mechanisms
    from vaer.did.pseudo import post_period_scores
    from vaer.did.simulate import CATT_FEATURES, CHANNELS, MEDIATOR_EFFECTS, simulate_staggered

    frame, _ = simulate_staggered(450, 30, channels=True, random_state=random_state)
    pseudo = post_period_scores(frame, _firm_columns(), covariates=list(CATT_FEATURES))
    model = fit_catt(pseudo, n_estimators=40, random_state=random_state)
    return DidCattResult(
        model,
        catt_tests(model, n_bootstrap=50, random_state=random_state),
        catt_channels(model, CHANNELS, n_units=400, random_state=random_state),
        did_mechanisms(frame, list(MEDIATOR_EFFECTS), _firm_columns(), covariates=["x1", "x2"]),
    )


def _honest(frame: pd.DataFrame) -> HonestResult:
    """Honest DiD on the universal-base event study of ``frame`` (3 pre, 3 post periods)."""
    from vaer.did import CellOptions, att_gt
    from vaer.did.honest import event_study_inputs, honest_did

    cells = att_gt(
        frame, _firm_columns(), covariates=["x1", "x2"],
        options=CellOptions(base_period="universal"),
    )  # fmt: skip
    study = event_study_inputs(cells, min_e=-4, max_e=2)
    return honest_did(study.beta, study.sigma, study.event_times, mbar=(0.0, 1.0), m=(0.0, 0.1))


def stage_tables(random_state: int = 0) -> dict[str, pd.DataFrame]:
    """Every table name of the other stages' report sections, with their columns."""
    rng = np.random.default_rng(random_state)
    keys = [(e, d, lv) for e in ESTIMATORS for d, levels in LEVELS.items() for lv in levels]
    gate = pd.DataFrame(keys, columns=["estimator", "dimension", "level"]).assign(
        **_stat(rng, len(keys)), n=rng.integers(100, 500, len(keys))
    )
    gate["p_value"] = rng.uniform(0, 0.2, len(keys))
    gate["p_adj"] = np.minimum(gate["p_value"] * 3, 1)
    tests = pd.DataFrame(
        [(e, d, "equality", "all levels equal") for e in ESTIMATORS for d in LEVELS],
        columns=["estimator", "dimension", "test", "contrast"],
    ).assign(estimate=np.nan, se=np.nan, statistic=rng.uniform(1, 20, 4), df=2.0)
    tests["p_value"] = rng.uniform(0, 0.3, 4)
    groups = ["G1", "G2", "G3", "G4", "G5", "top - bottom"]
    sorted_gates = pd.DataFrame(
        [(e, g) for e in ESTIMATORS for g in groups], columns=["estimator", "group"]
    ).assign(**_stat(rng, 12), n=300)
    clan = pd.DataFrame(
        [(e, v) for e in ESTIMATORS for v in ("export_cost", "congestion")],
        columns=["estimator", "variable"],
    ).assign(**{f"mean_g{g}": rng.normal(0, 1, 4) for g in range(1, 6)})
    clan = clan.assign(**_stat(rng, 4, 0.0)).rename(columns={"estimate": "difference"})
    clan["p_value"] = rng.uniform(0, 0.1, 4)
    terms = ["mean_forest_prediction", "differential_forest_prediction"]
    calibration = pd.DataFrame(
        [(e, t) for e in ESTIMATORS for t in terms], columns=["estimator", "term"]
    ).assign(**_stat(rng, 4, 1.0))
    blp = pd.DataFrame(
        [(e, t) for e in ESTIMATORS for t in ("intercept", "export_cost", "congestion")],
        columns=["estimator", "term"],
    ).assign(**_stat(rng, 6, 0.0))
    rate = pd.DataFrame(
        [(e, t) for e in ESTIMATORS for t in ("AUTOC", "QINI")], columns=["estimator", "target"]
    ).assign(**_stat(rng, 4, 0.1), n_bootstrap=200)
    q = np.linspace(0.02, 1.0, 50)
    toc = pd.concat(
        [
            pd.DataFrame({"estimator": e, "q": q, "toc": 0.4 * (1 - q) ** 2})
            .assign(se=0.05)
            .assign(ci_low=lambda f: f["toc"] - 0.1, ci_high=lambda f: f["toc"] + 0.1)
            for e in ESTIMATORS
        ],
        ignore_index=True,
    )
    policy = pd.DataFrame(
        {"estimator": "causal_forest_dml", "leaf": [0, 1], "rule": ["size_class = small", "else"]}
    ).assign(action=["treat", "do not treat"], **_stat(rng, 2), n=[400, 1100])
    share = rng.dirichlet(np.ones(len(CHANNELS)), 2).ravel()
    channels = pd.DataFrame(
        [(e, c) for e in ESTIMATORS for c in CHANNELS], columns=["estimator", "channel"]
    ).assign(share=share, ci_low=share * 0.8, ci_high=share * 1.2, mean_abs_shap=share * 0.3)
    by_type = pd.DataFrame(
        [
            (e, d, lv, c)
            for e in ESTIMATORS
            for d, levels in LEVELS.items()
            for lv in levels
            for c in CHANNELS
        ],
        columns=["estimator", "dimension", "level", "channel"],
    ).assign(mean_abs_shap=rng.uniform(0, 0.2, 48))
    by_type["share"] = by_type["mean_abs_shap"] / by_type.groupby(
        ["estimator", "dimension", "level"]
    )["mean_abs_shap"].transform("sum")
    mechanisms = pd.DataFrame(
        {"channel": list(CHANNELS), "mediator": [f"{c}_m" for c in CHANNELS]}
    ).assign(dimension="all", level="all", **_stat(rng, 4, 0.2), n=1500)
    mechanisms["p_value"] = rng.uniform(0, 0.1, 4)
    robustness = pd.DataFrame(
        [
            ("placebo_treatment", "permutation", "linear_dml", 0.0, True),
            ("random_common_cause", "", "linear_dml", 0.7, True),
            ("data_subset", "80%", "linear_dml", 0.68, False),
        ],
        columns=["check", "variant", "estimator", "estimate", "passed"],
    ).assign(se=0.1, ci_low=lambda f: f["estimate"] - 0.2, ci_high=lambda f: f["estimate"] + 0.2)
    robustness = robustness.assign(reference=0.7, rule="CI covers the reference")
    sensitivity = pd.DataFrame(
        {"estimator": "linear_dml", "scenario": ["rv", "bench: export_cost"]}
    ).assign(
        cf_y=[0.02, 0.05], cf_d=[0.02, 0.03], rho=1.0, estimate=0.7, bias_bound=[0.1, 0.2],
        bound_low=[0.6, 0.5], bound_high=[0.8, 0.9], ci_low=[0.4, 0.3], ci_high=[1.0, 1.1],
        covers_zero=[False, False], rv=0.2, rv_ci=0.12, rv_econml=0.19,
    )  # fmt: skip
    return {
        "gate": gate,
        "gate_tests": tests,
        "gates_sorted": sorted_gates,
        "clan": clan,
        "calibration": calibration,
        "blp": blp,
        "rate": rate,
        "toc": toc,
        "policy_tree": policy,
        "shap_channels": channels,
        "shap_by_type": by_type,
        "mechanisms": mechanisms,
        "robustness": robustness,
        "sensitivity": sensitivity,
        **did_tables(random_state),
        "tuning": pd.DataFrame(
            {
                "target": ["nuisance", "nuisance", "causal_forest_dml"],
                "candidate": ["defaults", '{"num_leaves": 31}', "defaults"],
                "loss": [0.81, 0.84, 1.02],
                "chosen": [True, False, True],
            }
        ),
    }


STAGES = (
    ("tuning",),
    ("gate", "gate_tests", "gates_sorted", "clan", "calibration", "blp", "rate", "toc"),
    ("policy_tree",),
    ("shap_channels", "shap_by_type", "mechanisms"),
    ("robustness", "sensitivity"),
    ("did_aggregates", "pretrend", "att_gt", "did_dropped", "bacon"),
    ("honest_did", "honest_did_breakdown"),
    ("did_types", "did_type_tests"),
    ("did_catt", "did_catt_tests", "did_channels", "did_mechanisms"),
)


def add_missing_stages(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """``tables`` plus the fixture tables of every stage the run did not produce at all."""
    fixtures = stage_tables()
    added = dict(tables)
    for names in STAGES:
        if not any(name in tables for name in names):
            added.update({name: fixtures[name] for name in names})
    return added


ZH_LEVELS = {"所有制": ["国有", "民营", "外资"], "贸易方式": ["一般贸易", "加工贸易"]}
ZH_LABELS = {"va_index": "虚拟集聚指数", "resilience": "出口韧性", "所有制": "企业所有制"}
ZH_CHANNELS = ("知识溢出", "拥挤缓解", "出口成本")


def chinese_tables(random_state: int = 0) -> dict[str, pd.DataFrame]:
    """A run's core tables (ATE, firm effects, treatment, GATEs and tests, channels,
    mechanisms, robustness) in their column layout, with Chinese firm-type columns,
    levels, channels and a Chinese numeric modifier (``生产率``)."""
    rng = np.random.default_rng(random_state)
    n = 300
    ate = pd.DataFrame({"estimator": list(ESTIMATORS)}).assign(
        estimand="average partial effect of one more unit of 虚拟集聚指数",
        **_stat(rng, 2), n=n, se_type="cluster-robust (DR scores)",
    )  # fmt: skip
    cate = pd.concat(
        [
            pd.DataFrame({"estimator": e, "unit": np.arange(n), "tau_hat": rng.normal(0.5, 0.2, n)})
            for e in ESTIMATORS
        ],
        ignore_index=True,
    )
    t = rng.normal(0, 1, n)
    treatment = pd.DataFrame(
        {"unit": np.arange(n), "treatment": t, "t_hat": t + rng.normal(0, 0.7, n)}
    )
    keys = [(e, d, lv) for e in ESTIMATORS for d, levels in ZH_LEVELS.items() for lv in levels]
    gate = pd.DataFrame(keys, columns=["estimator", "dimension", "level"]).assign(
        **_stat(rng, len(keys)), n=rng.integers(50, 150, len(keys))
    )
    gate["p_value"] = rng.uniform(0, 0.2, len(keys))
    gate["p_adj"] = np.minimum(gate["p_value"] * 3, 1)
    gate = gate.assign(
        p_romano_wolf=gate["p_adj"], band_low=gate["ci_low"] - 0.1,
        band_high=gate["ci_high"] + 0.1, df=25.0, n_clusters=26,
    )  # fmt: skip
    tests = pd.DataFrame(
        [(e, d, "equality", "all levels equal") for e in ESTIMATORS for d in ZH_LEVELS],
        columns=["estimator", "dimension", "test", "contrast"],
    ).assign(estimate=np.nan, se=np.nan, statistic=rng.uniform(1, 20, 4), df=2.0, df_den=30.0)
    tests["p_value"] = rng.uniform(0, 0.3, 4)
    tests = tests.assign(p_holm=tests["p_value"], p_romano_wolf=tests["p_value"])
    share = rng.dirichlet(np.ones(len(ZH_CHANNELS)), 2).ravel()
    channels = pd.DataFrame(
        [(e, c) for e in ESTIMATORS for c in ZH_CHANNELS], columns=["estimator", "channel"]
    ).assign(share=share, ci_low=share * 0.8, ci_high=share * 1.2, mean_abs_shap=share * 0.3)
    by_type = pd.DataFrame(
        [(e, d, lv, c) for e, d, lv in keys for c in ZH_CHANNELS],
        columns=["estimator", "dimension", "level", "channel"],
    ).assign(mean_abs_shap=rng.uniform(0, 0.2, len(keys) * len(ZH_CHANNELS)))
    by_type["share"] = by_type["mean_abs_shap"] / by_type.groupby(
        ["estimator", "dimension", "level"]
    )["mean_abs_shap"].transform("sum")
    mechanisms = pd.DataFrame(
        {"channel": list(ZH_CHANNELS), "mediator": [f"d_{c}" for c in ZH_CHANNELS]}
    ).assign(dimension="all", level="all", **_stat(rng, 3, 0.2), n=n)
    mechanisms["p_value"] = rng.uniform(0, 0.1, 3)
    robustness = pd.DataFrame(
        [("placebo_treatment", "permutation", "linear_dml", 0.0, True),
         ("data_subset", "80%", "linear_dml", 0.68, False)],
        columns=["check", "variant", "estimator", "estimate", "passed"],
    ).assign(se=0.1, ci_low=lambda f: f["estimate"] - 0.2, ci_high=lambda f: f["estimate"] + 0.2,
             reference=0.7, rule="CI covers the reference")  # fmt: skip
    shap_data = pd.DataFrame(
        {
            "unit": np.arange(n),
            "所有制": rng.choice(ZH_LEVELS["所有制"], n),
            "生产率": rng.normal(0, 1, n),
        }
    )
    return {
        "ate": ate, "cate": cate, "treatment": treatment, "gate": gate, "gate_tests": tests,
        "shap_channels": channels, "shap_by_type": by_type, "mechanisms": mechanisms,
        "robustness": robustness, "shap_data": shap_data,
    }  # fmt: skip


def chinese_meta(language: str = "zh") -> dict[str, object]:
    """Metadata of a run on firms with Chinese columns and labels, in ``language``."""
    return {
        "experiment": "zh_study", "run_name": "zh_study-1", "run_id": "0" * 32, "seed": 1,
        "created": "2026-12-02 12:00 UTC", "language": language, "labels": ZH_LABELS,
        "roles": {"unit": "firm_id", "outcome": "resilience", "treatment": "va_index",
                  "cluster": "城市", "controls": ["生产率"], "modifiers": ["所有制", "贸易方式", "生产率"],
                  "firm_types": ["所有制", "贸易方式"]},
        "data": {"source": "firms.csv", "rows": 300, "units": 300, "clusters": 30,
                 "fingerprint": "f" * 16},
        "provenance": {"git_commit": "abc", "version.vaer": "0.1.0"},
        "config_yaml": "report:\n  language: zh\n",
    }  # fmt: skip
