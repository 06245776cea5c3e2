r"""Channel shares: do the intervals cover the true shares, and reach 0 for no-effect channels?

For every seed of a design, the estimators (``causal_forest_dml``, ``linear_dml``, default
parameters and nuisances) are fitted and the attribution stage
(:func:`vaer.attribution.run_attribution`, default ``attribution`` settings) reports each
channel's share with its interval. Two constructions are compared on the same fits:

``after`` (vaer's attribution now)
    cluster-honest SHAP from the final stage refitted on three folds of the cities; the
    share of the variance of the channels' contributions, debiased by cross-fold products
    and a doubly robust correction; Fieller intervals from cluster-robust variances
    (:mod:`vaer.attribution.importance`). Truth: :meth:`vaer.data.truth.Truth.channel_shares`
    (share of the variance of the true contributions).
``before`` (vaer's attribution until this change, rebuilt here)
    SHAP of the run's fitted ``model.effect`` on the same explained firms; each channel's
    share of mean |SHAP|, with a 200-replicate cluster bootstrap over the explained firms
    (percentile intervals) that holds the fitted effect fixed. Truth: the share of mean
    |true SHAP|, the definition it estimated.

A row covers when ``ci_low <= truth <= ci_high``; for a channel without effect (true share
0) that means its interval reaches 0. The channels of one seed share its fits, so the
Monte-Carlo SE of a rate is the standard deviation over seeds of each seed's rate (over
the channels of the kind) divided by the square root of the number of seeds.

Designs (``--design``):

``table``
    vaer's synthetic firm table (:mod:`vaer.data.synthetic_table`): no-effect channels
    market responsiveness, export cost, smart/green (independent proxies).
``panel``
    vaer's synthetic firm panel through panel mode's default measures
    (:func:`vaer.measures.study.load_study_data`), the same channels.
``heldout``
    the held-out table of ``heldout_designs.py``: the no-effect channel ``local_policy``'s
    proxy tracks city GDP (a city-level control) and the outcome has city shocks.

Settings were chosen on seeds < 1000 of ``table`` and ``panel``; report on seeds >= 1000
and on ``heldout``. Runs on one process (``n_jobs=1``); rows are appended to ``--out``
after every seed, so an interrupted run resumes where it stopped.

Run: ``PYTHONPATH=src python benchmarks/channel_shares.py --design table --seeds 50
--first-seed 1000 --out channel_shares_table.csv`` (about 80 s per seed here).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vaer.attribution import explain_effect, run_attribution
from vaer.attribution.channels import channel_contributions
from vaer.attribution.refits import FinalStage, Refitter, final_stages
from vaer.config.attribution import AttributionConfig
from vaer.config.estimators import estimator_label
from vaer.config.models import (
    CausalForestDMLSpec,
    DataConfig,
    LinearDMLSpec,
    NuisanceConfig,
    Roles,
    SyntheticTableConfig,
)
from vaer.data.design import AnalysisData, build_analysis_data
from vaer.data.truth import Truth
from vaer.estimators import fit as fit_module
from vaer.estimators.fit import fit_estimators
from vaer.estimators.results import EstimationResult

DESIGNS = ("table", "panel", "heldout")
TABLE_ROLES: dict[str, Any] = {
    "unit": "firm_id",
    "outcome": "resilience",
    "treatment": "va_index",
    "cluster": "city",
    "controls": ["city_dev", "productivity", "geo_agglom", "firm_age"],
    "modifiers": [
        "ownership",
        "size_class",
        "trade_mode",
        "factor_intensity",
        "region",
        "knowledge_spillover",
        "congestion",
        "supply_chain_flex",
        "market_response",
        "export_cost",
        "smart_green",
    ],
    "firm_types": ["ownership", "size_class", "trade_mode", "factor_intensity", "region"],
}


def load(design: str, seed: int, n_firms: int, n_cities: int) -> tuple[pd.DataFrame, Roles, Truth]:
    """The analysis table, roles (with mechanisms) and truth of one draw of a design."""
    if design == "table":
        from vaer.data.synthetic_table import MECHANISMS, make_synthetic_table

        table = make_synthetic_table(
            SyntheticTableConfig(n_units=n_firms, n_clusters=n_cities), random_state=seed
        )
        return table.frame, Roles(**TABLE_ROLES, mechanisms=MECHANISMS), table.truth
    if design == "panel":
        from vaer.config.panel import MeasuresConfig, SyntheticPanelConfig
        from vaer.data.synthetic import PANEL_ROLES
        from vaer.measures.study import load_study_data

        roles = Roles(**PANEL_ROLES)  # type: ignore[arg-type]
        panel = SyntheticPanelConfig(n_firms=n_firms, n_cities=n_cities)
        loaded = load_study_data(
            DataConfig(mode="panel", panel=panel), roles, MeasuresConfig(), seed=seed
        )
        assert loaded.truth is not None
        return loaded.frame, roles, loaded.truth
    if design == "heldout":
        from heldout_designs import ROLES, HeldoutParams, make_heldout_table

        held = make_heldout_table(
            HeldoutParams(n_firms=n_firms, n_cities=n_cities), random_state=seed
        )
        raw = {k: v for k, v in ROLES.items() if k not in ("instrument", "mediators")}
        return held.frame, Roles(**raw), held.truth  # type: ignore[arg-type]
    raise ValueError(f"`design` must be one of {', '.join(DESIGNS)}; got {design!r}")


def fit_with_refitters(
    data: AnalysisData, specs: Sequence[Any], nuisance: NuisanceConfig, seed: int
) -> tuple[EstimationResult, dict[str, Refitter]]:
    """Fit the estimators and return how to refit their final stages.

    Uses :func:`vaer.attribution.refits.final_stages` when the estimation result keeps the
    run's nuisances and parameters; otherwise it captures the nuisance cache that
    :func:`vaer.estimators.fit.fit_estimators` builds (the same cache, fitted once).
    """
    captured: list[Any] = []
    original = fit_module.NuisanceCache

    class Capturing(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            captured.append(self)

    with mock.patch.object(fit_module, "NuisanceCache", Capturing):
        estimation = fit_estimators(data, specs, nuisance, random_state=seed, n_jobs=1)
    stages: dict[str, Refitter] = dict(final_stages(estimation))
    if not stages:
        stages = {estimator_label(s): FinalStage(s.kind, s.params, captured[0]) for s in specs}
    return estimation, stages


def old_shares(
    contributions: pd.DataFrame, clusters: np.ndarray, n_bootstrap: int, seed: int
) -> pd.DataFrame:
    """The construction before this change: share of mean |contribution| with a cluster
    bootstrap over the explained firms (percentile 95% intervals), effect held fixed."""
    absolute = np.abs(contributions.to_numpy(dtype=np.float64))
    codes, uniques = pd.factorize(np.asarray(clusters))
    g = len(uniques)
    counts = np.random.default_rng(seed).multinomial(g, np.full(g, 1.0 / g), size=n_bootstrap)
    weighted = counts.astype(np.float64)[:, codes] @ absolute
    draws = weighted / weighted.sum(axis=1, keepdims=True)
    mean_abs = absolute.mean(axis=0)
    return pd.DataFrame(
        {
            "channel": list(contributions.columns),
            "share": mean_abs / mean_abs.sum(),
            "ci_low": np.quantile(draws, 0.025, axis=0),
            "ci_high": np.quantile(draws, 0.975, axis=0),
        }
    )


def old_truth(truth: Truth) -> pd.Series:
    """The true shares as defined before this change: share of mean |true contribution|."""
    mean_abs = truth.channel_contributions().abs().mean()
    return mean_abs / mean_abs.sum()


def one_seed(design: str, seed: int, n_firms: int, n_cities: int) -> list[dict[str, Any]]:
    """Rows (construction x estimator x channel) of one seed."""
    frame, roles, truth = load(design, seed, n_firms, n_cities)
    data = build_analysis_data(frame, roles)
    specs = [CausalForestDMLSpec(kind="causal_forest_dml"), LinearDMLSpec(kind="linear_dml")]
    nuisance = NuisanceConfig(n_jobs=1)
    started = time.perf_counter()
    estimation, refitters = fit_with_refitters(data, specs, nuisance, seed)
    fit_seconds = time.perf_counter() - started
    config = AttributionConfig()
    started = time.perf_counter()
    result = run_attribution(
        data, estimation, config, roles, nuisance, frame, random_state=seed, refitters=refitters
    )
    after_seconds = time.perf_counter() - started
    true_after, true_before = truth.channel_shares(), old_truth(truth)
    null = {c for c, s in true_after.items() if s == 0}
    rows: list[dict[str, Any]] = []
    for rec in result.channels.itertuples(index=False):
        rows.append(
            {
                "construction": "after",
                "estimator": rec.estimator,
                "channel": rec.channel,
                "truth": float(true_after[rec.channel]),
                "share": rec.share,
                "ci_low": rec.ci_low,
                "ci_high": rec.ci_high,
                "p_value": rec.p_value,
            }
        )
    explained = result.explanations[0]
    rows_index = pd.Index(data.units).get_indexer(explained.units)
    for spec, est in zip(specs, estimation.estimators, strict=True):
        started = time.perf_counter()
        before = explain_effect(
            est.label,
            spec.kind,
            est.model,
            data.x,
            rows_index,
            np.sort(np.random.default_rng(seed + 1).choice(data.n, min(100, data.n), False)),
            data.units,
            data.feature_groups,
            surrogate_options=config.surrogate.model_dump(),
            random_state=seed,
        )
        contributions = channel_contributions(before.values, roles.mechanisms)
        table = old_shares(contributions, data.clusters[rows_index], 200, seed)
        for rec in table.itertuples(index=False):
            rows.append(
                {
                    "construction": "before",
                    "estimator": est.label,
                    "channel": rec.channel,
                    "truth": float(true_before[rec.channel]),
                    "share": rec.share,
                    "ci_low": rec.ci_low,
                    "ci_high": rec.ci_high,
                    "p_value": np.nan,
                    "seconds": time.perf_counter() - started,
                }
            )
    for row in rows:
        row.update(
            design=design,
            seed=seed,
            n_firms=data.n,
            n_cities=len(np.unique(data.clusters)),
            null=row["channel"] in null,
            fit_seconds=fit_seconds,
            attribution_seconds=after_seconds,
        )
        row["covered"] = bool(row["ci_low"] <= row["truth"] <= row["ci_high"])
    return rows


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Coverage by design, construction, estimator and channel kind, with MC SEs."""
    rows = rows.assign(kind=np.where(rows["null"], "no effect (reaches 0)", "with effect"))
    keys = ["design", "construction", "estimator", "kind"]

    def stats(group: pd.DataFrame) -> pd.Series:
        per_seed = group.groupby("seed")["covered"]
        seeds = group["seed"].nunique()
        rate = per_seed.mean()  # channels of one seed share the fit: seeds are the units
        return pd.Series(
            {
                "seeds": seeds,
                "rows": len(group),
                "coverage": group["covered"].mean(),
                "mc_se": rate.std(ddof=1) / np.sqrt(seeds) if seeds > 1 else np.nan,
                "all_covered": per_seed.all().mean(),
                "mean_width": (group["ci_high"] - group["ci_low"]).mean(),
                "mean_abs_error": (group["share"] - group["truth"]).abs().mean(),
            }
        )

    return rows.groupby(keys).apply(stats, include_groups=False).reset_index()


def per_channel(rows: pd.DataFrame) -> pd.DataFrame:
    """Coverage per design, construction, estimator and channel."""
    keys = ["design", "construction", "estimator", "channel"]
    grouped = rows.groupby(keys)
    out = grouped.agg(
        truth=("truth", "mean"),
        share=("share", "mean"),
        coverage=("covered", "mean"),
        seeds=("seed", "nunique"),
    ).reset_index()
    out["mc_se"] = np.sqrt(out["coverage"] * (1 - out["coverage"]) / out["seeds"])
    return out


def markdown(rows: pd.DataFrame) -> str:
    """The RESULTS.md section."""
    summary = summarise(rows)
    lines = [
        "## Channel shares: coverage of the true share, zero-reaching of no-effect channels",
        "",
        "`channel_shares.py`: default estimators (`causal_forest_dml`, `linear_dml`) and "
        "default attribution settings; `after` = cluster-honest cross-fold SHAP, share of "
        "the variance of the channels' contributions, Fieller intervals with the effect "
        "model's estimation error; `before` = SHAP of the run's `model.effect`, share of mean "
        "|SHAP|, cluster bootstrap over firms (each against its own true share). For "
        "no-effect channels coverage = the interval reaches 0.",
        "",
        "| design | firms | cities | seeds | construction | estimator | channels | coverage "
        "| MC SE | all channels covered | mean width | mean abs. error |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    sizes = rows.groupby("design")[["n_firms", "n_cities"]].mean().round(0)
    seeds = rows.groupby("design")["seed"].agg(["min", "max"])
    for rec in summary.itertuples(index=False):
        lines.append(
            f"| {rec.design} | {sizes.loc[rec.design, 'n_firms']:.0f} | "
            f"{sizes.loc[rec.design, 'n_cities']:.0f} | {rec.seeds} "
            f"({seeds.loc[rec.design, 'min']}-{seeds.loc[rec.design, 'max']}) | "
            f"{rec.construction} | {rec.estimator} | {rec.kind} | {rec.coverage:.3f} | "
            f"{rec.mc_se:.3f} | {rec.all_covered:.3f} | {rec.mean_width:.3f} | "
            f"{rec.mean_abs_error:.3f} |"
        )
    after = rows[rows["construction"] == "after"]
    seconds = after.groupby("design")["attribution_seconds"].mean()
    lines += [
        "",
        "Mean attribution-stage seconds per seed (both estimators, `after`): "
        + ", ".join(f"{d} {s:.0f}" for d, s in seconds.items())
        + ".",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--design", choices=DESIGNS, default="table")
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--n-firms", type=int, default=3000)
    parser.add_argument("--n-cities", type=int, default=100)
    parser.add_argument("--out", type=Path, required=True, help="CSV of per-seed rows")
    parser.add_argument("--summary-only", action="store_true", help="summarise --out files")
    parser.add_argument("--inputs", type=Path, nargs="*", default=(), help="more row CSVs")
    parser.add_argument("--write-results", action="store_true", help="update RESULTS.md")
    args = parser.parse_args(argv)
    if not args.summary_only:
        done: set[int] = set()
        if args.out.is_file():
            done = set(pd.read_csv(args.out)["seed"].unique())
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            if seed in done:
                continue
            started = time.perf_counter()
            rows = pd.DataFrame(one_seed(args.design, seed, args.n_firms, args.n_cities))
            rows.to_csv(args.out, mode="a", header=not args.out.is_file(), index=False)
            print(f"seed {seed}: {time.perf_counter() - started:.0f} s", flush=True)
    frames = [pd.read_csv(path) for path in (args.out, *args.inputs) if path.is_file()]
    rows = pd.concat(frames, ignore_index=True)
    pd.set_option("display.width", 200)
    print(summarise(rows).to_string(index=False))
    print(per_channel(rows).round(3).to_string(index=False))
    if args.write_results:
        from common import update_results_section

        update_results_section("channel_shares", markdown(rows), config=_config_line(args))


def _config_line(args: argparse.Namespace) -> str:
    defaults: Mapping[str, Any] = AttributionConfig().model_dump(exclude={"mechanisms"})
    return f"attribution defaults {dict(defaults)}; designs from {args.out}"


if __name__ == "__main__":
    main()
