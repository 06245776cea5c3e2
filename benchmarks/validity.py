"""Validity on current defaults: every interval and test vaer prints, against the truth.

One row per claim of issue 21 (per-firm intervals, heterogeneity tests under a constant
effect, channel shares, mechanism tests, ATE with few clusters, refuters' false alarms),
each measured over many seeds with its Monte-Carlo SE and a PASS/FAIL verdict, written to
the ``validity`` (or ``validity_quick``) section of ``benchmarks/RESULTS.md``.

Every run goes through the product: :func:`vaer.pipeline.run_experiment` on a config built
like ``experiments/baseline.yaml`` (the synthetic panel, ``data.mode: panel``) or on the
held-out table of ``heldout_designs.py`` written to Parquet (``data.source: file``,
``data.mode: table``), and the claims are read from the tables the run writes
(``validity_claims.py``), never from vaer's internals.

Designs
-------
Tuning designs (vaer's defaults were chosen on these; none is reported here): vaer's own
generators (:mod:`vaer.data.synthetic`, :mod:`vaer.data.synthetic_table`) at seeds below
1000 and the accuracy designs of ``designs.py``. Reporting designs (:data:`DESIGNS`): the
project's panel at seeds 1000 and up, and the held-out table, whose functional forms are
none of the project's.

One pipeline run per design and seed feeds every claim it can: the default estimators
(``causal_forest_dml``, ``linear_dml``, as ``configs/default.yaml``) with the design's
stages. The other estimators of the ATE claim run in a second run on the same data with
every later stage off, because the attribution stage explains every estimator of a run
(the permutation explainer of the IV estimators costs about a minute per seed) and has no
``estimators`` option. Every estimator and stage keeps today's defaults; what differs from
``make demo`` is stated in the section: smaller panels, no tracking, CSV tables only, and
no missing proxy values (``data.panel.missing_rate: 0``) so that every mediator is
complete (a mediator with missing values is refused, not dropped per mediator).

Refuters' false alarms are read from the runs' ``tables/robustness.csv`` and, where
``benchmarks/refuter_false_alarms.py`` provides ``false_alarms(seed, design)``, also from
that per-seed function on its designs (``refuters_*``: every refuter the data allow).

Usage::

    PYTHONPATH=src python benchmarks/validity.py            # full (make validity)
    PYTHONPATH=src python benchmarks/validity.py --quick    # quick (make validity-quick)
    cd benchmarks && PYTHONPATH=../src python validity.py --from-csv validity_runs/seeds_full.csv.gz

Cost, measured on the 2-core machine: the quick form (50 runs) takes 13 CPU-minutes, an
estimated 7-10 minutes on 2 idle cores (38 minutes wall when other jobs held the load
average at 13-16); the full form (850 runs) about 220 CPU-minutes (per-run CPU:
panel150_h1 35 s, table150_h1 46 s, panel40_h1 12 s, the refuter designs 9-10 s, the
others 5-7 s), an estimated 2 hours on 2 idle cores.

Per-seed measurements go to ``benchmarks/validity_runs/seeds_<full|quick>.csv.gz`` as they
arrive (``--resume`` skips the design/seed pairs already there), so the section can be
rebuilt with ``--from-csv`` without rerunning.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # one thread per process: at most 2 processes run

import argparse  # noqa: E402
import copy  # noqa: E402
import multiprocessing  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    GitState,
    git_state,
    log_benchmark,
    source_root,
    update_results_section,
)
from heldout_designs import (  # noqa: E402
    ROLES as HELDOUT_ROLES,
)
from heldout_designs import (  # noqa: E402
    HeldoutParams,
    binary_estimand,
    make_heldout_table,
    write_heldout,
)
from validity_claims import (  # noqa: E402
    ROW_CLAIMS,
    TARGETS,
    Row,
    ate_rows,
    cate_rows,
    channel_rows,
    gate_rows,
    heterogeneity_rows,
    mechanism_rows,
    read_tables,
    refuter_family_rows,
    refuter_rows,
    summarise,
)

RUNS = Path(__file__).resolve().parent / "validity_runs"
FIRST_SEED = 1000
MAIN_ESTIMATORS = ("causal_forest_dml", "linear_dml")
CONTINUOUS_EXTRA = ("sparse_linear_dml", "orthoiv", "dmliv", "causal_iv_forest")
BINARY = ("dr_learner", "forest_dr_learner")
IV = ("orthoiv", "dmliv", "causal_iv_forest")
STAGES = ("heterogeneity", "attribution", "robustness")
CSV_COLUMNS = [
    "design",
    "seed",
    "source",
    "n_cities",
    "heterogeneity",
    "run",
    "claim",
    "estimator",
    "item",
    "value",
    "t",
    "estimate",
    "se",
    "truth",
    "commit",
    "dirty",
    "note",
]


@dataclass(frozen=True)
class Design:
    """A reporting design: data, which runs it gets, and its seeds.

    Attributes
    ----------
    name : str
    source : {"panel", "table", "external"}
        vaer's synthetic panel through ``data.mode: panel``, the held-out table, or a
        design of ``refuter_false_alarms.py`` (``external``: its per-seed function).
    n_firms, n_cities : int
        Panel: firms drawn (``data.panel.n_firms``; about 63% are active at the COVID
        window's base year and make the table). Table: firms in the table.
    heterogeneity : float
        ``data.panel.heterogeneity`` / :attr:`HeldoutParams.heterogeneity` (0: constant).
    unobserved_confounding : float
        Strength of the hidden confounder (held-out table only).
    stages : tuple of str
        Stages of the main run (of ``heterogeneity``, ``attribution``, ``robustness``).
    main : bool
        Whether the main run (the default estimators) happens.
    extra : tuple of str
        Estimators of the second, ATE-only run.
    seeds_full, seeds_quick : int
    purpose : str
        The claims the design feeds, for the section.
    """

    name: str
    source: str
    n_firms: int
    n_cities: int
    heterogeneity: float
    stages: tuple[str, ...]
    extra: tuple[str, ...]
    seeds_full: int
    seeds_quick: int
    purpose: str
    main: bool = True
    unobserved_confounding: float = 0.0


DESIGNS: dict[str, Design] = {
    d.name: d
    for d in (
        Design(
            name="panel150_h1", source="panel", n_firms=4000, n_cities=150, heterogeneity=1.0,
            stages=STAGES, extra=CONTINUOUS_EXTRA, seeds_full=100, seeds_quick=6,
            purpose="per-firm intervals, power, channel shares, mechanisms, ATE (150 cities), "
            "refuters",
        ),
        Design(
            name="panel40_h1", source="panel", n_firms=4000, n_cities=40, heterogeneity=1.0,
            stages=("heterogeneity",), extra=CONTINUOUS_EXTRA, seeds_full=100, seeds_quick=4,
            purpose="ATE (40 cities); per-firm intervals and power with few clusters",
        ),
        Design(
            name="panel150_h0", source="panel", n_firms=4000, n_cities=150, heterogeneity=0.0,
            stages=("heterogeneity",), extra=(), seeds_full=200, seeds_quick=16,
            purpose="size and mean t of the heterogeneity tests under a constant effect",
        ),
        Design(
            name="table150_h1", source="table", n_firms=4000, n_cities=150, heterogeneity=1.0,
            stages=STAGES, extra=CONTINUOUS_EXTRA + BINARY, seeds_full=100, seeds_quick=6,
            purpose="per-firm intervals, power, channel shares (no-effect channel tracks city "
            "GDP), mechanisms, ATE, refuters",
        ),
        Design(
            name="table150_h0", source="table", n_firms=4000, n_cities=150, heterogeneity=0.0,
            stages=("heterogeneity",), extra=(), seeds_full=100, seeds_quick=8,
            purpose="size of the heterogeneity tests on held-out data",
        ),
        Design(
            name="table150_u", source="table", n_firms=4000, n_cities=150, heterogeneity=1.0,
            stages=(), extra=IV, seeds_full=50, seeds_quick=4, main=False,
            unobserved_confounding=1.0,
            purpose="IV estimators' ATE with a hidden confounder (only the pilot identifies it)",
        ),
        Design(
            name="refuters_panel40", source="external", n_firms=3000, n_cities=40,
            heterogeneity=1.0, stages=("robustness",), extra=(), seeds_full=100, seeds_quick=3,
            main=False,
            purpose="refuters' false alarms: `refuter_false_alarms.false_alarms(seed, "
            "'panel_40')` (every refuter the panel allows)",
        ),
        Design(
            name="refuters_table150", source="external", n_firms=1500, n_cities=150,
            heterogeneity=1.0, stages=("robustness",), extra=(), seeds_full=100, seeds_quick=3,
            main=False,
            purpose="refuters' false alarms: `refuter_false_alarms.false_alarms(seed, "
            "'table_150')` (vaer's synthetic table)",
        ),
    )
}  # fmt: skip
EXTERNAL = {"refuters_panel40": "panel_40", "refuters_table150": "table_150"}
"""Harness design -> design name of ``refuter_false_alarms.false_alarms``."""


# ----------------------------------------------------------------------- configs


def _panel_raw(root: Path, design: Design) -> dict[str, Any]:
    """The experiment as ``experiments/baseline.yaml`` (over ``configs/default.yaml``), with
    the design's panel, the mediators ``d_<proxy>`` and the harness's settings."""
    from vaer.config.loader import load_raw

    raw = load_raw(root / "experiments" / "baseline.yaml")
    raw["data"]["panel"] = {
        **raw["data"].get("panel", {}),
        "n_firms": design.n_firms,
        "n_cities": design.n_cities,
        "heterogeneity": design.heterogeneity,
        "missing_rate": 0.0,
    }
    mechanisms = raw["roles"]["mechanisms"]
    raw["roles"]["mediators"] = {
        channel: [f"d_{proxy}" for proxy in proxies] for channel, proxies in mechanisms.items()
    }
    return raw


def _table_raw(root: Path, path: Path) -> dict[str, Any]:
    """The experiment as ``experiments/table_demo.yaml`` on the held-out Parquet file."""
    from vaer.config.loader import load_raw

    raw = load_raw(root / "experiments" / "table_demo.yaml")
    raw["data"] = {"source": "file", "mode": "table", "path": str(path)}
    raw["roles"] = copy.deepcopy(HELDOUT_ROLES)
    return raw


def table_base(root: Path, design: Design, seed: int, out: Path) -> tuple[dict[str, Any], Any]:
    """The held-out table of ``design`` at ``seed``, written to ``out`` as Parquet, and the
    experiment reading it (:func:`_table_raw`); returns ``(raw, held-out table)``."""
    held = make_heldout_table(
        HeldoutParams(
            n_firms=design.n_firms,
            n_cities=design.n_cities,
            heterogeneity=design.heterogeneity,
            unobserved_confounding=design.unobserved_confounding,
        ),
        random_state=seed,
    )
    return _table_raw(root, write_heldout(held, out / "heldout.parquet")), held


def build_raw(
    base: dict[str, Any],
    design: Design,
    seed: int,
    out: Path,
    *,
    estimators: tuple[str, ...],
    stages: tuple[str, ...],
) -> dict[str, Any]:
    """``base`` with the seed, the estimators (default params, forests with
    ``per_firm_intervals: true``), the stages switched on or off, tracking off and CSV
    tables written under ``out``."""
    raw = copy.deepcopy(base)
    raw["name"] = f"validity-{design.name}"
    raw["seed"] = seed
    # forests print their per-firm intervals (off by default) so that claim 1 can measure them
    raw["estimators"] = [
        {"kind": kind, "params": {"per_firm_intervals": True}}
        if "forest" in kind
        else {"kind": kind}
        for kind in estimators
    ]
    for stage in STAGES:
        raw.setdefault(stage, {})
        raw[stage]["enabled"] = stage in stages
    # forests' share intervals (withheld by default) are printed so that claim 3 measures them
    raw["attribution"]["smoothed_share_intervals"] = True
    if design.source == "table":
        raw["robustness"].setdefault("placebo_shock", {})["enabled"] = False
    raw["tracking"] = {"enabled": False}
    raw["report"] = {"out": str(out / "{run_name}-{run_id}"), "formats": ["csv"]}
    return raw


# ------------------------------------------------------------------- one seed


def _panel_truth(config: Any) -> Any:
    """The truth of the panel run's analysis table (the generator's, as the pipeline loads it)."""
    from vaer.measures.study import load_study_data

    loaded = load_study_data(config.data, config.roles, config.measures, seed=config.seed)
    if not loaded.panel or not loaded.panel.get("truth_exact"):
        raise ValueError("the panel's truth is not exact for these measures")
    return loaded.truth


def _projection_shares(config: Any, truth: Any) -> dict[str, float]:
    """The channel shares of the best linear projection of the true effect on the run's
    encoded modifiers (what a linear model's share intervals name)."""
    from vaer.data.design import build_analysis_data
    from vaer.measures.study import load_study_data

    loaded = load_study_data(config.data, config.roles, config.measures, seed=config.seed)
    data = build_analysis_data(loaded.frame, config.roles)
    shares = truth.linear_projection_shares(data.x.set_axis(data.units), data.feature_groups)
    return {str(k): float(v) for k, v in shares.items()}


_STATE: GitState | None = None
"""Git state of the vaer source when this process first imported the pipeline."""


def run_seed(
    design_name: str, seed: int, stages: tuple[str, ...] | None = None, extra: bool = True
) -> list[Row]:
    """Run one seed of one design through the pipeline and measure every claim it feeds.

    Parameters
    ----------
    design_name : str
        A key of :data:`DESIGNS`.
    seed : int
    stages : tuple of str, optional
        Restrict the main run's stages to these (default: the design's).
    extra : bool
        Whether the ATE-only run of the other estimators happens.

    Returns
    -------
    list of dict
        Measurement rows (see ``validity_claims.py``) with the design, seed, run and the
        git state of the vaer source when this process first imported the pipeline (a
        worker keeps the code it imported for all its tasks); a failed run gives one
        ``error`` row.
    """
    global _STATE
    root = source_root()
    if _STATE is None:  # the code this process imports now and keeps for every later task
        _STATE = git_state(root)
    state = _STATE
    from vaer.config.loader import validate_config
    from vaer.pipeline import run_experiment

    design = DESIGNS[design_name]
    chosen = design.stages if stages is None else tuple(s for s in design.stages if s in stages)
    rows: list[Row] = []
    if design.source == "external":
        rows = external_refuter_rows(EXTERNAL[design.name], seed)
    with tempfile.TemporaryDirectory(prefix="vaer-validity-") as folder:
        out = Path(folder)
        truths: dict[str, float] = {}
        if design.source == "table":
            base, held = table_base(root, design, seed, out)
            truth = held.truth
            if design.unobserved_confounding == 0:
                truths.update({kind: binary_estimand(held) for kind in BINARY})
        elif design.source == "panel":
            base = _panel_raw(root, design)
            truth = None
        runs: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = []
        if design.main:
            runs.append(("main", MAIN_ESTIMATORS, chosen))
        if extra and design.extra:
            runs.append(("extra", design.extra, ()))
        for run, estimators, run_stages in runs:
            started, cpu = time.perf_counter(), time.process_time()
            try:
                raw = build_raw(
                    base, design, seed, out / run, estimators=estimators, stages=run_stages
                )
                config = validate_config(raw)
                result = run_experiment(config)
                if truth is None:
                    truth = _panel_truth(config)
                for kind in estimators:
                    truths.setdefault(kind, truth.ate)
                tables = read_tables(result.out_dir)
                projected = (
                    _projection_shares(config, truth) if "attribution" in run_stages else None
                )
                found = measure(
                    tables, truth, truths, estimators=estimators, stages=run_stages,
                    projected=projected,
                )  # fmt: skip
            except Exception as exc:
                found = [
                    {
                        "claim": "error",
                        "estimator": "",
                        "item": type(exc).__name__,
                        "value": 1.0,
                        "note": traceback.format_exc(limit=3)[-500:],
                    }
                ]
            seconds = time.perf_counter() - started
            found.append({"claim": "seconds", "estimator": "", "item": run, "value": seconds})
            found.append(
                {"claim": "cpu_seconds", "estimator": "", "item": run,
                 "value": time.process_time() - cpu}
            )  # fmt: skip
            for row in found:
                row["run"] = run
            rows += found
    for row in rows:
        row.update(
            design=design.name,
            seed=seed,
            source=design.source,
            n_cities=design.n_cities,
            heterogeneity=design.heterogeneity,
            commit=state.commit[:12],
            dirty=state.dirty,
        )
    return rows


def refuter_hook() -> Any | None:
    """``refuter_false_alarms.false_alarms`` (another benchmark's per-seed function:
    ``false_alarms(seed, design_name) -> {check: flagged}``), or None where it is absent."""
    try:
        import refuter_false_alarms
    except ImportError:
        return None
    return getattr(refuter_false_alarms, "false_alarms", None)


def external_refuter_rows(name: str, seed: int) -> list[Row]:
    """False alarms of every refuter on one seed of ``refuter_false_alarms``' design
    ``name`` (claim ``refuter_false_alarm``, estimator ``linear_dml`` as that script fits),
    with the checks' family verdict; an ``error`` row if the hook is missing or fails."""
    started, cpu = time.perf_counter(), time.process_time()
    hook = refuter_hook()
    try:
        if hook is None:
            raise ImportError("benchmarks/refuter_false_alarms.py has no `false_alarms`")
        flags, family = hook(seed, name)
        rows: list[Row] = [
            {"claim": "refuter_false_alarm", "estimator": "linear_dml", "item": str(check),
             "value": float(bool(flagged))}
            for check, flagged in flags.items()
        ]  # fmt: skip
        rows += refuter_family_rows("linear_dml", flags, family)
    except Exception as exc:
        rows = [{"claim": "error", "estimator": "", "item": type(exc).__name__, "value": 1.0,
                 "note": traceback.format_exc(limit=3)[-500:]}]  # fmt: skip
    rows.append({"claim": "seconds", "estimator": "", "item": "external",
                 "value": time.perf_counter() - started})  # fmt: skip
    rows.append({"claim": "cpu_seconds", "estimator": "", "item": "external",
                 "value": time.process_time() - cpu})  # fmt: skip
    for row in rows:
        row["run"] = "external"
    return rows


def measure(
    tables: dict[str, pd.DataFrame],
    truth: Any,
    truths: dict[str, float],
    *,
    estimators: tuple[str, ...] = (),
    stages: tuple[str, ...] = (),
    projected: dict[str, float] | None = None,
) -> list[Row]:
    """Every claim's measurement rows from one run's tables (``projected``: the best linear
    projection's channel shares, for linear estimators' share intervals).

    A stage that ran (``stages``) but wrote no table for a claim still gives that claim a
    row per estimator with value NaN (item ``no <table> table``), so the claim fails in
    the section instead of vanishing from it.
    """
    rows: list[Row] = []
    if "cate" in tables:
        cate = tables["cate"]
        rows += cate_rows(cate[~cate["estimator"].isin(BINARY)], truth)
    if "ate" in tables:
        rows += ate_rows(tables["ate"], truths)
    rows += heterogeneity_rows(tables)
    if "gate" in tables:
        rows += gate_rows(tables["gate"], truth)
    heterogeneous = bool(truth.shap.abs().to_numpy().sum() > 0)
    missing: list[tuple[str, str, tuple[str, ...]]] = []
    channels = tables.get("shap_channels")
    if channels is not None and len(channels) and heterogeneous:
        rows += channel_rows(channels, truth, projected)
    elif "attribution" in stages and heterogeneous:
        missing.append(("channel_coverage", "shap_channels", estimators))
    if "mechanisms" in tables:
        rows += mechanism_rows(tables["mechanisms"], truth)
    elif "attribution" in stages:
        missing.append(("mechanism_coverage", "mechanisms", ("mechanisms",)))
    if "robustness" in tables:
        rows += refuter_rows(tables["robustness"])
    elif "robustness" in stages:
        missing.append(("refuter_false_alarm", "robustness", ("linear_dml",)))
    for claim, table, labels in missing:
        rows += [
            {"claim": claim, "estimator": label, "item": f"no {table} table", "value": np.nan}
            for label in labels
        ]
    return rows


def _seed_task(args: tuple[str, int, tuple[str, ...] | None, bool]) -> list[Row]:
    return run_seed(*args)


# --------------------------------------------------------------- CSV and section


def append_rows(path: Path, rows: list[Row]) -> None:
    """Append measurement rows to the per-seed CSV (header on first write)."""
    frame = pd.DataFrame(rows)
    for column in CSV_COLUMNS:
        if column not in frame.columns:
            frame[column] = np.nan
    frame = frame[CSV_COLUMNS]
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, mode="a", header=not path.is_file(), index=False)


def read_rows(path: Path) -> pd.DataFrame:
    """The per-seed CSV (rows appended in batches may add a ``note`` column late)."""
    return pd.read_csv(path, low_memory=False)


def wall_row(seconds: float, load: tuple[float, float], runs: int) -> Row:
    """The CSV row recording a run's wall time (``value``) and the 1-minute load average at
    its start (``estimate``) and end (``se``), so that a rebuilt section states them."""
    return {"design": "_all", "seed": -1, "claim": "wall_seconds", "item": f"{runs} runs",
            "value": seconds, "estimate": load[0], "se": load[1]}  # fmt: skip


def measured_code(frame: pd.DataFrame) -> str:
    """The commits of the vaer source the rows were measured on, and whether any tree had
    uncommitted changes (the section's footer states this, not the tree that writes it)."""
    commits = sorted(set(frame["commit"].dropna().astype(str)))
    dirty = bool(frame["dirty"].astype(str).str.lower().eq("true").any())
    state = "dirty: uncommitted changes to tracked files" if dirty else "clean"
    return f"{'commits' if len(commits) > 1 else 'commit'} {', '.join(commits)} ({state})"


def claim_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The measurement rows of ``frame`` (no timings or errors), without per-firm rows of
    the binary learners: their ``tau_hat`` is the effect of high vs low VA, not tau(x_i)."""
    data = frame[frame["claim"].isin(ROW_CLAIMS)]
    binary_cate = data["claim"].str.startswith("cate_") & data["estimator"].isin(BINARY)
    return data[~binary_cate].copy()


def _fmt(value: float, digits: int = 3) -> str:
    return "—" if not np.isfinite(value) else f"{value:.{digits}f}"


def headline(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per design, claim and estimator: the item furthest from (or outside) the
    target, and how many items the claim has."""
    rows = []
    for (_design, claim, _estimator), part in summary.groupby(
        ["design", "claim", "estimator"], sort=False
    ):
        target = TARGETS.get(claim)
        if target is None:
            continue
        ok = part["verdict"].str.startswith("PASS")
        distance = part["measured"].map(target.distance).fillna(np.inf)
        # failing: the item furthest outside the target; else the one closest to a bound
        chosen = distance[~ok].idxmax() if (~ok).any() else distance.idxmin()
        worst = part.loc[chosen]
        rows.append(
            {
                **worst.to_dict(),
                "items": len(part),
                "failing": int((~ok).sum()),
            }
        )
    return pd.DataFrame(rows)


CLAIM_NAMES = {
    "cate_coverage": "1. per-firm 95% intervals: pointwise coverage of tau(x_i)",
    "het_size": "2. heterogeneity tests: size at 5%, constant effect",
    "het_mean_t": "2. heterogeneity tests: mean t, constant effect",
    "channel_coverage": "3. channel shares: coverage of the share the interval names",
    "mechanism_coverage": "4. mechanism tests: coverage of true T->M effect",
    "mechanism_zero_reject": "4. mechanism tests: zero-effect mediator rejected",
    "ate_coverage": "5. ATE 95% CI (cluster-robust row): coverage",
    "ate_bias_se": "5. ATE: bias / mean SE",
    "refuter_false_alarm": "6. refuters: false alarms on correct data, per check",
    "refuter_family": "6. refuters: false alarms on correct data, all checks together (Holm)",
}


def summary_name(seeds_name: str) -> str:
    """The summary file written beside a per-seed file: ``seeds_<name>`` ->
    ``summary_<name>`` (so a partial run with its own ``--csv`` never overwrites the full
    run's summary)."""
    return "summary_" + seeds_name.removeprefix("seeds_")


def markdown(
    frame: pd.DataFrame,
    *,
    quick: bool,
    seconds: float | None,
    designs: list[str],
    load: tuple[float, float] | None = None,
    section: str | None = None,
    csv_name: str | None = None,
) -> tuple[str, str]:
    """The section (markdown) and the config summary of its machine line; ``load`` is the
    1-minute load average at the start and the end of the runs; ``section`` names a partial
    rerun (its title says so); the per-seed rows are in ``csv_name`` (default
    ``seeds_<quick|full>.csv.gz``), their summary in :func:`summary_name` of it."""
    seeds_name = csv_name or f"seeds_{'quick' if quick else 'full'}.csv.gz"
    errors = frame[frame["claim"] == "error"]
    timing = frame[frame["claim"] == "seconds"]
    data = claim_rows(frame)
    summary = summarise(data)
    top = headline(summary)
    commits = sorted(set(frame["commit"].dropna().astype(str)))
    dirty = bool(frame["dirty"].astype(str).str.lower().eq("true").any())
    lines = [
        "## Validity on current defaults"
        + (f" ({section})" if section else " (quick)" if quick else ""),
        "",
        "Written by `benchmarks/validity.py`"
        + (" `--quick`" if quick else "")
        + "; per-seed rows in `benchmarks/validity_runs/"
        + seeds_name
        + "` (rebuild with `--from-csv`). Every run is `vaer.pipeline.run_experiment` "
        "on today's defaults (`configs/default.yaml` estimators `causal_forest_dml` and "
        "`linear_dml`, default params, nuisances, heterogeneity, attribution and robustness "
        "settings); claims are read from the run's tables (`cate`, `ate`, `gate_tests`, "
        "`calibration`, `gates_sorted`, `rate`, `blp`, `shap_channels`, `mechanisms`, "
        "`robustness`).",
        "",
        "**Tuning designs** (defaults were chosen on these; not reported here): vaer's own "
        "generators `vaer.data.synthetic` (panel) and `vaer.data.synthetic_table` at seeds "
        "< 1000, and the accuracy designs of `benchmarks/designs.py`. **Reporting designs** "
        "(below): the project's synthetic panel through `data.mode: panel` at seeds >= 1000 "
        "(configs as `experiments/baseline.yaml`: COVID resistance, log growth, national "
        "expectation, LQ VA index, `roles.instrument: pilot`; mediators `d_<proxy>`), and "
        "the held-out table of `benchmarks/heldout_designs.py` (different functional forms, "
        "a no-effect channel whose proxy tracks city GDP, two-proxy channel, "
        "heteroskedastic noise), read from Parquet (`data.source: file`, `mode: table`).",
        "",
        "| design | data | firms drawn | cities | effect | main run (default estimators) | "
        "ATE-only run | seeds | feeds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in designs:
        d = DESIGNS[name]
        seeds = frame.loc[frame["design"] == name, "seed"]
        span = f"{seeds.nunique()} ({seeds.min()}-{seeds.max()})" if len(seeds) else "0"
        effect = "constant" if d.heterogeneity == 0 else f"heterogeneity {d.heterogeneity:g}"
        if d.unobserved_confounding:
            effect += f", hidden confounder {d.unobserved_confounding:g}"
        main = (
            ("stages: " + ", ".join(d.stages))
            if d.main and d.stages
            else ("estimation only" if d.main else "—")
        )
        kind = {"panel": "vaer panel", "table": "held-out table"}.get(d.source, "")
        if d.source == "external":
            kind = f"vaer {'panel' if 'panel' in name else 'table'} (refuter_false_alarms.py)"
            main = "`false_alarms`: linear_dml and every refuter"
        lines.append(
            f"| {name} | {kind} | "
            f"{d.n_firms} | {d.n_cities} | {effect} | {main} | {', '.join(d.extra) or '—'} | "
            f"{span} | {d.purpose} |"
        )
    lines += [
        "",
        "Differences from `make demo`: smaller data (4000 firms drawn; the panel's COVID "
        "table keeps the ~63% active in 2018), tracking off, CSV tables only, "
        "`data.panel.missing_rate: 0` (a mediator with missing values is refused), and the "
        "non-default estimators in a second run without the later stages. No estimator "
        "setting is changed: every estimator runs with its default params (full forests).",
        "",
        "### Claims (worst item of each)",
        "",
        "Verdict: the measured value against the issue's target; `*` marks a target bound "
        "within 2 Monte-Carlo SEs of the measured value (more seeds needed to tell). MC SE: "
        "binomial for rates (with p = (k + 1) / (seeds + 2), so that 0/n and n/n keep a "
        "non-zero SE), sd/sqrt(seeds) for shares of firms, mean t and bias.",
        "",
        "| claim | design | estimator | worst item (of n; failing) | target | measured | MC SE "
        "| seeds | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    order = {name: k for k, name in enumerate(CLAIM_NAMES)}
    if len(top):
        top = top.sort_values(
            ["claim", "design"], key=lambda s: s.map(order) if s.name == "claim" else s
        )
        for r in top.itertuples(index=False):
            lines.append(
                f"| {CLAIM_NAMES.get(r.claim, r.claim)} | {r.design} | {r.estimator} | "
                f"{r.item} ({r.items}; {r.failing}) | {r.target} | {_fmt(r.measured)} | "
                f"{_fmt(r.mc_se)} | {r.seeds} | {r.verdict} |"
            )
    power = summary[summary["claim"] == "het_power"]
    if len(power):
        lines += [
            "",
            "### Power of the heterogeneity tests at the demo's heterogeneity (rejection at 5%)",
            "",
            "| design | estimator | " + " | ".join(_power_items(power)) + " |",
            "|---|---|" + "---|" * len(_power_items(power)),
        ]
        for (design, estimator), part in power.groupby(["design", "estimator"], sort=False):
            values = part.set_index("item")["measured"]
            cells = " | ".join(_fmt(values.get(i, np.nan), 2) for i in _power_items(power))
            lines.append(f"| {design} | {estimator} | {cells} |")
    lines += size_table(summary)
    detail = summary[summary["claim"].isin(DETAIL_CLAIMS)]
    if len(detail):
        lines += [
            "",
            "### Every item of claims 3, 4 and 6, and per-firm linear-projection intervals",
            "",
            "Every other item (GATE coverage, CLAN, each pairwise test, power per test) is in "
            f"`benchmarks/validity_runs/{summary_name(seeds_name)}`.",
            "",
            "| design | claim | estimator | item | target | measured | MC SE | seeds | verdict |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in detail.itertuples(index=False):
            lines.append(
                f"| {r.design} | {r.claim} | {r.estimator} | {r.item} | {r.target} | "
                f"{_fmt(r.measured)} | {_fmt(r.mc_se)} | {r.seeds} | {r.verdict} |"
            )
    lines += ["", "Notes:", ""]
    schemas = sorted(set(data.loc[data["claim"] == "cate_coverage", "item"].astype(str)))
    lines += [
        f"- `cate.csv` schema read: {', '.join(schemas) or 'none'} (new: rows with "
        "`interval == firm` only; old: `tau_hat +- 1.96 se`, as the product wrote it). "
        "Every estimator whose rows are per-firm intervals is held to the target; "
        "`dr_learner`/`forest_dr_learner` rows are left out (their tau_hat is the effect "
        "of high vs low VA, not tau(x_i)).",
        "- Heterogeneity tests: GATE equality Wald per firm-type dimension and Holm over the "
        "dimensions; pairwise GATE differences (share of pairs with raw p < 5%, and any "
        "Holm-adjusted pair as printed); calibration's differential coefficient and the "
        "sorted-GATES top-bottom, AUTOC, Qini (one-sided where the product says so); BLP "
        "slopes and Holm over them. Left out: GATE levels' p-values (null: zero effect, "
        "not equal effects), the calibration mean coefficient (null: 0, not 1), CLAN "
        "contrasts (their null, equal mean characteristic in the top and bottom groups, "
        "is false whenever tau_hat varies with it, even under a constant effect; shown as "
        "`clan_reject`, info), and the policy tree (no p-value).",
        "- ATE truth: the mean of the true tau over the run's firms (the product's estimand "
        "for the continuous and IV estimators). `dr_learner`/`forest_dr_learner` are on the "
        "held-out table only, against `heldout_designs.binary_estimand` (exact: VA given "
        "X, W is a two-component normal mixture there); on the panel VA given X, W adds a "
        "log-normal city LQ of an unobserved endowment to the firm's platform use, so "
        "their estimand E[E[R|D=1,X,W] - E[R|D=0,X,W]] has no closed form and they are "
        "left out.",
        "- Channel shares: each printed interval against the share it names: for forests "
        "(intervals withheld by default, `attribution.smoothed_share_intervals`, printed here "
        "to be measured) `Truth.channel_shares()` over every firm of the run; for linear "
        "final stages (labelled intervals for the best linear projection) "
        "`Truth.linear_projection_shares()` on the run's encoded modifiers. A channel "
        "without effect has share 0 in both, so coverage means its interval reaches 0.",
        "- Refuters: on panel150_h1 and table150_h1, each check of the run's "
        "`tables/robustness.csv` is a false alarm when any of its rows has `passed` false "
        "(as the report flags it), with today's default checks (leave-one-group-out is off "
        "by default); "
        "on the `refuters_*` designs, `refuter_false_alarms.false_alarms(seed, design)` "
        "(every refuter the data allow, a check flagged when any of its rows is). "
        "`all checks together (Holm)`: the report's verdict, a check's Holm-adjusted p-value "
        "(`family_p`) at most its false-alarm rate; `some check at its own level` "
        "(information, no target) is what the verdict would be without the adjustment.",
    ]
    if len(errors):
        failed = errors.groupby(["design", "run"])["seed"].nunique()
        lines.append(
            "- Failed runs (left out of every rate): "
            + ", ".join(f"{d}/{r}: {n}" for (d, r), n in failed.items())
            + "."
        )
    cpu = frame[frame["claim"] == "cpu_seconds"]
    if len(timing):
        per_run = timing.groupby(["design", "run"])["value"].mean()
        per_cpu = cpu.groupby(["design", "run"])["value"].mean()
        lines.append(
            "- Mean seconds per run, wall (CPU of the run's process): "
            + ", ".join(
                f"{d}/{r} {v:.0f} ({per_cpu.get((d, r), np.nan):.0f})"
                for (d, r), v in per_run.items()
            )
            + f". CPU of all runs: {cpu['value'].sum() / 60:.0f} min (over 2 processes: "
            f"about {cpu['value'].sum() / 120:.0f} min wall on an otherwise idle machine)."
        )
    total = f"{seconds / 60:.0f} min wall" if seconds is not None else "rebuilt from CSV"
    if load is not None:
        total += f" (load average {load[0]:.1f} at the start, {load[1]:.1f} at the end)"
    lines.append(
        f"- Time: {total}; commits of the vaer source: {', '.join(commits)}"
        f"{' (dirty tree)' if dirty else ''}."
    )
    config = (
        f"designs {', '.join(designs)}; seeds from {FIRST_SEED}; default estimators and "
        "params; tracking off; CSV tables; panel missing_rate 0"
    )
    return "\n".join(lines), config


DETAIL_CLAIMS = (
    "channel_coverage",
    "mechanism_coverage",
    "mechanism_zero_reject",
    "refuter_false_alarm",
    "refuter_family",
    "refuter_any",
    "cate_blp_coverage",
)


def size_table(summary: pd.DataFrame) -> list[str]:
    """Markdown lines: size at 5% and mean t of every heterogeneity test under a constant
    effect, one table per constant-effect design with a column per estimator (mean t only
    where the test has a signed statistic); values outside the target in bold."""
    size = summary[summary["claim"].isin(["het_size", "het_withheld_mean_t"])]
    if size.empty:
        return []
    mean_t = summary[summary["claim"] == "het_mean_t"].set_index(["design", "estimator", "item"])
    lines = [
        "",
        "### Size (and mean t) of each heterogeneity test under a constant effect",
        "",
        "Rejection rate at 5% (target <= 0.07) / mean t (target |mean t| <= 0.15); values "
        "outside the target in bold. `withheld`: vaer does not print this test's p-value "
        "or interval by default (`heterogeneity.ranking_tests`), so it makes no size "
        "claim; its mean t is shown for information.",
    ]
    for design, part in size.groupby("design", sort=False):
        estimators = list(dict.fromkeys(part["estimator"]))
        lines += [
            "",
            f"{design} ({int(part['seeds'].max())} seeds):",
            "",
            "| test | " + " | ".join(estimators) + " |",
            "|---|" + "---|" * len(estimators),
        ]
        for item in dict.fromkeys(part["item"]):
            cells = []
            for estimator in estimators:
                row = part[(part["estimator"] == estimator) & (part["item"] == item)]
                if row.empty:
                    cells.append("")
                    continue
                key = (design, estimator, item)
                if row["claim"].iloc[0] == "het_withheld_mean_t":  # not printed by vaer
                    t = float(row["measured"].iloc[0])
                    cells.append(f"withheld / {t:+.2f}")
                    continue
                rate = float(row["measured"].iloc[0])
                text = _bold(_fmt(rate, 2), not _meets("het_size", rate))
                if key in mean_t.index:
                    t = float(mean_t.loc[key, "measured"])
                    text += " / " + _bold(f"{t:+.2f}", not _meets("het_mean_t", t))
                cells.append(text)
            lines.append(f"| {item} | " + " | ".join(cells) + " |")
    return lines


def _meets(claim: str, value: float) -> bool:
    target = TARGETS.get(claim)
    return target is None or target.met(value)


def _bold(text: str, flag: bool) -> str:
    return f"**{text}**" if flag else text


def _cost(design: Design) -> float:
    """Rough relative cost of one seed (to start the longest seeds first)."""
    stages = 3.0 * ("attribution" in design.stages) + 2.0 * ("robustness" in design.stages)
    return stages + design.main + 0.5 * len(design.extra) + 2.0 * (design.source == "external")


def _power_items(power: pd.DataFrame) -> list[str]:
    wanted = (
        "wald:any (Holm)",
        "calibration:differential",
        "sorted:top-bottom",
        "rate:AUTOC",
        "rate:QINI",
        "blp:any (Holm)",
    )
    return [item for item in wanted if item in set(power["item"])]


# ------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few seeds, under 15 minutes")
    parser.add_argument("--designs", nargs="+", choices=sorted(DESIGNS), default=None)
    parser.add_argument("--seeds", type=int, default=None, help="seeds per design (override)")
    parser.add_argument("--first-seed", type=int, default=FIRST_SEED)
    parser.add_argument(
        "--stages",
        nargs="*",
        choices=STAGES,
        default=None,
        help="restrict the main run's stages (e.g. for 'before' numbers)",
    )
    parser.add_argument("--no-extra", action="store_true", help="skip the ATE-only runs")
    parser.add_argument("--jobs", type=int, default=2, help="local processes (at most 2)")
    parser.add_argument("--csv", type=Path, default=None, help="per-seed CSV to write")
    parser.add_argument("--resume", action="store_true", help="skip seeds already in --csv")
    parser.add_argument("--from-csv", type=Path, default=None, help="rebuild the section only")
    parser.add_argument("--no-results", action="store_true", help="do not touch RESULTS.md")
    parser.add_argument(
        "--section", default=None, help="write a partial rerun to this RESULTS.md section"
    )
    parser.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    args = parser.parse_args()
    if args.first_seed < FIRST_SEED:
        parser.error(f"--first-seed must be >= {FIRST_SEED} (seeds below are tuning seeds)")
    if not 1 <= args.jobs <= 2:
        parser.error("--jobs must be 1 or 2 (the machine is shared)")
    hooked = refuter_hook() is not None
    designs = args.designs or [
        name for name, d in DESIGNS.items() if d.source != "external" or hooked
    ]
    mode = "quick" if args.quick else "full"
    path = args.csv or RUNS / f"seeds_{mode}.csv.gz"
    seconds: float | None = None
    load: tuple[float, float] | None = None
    if args.from_csv is None:
        if path.is_file() and not args.resume:
            path.rename(path.with_name(f"previous_{path.name}"))
        done: set[tuple[str, int]] = set()
        if args.resume and path.is_file():
            old = read_rows(path)
            done = set(zip(old["design"], old["seed"].astype(int), strict=True))
        tasks = []
        for name in designs:
            d = DESIGNS[name]
            count = args.seeds or (d.seeds_quick if args.quick else d.seeds_full)
            for k, seed in enumerate(range(args.first_seed, args.first_seed + count)):
                if (name, seed) not in done:
                    tasks.append((k / count, name, seed))
        # every design advances at the same pace (a stopped run has each at the same share
        # of its seeds, and --resume completes it); the longest seeds first within a step
        tasks.sort(key=lambda task: (task[0], -_cost(DESIGNS[task[1]])))
        tasks = [(name, seed, args.stages, not args.no_extra) for _, name, seed in tasks]
        load_start = os.getloadavg()[0]
        started = time.perf_counter()
        print(f"{len(tasks)} runs of {len(designs)} designs -> {path}", flush=True)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
            futures = {pool.submit(_seed_task, task): task for task in tasks}
            for k, future in enumerate(as_completed(futures), start=1):
                rows = future.result()
                append_rows(path, rows)
                name, seed = futures[future][:2]
                failed = sum(r["claim"] == "error" for r in rows)
                print(
                    f"[{k}/{len(tasks)}] {name} seed {seed} "
                    f"({time.perf_counter() - started:.0f}s){' FAILED' if failed else ''}",
                    flush=True,
                )
        seconds = time.perf_counter() - started
        load = (load_start, os.getloadavg()[0])
        append_rows(path, [wall_row(seconds, load, len(tasks))])
    frame = read_rows(args.from_csv or path)
    if seconds is None:  # rebuilt: the wall time of the run that wrote the CSV, if recorded
        walls = frame[frame["claim"] == "wall_seconds"]
        if len(walls):
            last = walls.iloc[-1]
            seconds, load = float(last["value"]), (float(last["estimate"]), float(last["se"]))
    frame = frame[frame["design"].isin([*designs, "_all"])]
    text, config = markdown(
        frame, quick=args.quick, seconds=seconds, designs=designs, load=load,
        section=args.section, csv_name=(args.from_csv or path).name,
    )  # fmt: skip
    section = args.section or ("validity_quick" if args.quick else "validity")
    print(text)
    summary = summarise(claim_rows(frame))
    seeds_file = args.from_csv or path
    summary.to_csv(seeds_file.with_name(summary_name(seeds_file.name)), index=False)
    if not args.no_results:
        update_results_section(
            section,
            text,
            config=config,
            code=measured_code(frame),
        )
    if not args.no_mlflow:
        metrics = {
            f"{r.design}.{r.claim}.{r.estimator}.{r.item}": float(r.measured)
            for r in summary.itertuples(index=False)
            if np.isfinite(r.measured)
        }
        safe = {
            "".join(c if c.isalnum() or c in "_-./ " else "_" for c in k): v
            for k, v in metrics.items()
        }
        if seconds is not None:
            safe["seconds"] = seconds
        log_benchmark(
            section,
            safe,
            {"designs": ",".join(designs), "mode": mode},
        )


if __name__ == "__main__":
    main()
