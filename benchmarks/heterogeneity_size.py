"""Size, mean t and power of every test the heterogeneity stage prints.

Designs (vaer's own generators, constant effect ``heterogeneity=0``; seeds below 1000 were
used to develop the tests, the section reports seeds from ``--first-seed``, 1000 by
default): the synthetic **panel** path (``experiments/baseline.yaml`` with
``data.panel.n_firms=4000``, ``n_cities`` 40 or 150: :func:`vaer.measures.study.
load_study_data`, city-level VA and a city shock in the outcome) and the synthetic
**table** (3000 firms, 40 or 150 cities, ``cluster_effect`` 0.5 in the outcome and a
city component in VA). Both default estimators are fitted with today's defaults except
100 trees for the forest (``causal_forest_dml``, cluster-honest out-of-bag ``tau_hat``;
``linear_dml``, ``tau_hat`` cross-fitted over two halves of the cities), one process.

Every printed null is made true: the doubly robust scores are shifted by the true effect,
so GATE = 0, sorted GATE = 0, the calibration mean coefficient = 0, the BLP intercept = 0,
a policy leaf's effect = 0 and TOC = 0 hold, besides the shift-invariant nulls (GATE
equality and differences, calibration slope, BLP slopes and their joint test, AUTOC,
Qini). A placebo modifier (city N(0,1) + firm N(0,1), unseen by the estimators) is added
to the CLAN variables and the BLP covariates, so one CLAN contrast has a true null too.
The stage runs with ``heterogeneity.ranking_tests: true`` so that the withheld
ranking-based tests are measured as well. Per test: rejection rate at 5% (for intervals:
the share of draws whose interval misses the truth), its Monte-Carlo SE (clustered by
seed), the mean and SD of the t-statistic, pooled over the levels/keys of the test. Power
is measured the same way at ``heterogeneity=1`` without the shift.

Usage::

    # fit (cached per seed in --cache) and analyse: per-test rows to a CSV
    PYTHONPATH=src python benchmarks/heterogeneity_size.py --designs panel40 panel150 \\
        --seeds 100 --cache /tmp/het_fits --csv after.csv
    # the RESULTS.md section from per-test CSVs (after, optionally before and power)
    PYTHONPATH=src python benchmarks/heterogeneity_size.py --from-csv after.csv \\
        --before-csv before.csv --power-csv power.csv

The analysis runs under whichever vaer is on ``PYTHONPATH`` (an older commit's stage gives
the "before" rows; its fits must come from that commit too).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import types
from pathlib import Path

import numpy as np
import pandas as pd

from common import git_state, update_results_section
from vaer.config import load_experiment
from vaer.config.heterogeneity import HeterogeneityConfig
from vaer.config.models import (
    CausalForestDMLSpec,
    LinearDMLSpec,
    NuisanceConfig,
    Roles,
    SyntheticTableConfig,
)
from vaer.data.design import build_analysis_data
from vaer.data.synthetic_table import FIRM_TYPES, MODIFIERS, make_synthetic_table
from vaer.estimators.fit import fit_estimators
from vaer.heterogeneity import analyze_heterogeneity

ROOT = Path(__file__).resolve().parents[1]
ALPHA = 0.05
N_UNITS = {"table": 3000, "panel": 4000}
N_TREES = 100
TABLE_ROLES = Roles(
    unit="firm_id",
    outcome="resilience",
    treatment="va_index",
    cluster="city",
    controls=["city_dev", "productivity", "geo_agglom", "firm_age"],
    modifiers=MODIFIERS,
    firm_types=[*FIRM_TYPES, "region"],
)
LABELS = {
    "gate_equality": "GATE equality across a firm type (F)",
    "gate_diff": "GATE difference between two levels (t)",
    "gate_diff_holm_fwer": "any difference of a firm type, Holm (FWER)",
    "gate_diff_rw_fwer": "any difference of a firm type, Romano-Wolf (FWER)",
    "gate_level": "GATE of a level = truth (t)",
    "gate_level_holm_fwer": "any GATE level of a firm type, Holm (FWER)",
    "gate_level_rw_fwer": "any GATE level of a firm type, Romano-Wolf (FWER)",
    "gate_band_miss": "joint band of a firm type misses a level",
    "blp_slope": "BLP slope of a modifier (t)",
    "blp_placebo": "BLP slope of the placebo modifier (t)",
    "blp_joint": "BLP joint F-test, all slopes = 0",
    "blp_intercept": "BLP intercept = truth (t)",
    "clan_placebo": "CLAN top - bottom of the placebo modifier (t)",
    "policy_leaf_miss": "policy leaf CI misses the truth",
    "calibration_mean": "calibration mean coefficient (one-sided t)",
    "calibration_differential": "calibration slope > 0 (one-sided t) [ranking]",
    "sorted_group": "sorted GATE of a group = truth (t) [ranking]",
    "sorted_top_bottom": "sorted GATES top - bottom (t) [ranking]",
    "autoc": "AUTOC > 0 (one-sided) [ranking]",
    "qini": "Qini > 0 (one-sided) [ranking]",
    "toc_miss": "TOC band at q = 0.1, 0.2, 0.5 misses 0 [ranking]",
}
POWER_TESTS = (
    "gate_equality",
    "blp_joint",
    "calibration_differential",
    "autoc",
    "sorted_top_bottom",
)


def load_design(design: str, seed: int, heterogeneity: float):
    """The analysis data and the true effect per firm of ``design`` (``panel40``,
    ``panel150``, ``table40``, ``table150``) at ``seed``."""
    kind, n_clusters = design[:5], int(design[5:])
    if kind == "table":
        table = make_synthetic_table(
            SyntheticTableConfig(
                n_units=N_UNITS["table"], n_clusters=n_clusters, heterogeneity=heterogeneity
            ),
            random_state=seed,
        )
        data = build_analysis_data(table.frame, TABLE_ROLES)
        return data, table.truth.tau_for(data.units)
    from vaer.measures.study import load_study_data

    config = load_experiment(ROOT / "experiments" / "baseline.yaml")
    panel = config.data.panel.model_copy(
        update={"n_firms": N_UNITS["panel"], "n_cities": n_clusters, "heterogeneity": heterogeneity}
    )
    loaded = load_study_data(
        config.data.model_copy(update={"panel": panel}), config.roles, config.measures, seed=seed
    )
    data = build_analysis_data(loaded.frame, config.roles)
    assert loaded.truth is not None
    return data, loaded.truth.tau_for(data.units)


def fit_seed(design: str, seed: int, heterogeneity: float, cache: Path | None) -> dict:
    """``tau_hat`` and scores of both estimators (read from / written to ``cache``)."""
    path = None if cache is None else cache / f"{design}_h{heterogeneity:g}_s{seed}.npz"
    if path is not None and path.exists():
        return dict(np.load(path))
    data, tau = load_design(design, seed, heterogeneity)
    specs = [
        CausalForestDMLSpec(kind="causal_forest_dml", params={"n_estimators": N_TREES}),
        LinearDMLSpec(kind="linear_dml"),
    ]
    estimation = fit_estimators(data, specs, NuisanceConfig(n_jobs=1), random_state=seed)
    arrays = {"units": np.asarray(data.units).astype(str), "tau": np.asarray(tau, dtype=float)}
    for result in estimation.estimators:
        arrays[f"{result.label}.tau_hat"] = result.tau_hat
        arrays[f"{result.label}.scores"] = result.scores
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **arrays)
    return arrays


def _test_rows(item, shift: bool) -> list[tuple[str, str, float, float]]:
    """(test, key, p, t) of one estimator; for ``*_miss`` tests ``p`` is 1 if the interval
    covers the truth and 0 if it misses."""
    out: list[tuple[str, str, float, float]] = []
    gate, tests = item.gates.to_frame(), item.gates.tests_frame()
    if shift:
        for r in gate.itertuples():
            out.append(("gate_level", f"{r.dimension}={r.level}", r.p_value, r.estimate / r.se))
        for dimension, part in gate.groupby("dimension"):
            out.append(("gate_level_holm_fwer", dimension, part["p_adj"].min(), np.nan))
            out.append(("gate_level_rw_fwer", dimension, part["p_romano_wolf"].min(), np.nan))
            miss = bool(((part["band_low"] > 0) | (part["band_high"] < 0)).any())
            out.append(("gate_band_miss", dimension, 0.0 if miss else 1.0, np.nan))
    for r in tests[tests["test"] == "equality"].itertuples():
        out.append(("gate_equality", r.dimension, r.p_value, np.nan))
    differences = tests[tests["test"] == "difference"]
    for r in differences.itertuples():
        out.append(("gate_diff", f"{r.dimension}:{r.contrast}", r.p_value, r.estimate / r.se))
    for dimension, part in differences.groupby("dimension"):
        out.append(("gate_diff_holm_fwer", dimension, part["p_holm"].min(), np.nan))
        out.append(("gate_diff_rw_fwer", dimension, part["p_romano_wolf"].min(), np.nan))
    for r in item.sorted_gates.to_frame().itertuples():
        if r.group == "top - bottom":
            out.append(("sorted_top_bottom", "", r.p_value, r.estimate / r.se))
        elif shift:
            out.append(("sorted_group", str(r.group), r.p_value, r.estimate / r.se))
    clan = item.sorted_gates.clan_frame()
    for r in clan[clan["variable"] == "placebo"].itertuples():
        out.append(("clan_placebo", "", r.p_value, r.difference / r.se))
    if item.calibration is not None:
        calibration = item.calibration.to_frame().set_index("term")
        if shift:
            row = calibration.loc["mean_forest_prediction"]
            out.append(("calibration_mean", "", row["p_value"], row["t_stat"]))
        row = calibration.loc["differential_forest_prediction"]
        out.append(("calibration_differential", "", row["p_value"], row["t_stat"]))
    for r in item.blp.to_frame().itertuples():
        if r.term == "(intercept)":
            if shift:
                out.append(("blp_intercept", "", r.p_value, r.estimate / r.se))
        elif r.term == "placebo":
            out.append(("blp_placebo", "", r.p_value, r.estimate / r.se))
        elif str(r.term).startswith("all slopes"):
            out.append(("blp_joint", "", r.p_value, np.nan))
        else:
            out.append(("blp_slope", str(r.term), r.p_value, r.estimate / r.se))
    rate = item.rate.to_frame().set_index("target")
    for target in rate.index:
        row = rate.loc[target]
        out.append((str(target).lower(), "", row["p_value"], row["estimate"] / row["se"]))
    for r in item.rate.toc_frame().itertuples():
        if round(r.q, 2) in (0.1, 0.2, 0.5):
            miss = r.ci_low > 0 or r.ci_high < 0
            out.append(("toc_miss", f"{r.q:.2f}", 0.0 if miss else 1.0, r.toc / r.se))
    if shift:
        for r in item.policy_tree.to_frame().itertuples():
            if np.isfinite(r.se) and r.se > 0:
                miss = r.ci_low > 0 or r.ci_high < 0
                out.append(("policy_leaf_miss", str(r.leaf), 0.0 if miss else 1.0, np.nan))
    return out


def analyse_seed(design: str, seed: int, heterogeneity: float, arrays: dict) -> list[dict]:
    """Every printed test of both estimators on one seed's fits."""
    data, _ = load_design(design, seed, heterogeneity)
    if not np.array_equal(np.asarray(data.units).astype(str), arrays["units"]):
        raise ValueError(f"cached fits of {design} seed {seed} are for other firms")
    tau = arrays["tau"]  # the truth of the commit that fitted
    rng = np.random.default_rng(10_000 + seed)
    codes = pd.factorize(data.clusters)[0]
    placebo = rng.normal(size=codes.max() + 1)[codes] + rng.normal(size=data.n)
    data = dataclasses.replace(
        data,
        x=data.x.assign(placebo=placebo),
        feature_groups={**data.feature_groups, "placebo": ["placebo"]},
    )
    shift = heterogeneity == 0.0
    estimators = tuple(
        types.SimpleNamespace(
            label=label,
            tau_hat=arrays[f"{label}.tau_hat"],
            scores=arrays[f"{label}.scores"] - (tau if shift else 0.0),
        )
        for label in ("causal_forest_dml", "linear_dml")
    )
    show = {"ranking_tests": True} if "ranking_tests" in HeterogeneityConfig.model_fields else {}
    result = analyze_heterogeneity(
        types.SimpleNamespace(units=data.units, estimators=estimators),  # type: ignore[arg-type]
        data,
        HeterogeneityConfig(n_bootstrap=200, **show),
        random_state=seed,
    )
    return [
        {
            "design": design,
            "het": heterogeneity,
            "seed": seed,
            "estimator": item.estimator,
            "test": test,
            "key": key,
            "p": float(p),
            "t": float(t),
        }
        for item in result.estimators
        for test, key, p, t in _test_rows(item, shift)
    ]


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Per design, estimator and test: seeds, rejection rate (or miss rate), its MC SE
    (per-seed rates, so tests within a seed may be correlated), mean and SD of t."""
    frame = frame.assign(reject=frame["p"] < ALPHA)
    rows = []
    for (design, estimator, test), part in frame.groupby(["design", "estimator", "test"]):
        per_seed = part.groupby("seed")["reject"].mean()
        seeds = len(per_seed)
        rows.append(
            {
                "design": design,
                "estimator": estimator,
                "test": test,
                "seeds": seeds,
                "rate": float(part["reject"].mean()),
                "mc_se": float(per_seed.std(ddof=1) / np.sqrt(seeds)) if seeds > 1 else np.nan,
                "mean_t": float(part["t"].mean()) if part["t"].notna().any() else np.nan,
                "sd_t": float(part["t"].std()) if part["t"].notna().any() else np.nan,
            }
        )
    return pd.DataFrame(rows)


def _cell(row: pd.Series | None, with_t: bool) -> str:
    if row is None:
        return ""
    text = f"{row['rate']:.3f} ({row['mc_se']:.3f})"
    if with_t and np.isfinite(row["mean_t"]):
        text += f", t {row['mean_t']:+.2f}/{row['sd_t']:.2f}"
    return text


def section(
    after: pd.DataFrame, before: pd.DataFrame | None, power: pd.DataFrame | None, notes: str
) -> str:
    """The RESULTS.md section: one table per design (after, and before where given)."""
    summary_after = summarise(after)
    summary_before = None if before is None else summarise(before)
    lines = [
        "## Heterogeneity tests: size under a constant effect, every printed test",
        "",
        notes,
        "",
        "Cells: rejection rate at 5% (Monte-Carlo SE), then mean/SD of the t-statistic "
        "(0 and about 1 for a valid test). Target: rate <= 0.07 and |mean t| <= 0.15. "
        "[ranking] marks the tests that rank or regress on tau_hat, whose p-values the "
        "stage withholds by default (measured here with `ranking_tests: true`).",
    ]
    for design in sorted(summary_after["design"].unique()):
        part = summary_after[summary_after["design"] == design]
        estimators = sorted(part["estimator"].unique())
        seeds = int(part["seeds"].max())
        header = " | ".join(f"{e} after" for e in estimators)
        if summary_before is not None:
            header += " | " + " | ".join(f"{e} before" for e in estimators)
        lines += ["", f"### {design} ({seeds} seeds after)", "", f"| test | {header} |"]
        lines.append("|---|" + "---|" * (header.count("|") + 1))
        for test, label in LABELS.items():
            cells = []
            for source in (part, None if summary_before is None else summary_before):
                if source is None:
                    continue
                for estimator in estimators:
                    found = source[
                        (source["design"] == design)
                        & (source["estimator"] == estimator)
                        & (source["test"] == test)
                    ]
                    cells.append(_cell(None if found.empty else found.iloc[0], True))
            if any(cells):
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if power is not None:
        summary_power = summarise(power)
        others = [t for t in POWER_TESTS if t != "gate_equality"]
        lines += [
            "",
            "### Power at `heterogeneity=1` (the demo's heterogeneity; rejection rate at 5%)",
            "",
            "GATE equality per firm type (the types whose true GATEs differ should be "
            "rejected; the others are nulls), then the omnibus tests.",
            "",
            "| design | estimator | seeds | GATE equality by firm type | "
            + " | ".join(LABELS[t] for t in others)
            + " |",
            "|---|---|---|---|" + "---|" * len(others),
        ]
        for (design, estimator), part in summary_power.groupby(["design", "estimator"]):
            raw = power[
                (power["design"] == design)
                & (power["estimator"] == estimator)
                & (power["test"] == "gate_equality")
            ]
            by_type = (raw["p"] < ALPHA).groupby(raw["key"]).mean()
            equality = ", ".join(f"{key} {rate:.2f}" for key, rate in by_type.items())
            cells = []
            for test in others:
                found = part[part["test"] == test]
                cells.append("" if found.empty else f"{found.iloc[0]['rate']:.2f}")
            seeds = int(part["seeds"].max())
            lines.append(
                f"| {design} | {estimator} | {seeds} | {equality} | " + " | ".join(cells) + " |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--designs", nargs="+", default=["panel40", "panel150"])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--heterogeneity", type=float, default=0.0)
    parser.add_argument("--cache", type=Path, default=None, help="folder of cached fits")
    parser.add_argument("--csv", type=Path, default=None, help="write per-test rows here")
    parser.add_argument("--from-csv", type=Path, nargs="+", default=None)
    parser.add_argument("--before-csv", type=Path, nargs="+", default=None)
    parser.add_argument("--power-csv", type=Path, nargs="+", default=None)
    parser.add_argument("--notes", default="", help="design notes written into the section")
    args = parser.parse_args()
    if args.from_csv is None:
        started = time.perf_counter()
        rows: list[dict] = []
        for design in args.designs:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                arrays = fit_seed(design, seed, args.heterogeneity, args.cache)
                rows += analyse_seed(design, seed, args.heterogeneity, arrays)
                print(f"{design} seed {seed} ({time.perf_counter() - started:.0f}s)", flush=True)
        frame = pd.DataFrame(rows)
        if args.csv is not None:
            frame.to_csv(args.csv, index=False)
        print(summarise(frame).to_string(index=False))
        return
    read = lambda paths: pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)  # noqa: E731
    after = read(args.from_csv)
    before = None if args.before_csv is None else read(args.before_csv)
    power = None if args.power_csv is None else read(args.power_csv)
    markdown = section(after, before, power, args.notes)
    print(markdown)
    update_results_section(
        "heterogeneity_size",
        markdown,
        config="default estimators (forest 100 trees), n_jobs 1, heterogeneity n_bootstrap 200",
        code=f"heterogeneity stage {git_state().describe()}",
    )


if __name__ == "__main__":
    main()
