"""False alarms of the refuters on correctly specified data, old rules and new.

For each seed, a synthetic firm table (``design``: firms, cities) or a synthetic firm-year
panel is drawn from the project's own generators, where the model is right: no hidden
confounder, the controls are observed. ``linear_dml`` (LightGBM nuisances, ``cv``
cluster-grouped folds, one process) is fitted and :func:`vaer.robustness.run_robustness`
runs the refuters: placebo treatment, random common cause, three 80% subsets of cities,
and leave one group out over every firm type (tables) or the placebo shock and the five
alternative measures (panel). A check raises a false alarm when any
of its rows is flagged. The same refits are also judged by the rules the checks had
before (CI covers 0, within one SE, inside the full-sample or same-firms CI, at least 80%
of subsets inside the full-sample CI, same sign and significant) and, for data subsets,
by the sampling-only rule ``|subset - full| / (se_full * sqrt(1/f - 1))`` (Bonferroni).

:func:`false_alarms` is the one-seed function a Monte Carlo harness calls;
:func:`measure` returns the same verdicts with the old rules and diagnostics.

Run: ``PYTHONPATH=src python benchmarks/refuter_false_alarms.py --seeds 100`` (about 20 s
per seed and design on one core); ``--quick`` runs 10 seeds of the 40-city table.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vaer.config.models import (
    DataConfig,
    LinearDMLSpec,
    NuisanceConfig,
    Roles,
    SyntheticTableConfig,
)
from vaer.config.panel import MeasuresConfig, SyntheticPanelConfig
from vaer.config.robustness import PlaceboShockConfig, RobustnessConfig
from vaer.data.design import AnalysisData, build_analysis_data
from vaer.data.synthetic import PANEL_ROLES
from vaer.data.synthetic_table import CONTROLS, MODIFIERS, make_synthetic_table
from vaer.estimators.fit import fit_estimators
from vaer.measures.study import load_study_data
from vaer.robustness import RobustnessResult, run_robustness
from vaer.robustness.panel import panel_rebuild
from vaer.robustness.results import CheckResult

TABLE_ROLES = Roles(
    unit="firm_id",
    outcome="resilience",
    treatment="va_index",
    cluster="city",
    controls=CONTROLS,
    modifiers=MODIFIERS,
    firm_types=["ownership", "size_class", "trade_mode", "factor_intensity", "region"],
)
FRACTION = 0.8
SUBSETS = 3
NOT_CHECKS = ("ate_z", "seconds", "seed", "commit")
Z95 = float(stats.norm.ppf(0.975))


@dataclass(frozen=True)
class Design:
    """One correctly specified design.

    Attributes
    ----------
    name : str
    mode : {"table", "panel"}
        The synthetic firm table or the synthetic firm-year panel (its analysis table for
        the 2020 shock, with the placebo shock and alternative measures).
    n_units : int
        Firms.
    n_clusters : int
        Cities.
    cv : int
        Cross-fitting folds of ``linear_dml``.
    alpha : float
        False-alarm rate of each check (``robustness.alpha``).
    leave_one_group_out : bool
        Whether to run the check (one refit per firm-type level, the costliest).
    """

    name: str
    mode: Literal["table", "panel"] = "table"
    n_units: int = 1500
    n_clusters: int = 40
    cv: int = 3
    alpha: float = 0.05
    leave_one_group_out: bool = True


DESIGNS = {
    "table_40": Design("table_40", n_clusters=40),
    "table_150": Design("table_150", n_clusters=150),
    "panel_40": Design(
        "panel_40", mode="panel", n_units=3000, n_clusters=40, leave_one_group_out=False
    ),
}


def _config(design: Design) -> RobustnessConfig:
    panel = design.mode == "panel"
    return RobustnessConfig.model_validate(
        {
            "enabled": True,
            "alpha": design.alpha,
            "max_units": None,
            "data_subsets": {"fraction": FRACTION, "repeats": SUBSETS},
            "leave_one_group_out": {"enabled": design.leave_one_group_out},
            "placebo_shock": {"enabled": panel},
            "alternative_measures": {"enabled": panel},
            "sensitivity": {"enabled": False},
        }
    )


def _data(seed: int, design: Design) -> tuple[AnalysisData, float, object]:
    """The analysis data, the true average effect and the panel rebuild (None for a table)."""
    if design.mode == "table":
        cfg = SyntheticTableConfig(n_units=design.n_units, n_clusters=design.n_clusters)
        table = make_synthetic_table(cfg, random_state=seed)
        return build_analysis_data(table.frame, TABLE_ROLES), float(np.mean(table.truth.tau)), None
    roles = Roles(**PANEL_ROLES)  # type: ignore[arg-type]
    source = DataConfig(
        mode="panel",
        panel=SyntheticPanelConfig(n_firms=design.n_units, n_cities=design.n_clusters),
    )
    loaded = load_study_data(source, roles, MeasuresConfig(), seed=seed)
    assert loaded.truth is not None
    assert loaded.source_panel is not None
    rebuild = panel_rebuild(
        loaded.source_panel, roles, MeasuresConfig(), calm=PlaceboShockConfig().window
    )
    return build_analysis_data(loaded.frame, roles), float(loaded.truth.ate), rebuild


def refute(seed: int, design: Design) -> tuple[RobustnessResult, float, float, float]:
    """Run the refuters on one seed of ``design``; also the run's estimate, SE and truth."""
    data, truth, rebuild = _data(seed, design)
    spec = LinearDMLSpec.model_validate({"kind": "linear_dml", "params": {"cv": design.cv}})
    nuisance = NuisanceConfig(n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        estimation = fit_estimators(data, [spec], nuisance, random_state=seed, n_jobs=1)
        result = run_robustness(
            data, estimation, [spec], nuisance, _config(design), random_state=seed,
            rebuild=rebuild,  # type: ignore[arg-type]
        )  # fmt: skip
    ate = estimation.estimators[0].ate
    return result, ate.estimate, ate.se, truth


def _by_check(result: RobustnessResult) -> dict[str, list[CheckResult]]:
    out: dict[str, list[CheckResult]] = {}
    for row in result.checks:
        out.setdefault(row.check, []).append(row)
    return out


def _old_alarm(check: str, rows: list[CheckResult]) -> bool:
    """Whether the rule the check had before would have flagged these refits."""
    if check in ("placebo_treatment", "placebo_shock"):
        return any(not r.ci_low <= 0.0 <= r.ci_high for r in rows)
    if check == "random_common_cause":
        return any(abs(r.estimate - r.reference) > r.reference_se for r in rows)
    if check == "data_subsets":
        subsets = [r for r in rows if r.variant != "all"]
        inside = [abs(r.estimate - r.reference) <= Z95 * r.reference_se for r in subsets]
        return float(np.mean(inside)) < 0.8
    if check == "leave_one_group_out":
        return any(abs(r.estimate - r.reference) > Z95 * r.reference_se for r in rows)
    if check == "alternative_measures":
        return any(
            not (r.estimate * r.reference > 0 and not r.ci_low <= 0.0 <= r.ci_high) for r in rows
        )
    raise ValueError(f"no old rule for check '{check}'")


def measure(seed: int, design: Design) -> dict[str, float]:
    """Verdicts of every check on one seed, old and new rules, and diagnostics.

    Keys: ``<check>`` (1.0 if the new rule flags the check), ``<check>.old`` (the old
    rule), ``data_subsets.sampling_only``, ``data_subsets.shift_se`` (each subset's
    ``(subset - full) / se_full``, the mean of their squares), ``rcc.shift_se``,
    ``ate_z`` (the run's ``(estimate - truth) / se``) and ``seconds``.
    """
    started = time.perf_counter()
    result, estimate, se, truth = refute(seed, design)
    out: dict[str, float] = {}
    for check, rows in _by_check(result).items():
        out[check] = float(not all(r.passed for r in rows))
        out[f"{check}.old"] = float(_old_alarm(check, rows))
    subsets = [r for r in result.checks if r.check == "data_subsets" and r.variant != "all"]
    shifts = np.array([(r.estimate - r.reference) / r.reference_se for r in subsets])
    critical = float(stats.norm.isf(design.alpha / (2 * len(subsets))))
    out["data_subsets.sampling_only"] = float(
        np.any(np.abs(shifts) / math.sqrt(1 / FRACTION - 1) > critical)
    )
    out["data_subsets.shift_se2"] = float(np.mean(shifts**2))
    (rcc,) = [r for r in result.checks if r.check == "random_common_cause"]
    out["rcc.shift_se"] = (rcc.estimate - rcc.reference) / rcc.reference_se
    out["ate_z"] = (estimate - truth) / se
    out["seconds"] = time.perf_counter() - started
    return out


def false_alarms(seed: int, design: Design | str) -> tuple[dict[str, bool], bool]:
    """Whether each check raised a false alarm (any row flagged by its pass rule) on one
    seed of correctly specified data, and whether the checks taken together did (a
    check's Holm-adjusted p-value at most its false-alarm rate, as the report's verdict).

    Parameters
    ----------
    seed : int
    design : Design or str
        A :class:`Design` or the name of one of :data:`DESIGNS`.

    Returns
    -------
    tuple
        Check name -> True if the check flagged the model; True if the family did.

    Raises
    ------
    ValueError
        If ``design`` names no design.
    """
    if isinstance(design, str):
        if design not in DESIGNS:
            raise ValueError(f"unknown design '{design}'; use one of {sorted(DESIGNS)}")
        design = DESIGNS[design]
    result, _, _, _ = refute(seed, design)
    flags = {check: not all(r.passed for r in rows) for check, rows in _by_check(result).items()}
    return flags, result.metrics()["robustness.family.passed"] == 0.0


def summarise(rows: list[dict[str, float]], alpha: float) -> list[tuple[str, str, str, str]]:
    """Rows ``(check, new rule, old rule, target)`` with rates and Monte-Carlo SEs."""

    def rate(key: str) -> str:
        values = np.array([r[key] for r in rows if key in r])
        p = float(values.mean())
        return f"{p:.1%} ± {math.sqrt(p * (1 - p) / len(values)):.1%}"

    checks = [k for k in rows[0] if "." not in k and k not in NOT_CHECKS]
    table = []
    for check in checks:
        old = rate(f"{check}.old")
        if check == "data_subsets":
            old += f"; sampling-only rule {rate('data_subsets.sampling_only')}"
        table.append((check, rate(check), old, f"<= {alpha:.0%}"))
    any_new = np.array([max(r[c] for c in checks) for r in rows])
    any_old = np.array([max(r[f"{c}.old"] for c in checks) for r in rows])
    union = f"<= {len(checks) * alpha:.0%}"
    table.append(("any check", f"{any_new.mean():.1%}", f"{any_old.mean():.1%}", union))
    return table


def run(design: Design, seeds: range, out: Path | None = None) -> list[dict[str, float]]:
    """:func:`measure` over ``seeds``; each row appended to ``out`` (JSON lines) if given."""
    import json

    rows = []
    commit = _source_commit()
    for seed in seeds:
        row = {"seed": float(seed), **measure(seed, design)}
        rows.append(row)
        if out is not None:
            with out.open("a", encoding="utf-8") as handle:
                record = {"design": design.name, "commit": commit, **row}
                handle.write(json.dumps(record) + "\n")
        print(f"{design.name} seed {seed}: {row['seconds']:.1f} s", flush=True)
    return rows


def _source_commit() -> str:
    """``git rev-parse HEAD`` of the vaer source that runs (``unknown`` outside git)."""
    import subprocess

    import vaer

    root = Path(vaer.__file__).resolve().parents[2]
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"commit {done.stdout.strip()}"


def collect(path: Path) -> tuple[dict[str, list[dict[str, float]]], float]:
    """Rows per design from a JSON-lines file of :func:`run`, and their summed seconds."""
    import json

    by_design: dict[str, list[dict[str, float]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        by_design.setdefault(row.pop("design"), []).append(row)
    for rows in by_design.values():
        rows.sort(key=lambda r: r["seed"])
    seconds = sum(r["seconds"] for rows in by_design.values() for r in rows)
    return by_design, seconds


def report(by_design: dict[str, list[dict[str, float]]], seconds: float) -> str:
    """The RESULTS.md section."""
    parts = [
        "## Refuter false alarms on correctly specified data "
        "(`benchmarks/refuter_false_alarms.py`)\n\n",
        "A false alarm is a check with any row flagged on data where the model is right "
        "(project generators, no hidden confounder). New rules: tests at level alpha per "
        "check (`vaer.robustness.rules`); old rules: CI covers 0, within one SE, inside the "
        "full-sample / same-firms CI, 80% of subsets inside the full-sample CI, same sign and "
        "significant. Rates ± binomial Monte-Carlo SE, same refits for old and new. "
        f"{seconds / 60:.0f} min of fitting in all, one core. Config: `linear_dml` (LightGBM "
        "nuisances with the `NuisanceConfig` defaults, `n_jobs=1`), `robustness.alpha` 0.05, "
        f"{SUBSETS} subsets of {FRACTION:.0%} of the cities, leave one group out over every "
        "firm type (tables), `max_units` off, sensitivity off.\n",
    ]
    for name, rows in by_design.items():
        design = DESIGNS[name]
        z = np.array([r["ate_z"] for r in rows])
        shift = np.array([r["data_subsets.shift_se2"] for r in rows])
        refit_noise = math.sqrt(max(float(shift.mean()) - (1 / FRACTION - 1), 0.0))
        parts.append(
            f"\n**{name}** (vaer {rows[0].get('commit', _source_commit())}): {design.mode}, "
            f"{design.n_units} firms, {design.n_clusters} cities, "
            f"`linear_dml` ({design.cv} folds), seeds {int(rows[0]['seed'])}-"
            f"{int(rows[-1]['seed'])} ({len(rows)}). The run's ATE: SD of "
            f"(estimate - truth)/SE {z.std(ddof=1):.2f}, 95% CI coverage "
            f"{np.mean(np.abs(z) < Z95):.1%}. Subset shift (subset - full)/SE: RMS "
            f"{math.sqrt(shift.mean()):.2f}, of which sampling sqrt(1/f - 1) = "
            f"{math.sqrt(1 / FRACTION - 1):.2f} and refit noise about {refit_noise:.2f}.\n\n"
            "| check | false alarms, new rule | old rule | target |\n|---|---|---|---|\n"
        )
        parts.extend(f"| {a} | {b} | {c} | {d} |\n" for a, b, c, d in summarise(rows, design.alpha))
    return "".join(parts)


def main() -> None:
    from common import log_benchmark, update_results_section

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--designs", nargs="+", default=["table_40", "table_150"])
    parser.add_argument("--out", type=Path, default=None, help="JSON lines of every seed")
    parser.add_argument("--quick", action="store_true", help="10 seeds of table_40")
    parser.add_argument("--write", action="store_true", help="rewrite the RESULTS.md section")
    parser.add_argument(
        "--collect",
        type=Path,
        default=None,
        help="report the rows of a JSON-lines file written by --out (runs nothing)",
    )
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.designs = 10, ["table_40"]
    started = time.perf_counter()
    if args.collect is not None:
        by_design, seconds = collect(args.collect)
    else:
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        by_design = {name: run(DESIGNS[name], seeds, args.out) for name in args.designs}
        seconds = time.perf_counter() - started
    md = report(by_design, seconds)
    print(md)
    if args.write:
        update_results_section("refuter_false_alarms", md)
        flat = {
            f"{name}.{key}": float(np.mean([r[key] for r in rows]))
            for name, rows in by_design.items()
            for key in rows[0]
            if key not in ("seed", "commit")
        }
        log_benchmark("refuter_false_alarms", flat, {**vars(args), "designs": args.designs})
        print({name: asdict(DESIGNS[name]) for name in args.designs})


if __name__ == "__main__":
    main()
