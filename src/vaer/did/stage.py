"""The staggered difference-in-differences stage (``did:``, :mod:`vaer.context`).

On the firm-year panel of a panel-mode run: the yearly outcome (log exports by default),
each firm's cohort (its city's adoption year, ``roles.policy``), Callaway–Sant'Anna
ATT(g, t) clustered by ``roles.cluster`` (:func:`vaer.did.att_gt`), the four
aggregations with uniform bands, and the joint pre-trend test. Firm-years left out are
counted by reason, never dropped silently.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vaer.compute import Backend
from vaer.config.did import LOG_EXPORTS, DidConfig, HonestConfig
from vaer.config.models import Roles
from vaer.context import RunContext
from vaer.did.aggregate import AGGREGATIONS, AggregateResult, aggregate
from vaer.did.att_gt import ATTGTResult, att_gt
from vaer.did.bacon import BaconResult, bacon_decomposition
from vaer.did.catt_stage import DidCattResult, did_catt
from vaer.did.dml_did import dml_att_gt
from vaer.did.honest import EventStudyInputs, HonestResult, event_study_inputs, honest_did
from vaer.did.pretrend import PretrendTest, pretrend_test
from vaer.did.run_spec import SAMPLE_COLUMNS, cell_options, crossfitting, event_window
from vaer.did.sunab import sun_abraham
from vaer.did.twfe import EventStudyResult, TWFEResult, twfe, twfe_event_study
from vaer.did.type_stage import DidTypesResult, did_types, did_types_truth_metrics

ESTIMATOR = "cs_did"
"""The estimator column of the DiD tables (Callaway–Sant'Anna)."""
DML_ESTIMATOR = "dml_did"
"""The estimator column of the cross-fitted ML cells (:mod:`vaer.did.dml_did`)."""

INTERVAL_COLUMNS = ("se", "ci_low", "ci_high", "band_low", "band_high")

WITHHELD = (
    "withheld: asymptotic intervals under-cover with few adopting cities (did_validity: "
    "cells 90%, bands 65-82%, pre-trend size 15%); did.inference: small_cluster"
)
CELL_BAND_WITHHELD = "band withheld: 83% coverage with 40 cities (did_validity)"
BAND_COLUMNS = ("band_low", "band_high")
DML_WITHHELD = (
    "withheld: dml_did's intervals were validated with did.inference: small_cluster only "
    "(dml_did_validity)"
)
REGRESSIONS_WITHHELD = (
    "withheld: TWFE/Sun-Abraham intervals not checked on the synthetic panel "
    "(did.unvalidated_inference prints them)"
)


HONEST_WITHHELD = {
    "smoothness": (
        "withheld: folded-normal smoothness FLCIs covered 0.916-0.936 at the true M with "
        "clustered covariances (honest_did_coverage); did.honest.smoothness_critical: "
        "folded_t (0.941-0.949) prints them"
    ),
    "original": "withheld: normal intervals; did_aggregates.csv has the small-cluster t ones",
}
"""Honest-DiD rows whose intervals are not printed by default, and why (the smoothness
rows only with ``did.honest.smoothness_critical: folded_normal``)."""
HONEST_ASYMPTOTIC = "withheld: honest DiD was checked with did.inference: small_cluster only"


def _rows(frame: pd.DataFrame, method: str) -> np.ndarray:
    """Rows of ``frame`` whose ``method`` is ``method``."""
    return (frame["method"] == method).to_numpy()


def _withhold(
    frame: pd.DataFrame, columns: tuple[str, ...], reason: str, rows: np.ndarray | None = None
) -> pd.DataFrame:
    """``frame`` with ``columns`` blanked on ``rows`` (all by default) and an ``inference``
    column saying why."""
    out = frame.copy()
    mask = np.ones(len(out), dtype=bool) if rows is None else rows
    out.loc[mask, [c for c in columns if c in out]] = np.nan
    if "inference" not in out:
        out["inference"] = "clustered by the cluster role"
    out.loc[mask, "inference"] = reason
    return out


def _labelled(frame: pd.DataFrame, outcome: str) -> pd.DataFrame:
    """``frame`` with the ``estimator`` column first (``cs_did`` unless it has one) and the
    ``outcome`` column last."""
    labelled = frame.assign(outcome=outcome)
    if "estimator" not in labelled:
        labelled.insert(0, "estimator", ESTIMATOR)
    return labelled


def _estimator(frame: pd.DataFrame, name: str, n_obs: int, n_clusters: int) -> pd.DataFrame:
    """``frame`` with an ``estimator`` column ``name`` first and the sample's size last."""
    out = frame.assign(n_obs=n_obs, n_clusters=n_clusters)
    out.insert(0, "estimator", name)
    return out


@dataclass(frozen=True)
class DidResult:
    """ATT(g, t), its aggregations and the pre-trend test of one run.

    Attributes
    ----------
    att_gt : ATTGTResult
    aggregates : dict
        ``simple``, ``dynamic``, ``group``, ``calendar`` -> AggregateResult.
    pretrend : PretrendTest or None
        None when there is no pre-period event time to test (the reason in ``notes``).
    outcome : str
        What the ATT is an effect on.
    dropped : dict
        Panel rows left out before estimation, by reason.
    notes : tuple of str
    withheld : str or None
        Why the intervals of single cells and event times, the bands and the pre-trend
        test are not printed (asymptotic mode, ``did.unvalidated_inference`` off), else
        None.
    band_withheld : str or None
        Why the band over all cells is not printed (small-cluster mode,
        ``did.unvalidated_inference`` off), else None.
    regressions_withheld : str or None
        Why TWFE's and Sun-Abraham's intervals are not printed
        (``did.unvalidated_inference`` off), else None.
    sample : DataFrame
        The firm-years estimated on (unit, year, cohort), for truth checks.
    twfe : TWFEResult or None
        The two-way fixed effects coefficient (``did.estimators`` has ``twfe``).
    twfe_dynamic : EventStudyResult or None
        The plain TWFE event study (pooled leads and lags) beside it.
    bacon : BaconResult or None
        The Goodman-Bacon decomposition of the TWFE coefficient (balanced subpanel).
    event_study : EventStudyResult or None
        Sun-Abraham event-time effects (``did.estimators`` has ``event_study``).
    dml : ATTGTResult or None
        The same cells with cross-fitted ML nuisances (``did.estimators`` has ``dml_did``).
    dml_aggregates : dict
        Its aggregations (empty without ``dml_did``).
    dml_withheld : str or None
        Why ``dml_did``'s intervals are not printed (asymptotic mode without
        ``did.unvalidated_inference``: :func:`dml_withheld`), else None.
    honest : HonestResult or None
        Rambachan-Roth robust intervals of the event study (``did.honest.enabled``).
    honest_printed : bool
        Print the honest-DiD intervals of ``HONEST_WITHHELD``'s methods
        (``did.unvalidated_inference``).
    types : DidTypesResult or None
        ATT by firm type (:mod:`vaer.did.type_stage`); None without firm types.
    catt : DidCattResult or None
        The CATT model (:mod:`vaer.did.catt_stage`); None unless ``did.catt``.
    """

    att_gt: ATTGTResult
    aggregates: dict[str, AggregateResult]
    pretrend: PretrendTest | None
    outcome: str
    dropped: dict[str, int]
    notes: tuple[str, ...] = ()
    withheld: str | None = None
    band_withheld: str | None = None
    regressions_withheld: str | None = None
    sample: pd.DataFrame = field(default_factory=pd.DataFrame, compare=False, repr=False)
    twfe: TWFEResult | None = None
    twfe_dynamic: EventStudyResult | None = None
    bacon: BaconResult | None = None
    event_study: EventStudyResult | None = None
    dml: ATTGTResult | None = None
    dml_aggregates: dict[str, AggregateResult] = field(default_factory=dict)
    dml_withheld: str | None = None
    honest: HonestResult | None = None
    honest_printed: bool = False
    types: DidTypesResult | None = None
    catt: DidCattResult | None = None

    def _aggregate_frames(self) -> pd.DataFrame:
        """``did_aggregates`` before withholding: CS's rows, then TWFE's and Sun-Abraham's,
        each with the firm-years (``n_obs``) and clusters (``n_clusters``) behind it."""
        sample = (len(self.sample), self.att_gt.n_clusters)
        frames = [_estimator(a.to_frame(), ESTIMATOR, *sample) for a in self.aggregates.values()]
        frames += [
            _estimator(a.to_frame(), DML_ESTIMATOR, *sample) for a in self.dml_aggregates.values()
        ]
        for name, result in (
            ("twfe", self.twfe), ("twfe", self.twfe_dynamic), ("event_study", self.event_study)
        ):  # fmt: skip
            if result is not None:
                counts = (result.n_obs, result.n_clusters)
                frames.append(_estimator(result.to_frame(), name, *counts))
        return pd.concat(frames, ignore_index=True)

    def tables(self) -> dict[str, pd.DataFrame]:
        """``att_gt``, ``did_aggregates``, ``pretrend`` (when tested) and
        ``did_dropped`` (panel rows left out by reason; per cell, the cohorts' firms not
        observed in both of its years, and comparison firms trimmed; the firms the Bacon
        decomposition leaves out) and ``bacon`` (with ``twfe``)."""
        aggregates = self._aggregate_frames()
        left_out = pd.DataFrame(
            {
                "step": "panel rows",
                "reason": list(self.dropped),
                "count": list(self.dropped.values()),
            }
        )
        drops = self.att_gt.drops
        reasons = [c for c in map(str, drops.columns) if c.startswith("missing_") or c == "trimmed"]
        cells = drops.melt(
            id_vars=["group", "time", "base_period"], value_vars=reasons,
            var_name="reason", value_name="count",
        )  # fmt: skip
        cells = cells[cells["count"] > 0].assign(step="cell: firms of the cell's cohorts")
        cells_frame = self.att_gt.to_frame().rename(columns={"att": "estimate"})
        cells_frame.insert(0, "estimator", ESTIMATOR)
        pretrend = None if self.pretrend is None else self.pretrend.to_frame()
        regression = ~aggregates["estimator"].isin([ESTIMATOR, DML_ESTIMATOR]).to_numpy()
        if self.withheld:
            cells_frame = _withhold(cells_frame, INTERVAL_COLUMNS, self.withheld)
            single = ~aggregates["overall"].to_numpy(bool) & ~regression
            aggregates = _withhold(aggregates, INTERVAL_COLUMNS, self.withheld, single)
            if pretrend is not None:
                pretrend = _withhold(pretrend, ("p_chi2", "p_value"), self.withheld)
        elif self.band_withheld:
            cells_frame = _withhold(cells_frame, BAND_COLUMNS, self.band_withheld)
        if self.regressions_withheld and regression.any():
            aggregates = _withhold(
                aggregates, INTERVAL_COLUMNS, self.regressions_withheld, regression
            )
        if self.dml is not None:
            dml_cells = self.dml.to_frame().rename(columns={"att": "estimate"})
            dml_cells.insert(0, "estimator", DML_ESTIMATOR)
            if self.dml_withheld:
                dml_cells = _withhold(dml_cells, INTERVAL_COLUMNS, self.dml_withheld)
                dml_rows = (aggregates["estimator"] == DML_ESTIMATOR).to_numpy()
                aggregates = _withhold(aggregates, INTERVAL_COLUMNS, self.dml_withheld, dml_rows)
            cells_frame = pd.concat([cells_frame, dml_cells], ignore_index=True)
        tables = {
            "att_gt": _labelled(cells_frame, self.outcome),
            "did_aggregates": _labelled(aggregates, self.outcome),
            "did_dropped": pd.concat([left_out, cells, *self._bacon_left_out()], ignore_index=True),
        }
        if self.bacon is not None:
            tables["bacon"] = self.bacon.table
        if pretrend is not None:
            tables["pretrend"] = _labelled(pretrend, self.outcome)
        tables.update(self._honest_tables())
        if self.types is not None:
            tables.update(self.types.tables(self.outcome))
        if self.catt is not None:
            tables.update(self.catt.tables(self.outcome))
        return tables

    def _honest_withheld(self) -> dict[str, str]:
        """Honest-DiD methods whose intervals are not printed, and why."""
        if self.honest_printed:
            return {}
        if self.att_gt.inference != "small_cluster":
            return dict.fromkeys(
                ("relative_magnitude", "smoothness", "original"), HONEST_ASYMPTOTIC
            )
        if self.honest is not None and self.honest.smoothness_critical == "folded_t":
            return {k: v for k, v in HONEST_WITHHELD.items() if k != "smoothness"}
        return HONEST_WITHHELD

    def _honest_tables(self) -> dict[str, pd.DataFrame]:
        """``honest_did`` (robust intervals by method, bound and target, the ``original``
        rows the usual ones) and ``honest_did_breakdown``, when run; the intervals of
        :meth:`_honest_withheld`'s methods are blanked, with the reason."""
        if self.honest is None:
            return {}
        table = self.honest.table.assign(outcome=self.outcome)
        breakdown = self.honest.breakdown.assign(outcome=self.outcome)
        for method, reason in self._honest_withheld().items():
            table = _withhold(table, ("ci_low", "ci_high"), reason, _rows(table, method))
            breakdown = _withhold(breakdown, ("breakdown",), reason, _rows(breakdown, method))
        out = {"honest_did": table}
        if not breakdown.empty:
            out["honest_did_breakdown"] = breakdown
        return out

    def metrics(self) -> dict[str, float]:
        """Overall aggregates with SEs, the pre-trend p-value and the sample counts."""
        out: dict[str, float] = {}
        for name, result in self.aggregates.items():
            out[f"did.{name}.estimate"] = result.overall_estimate
            out[f"did.{name}.se"] = result.overall_se
        for name, result in self.dml_aggregates.items():
            out[f"did.dml_did.{name}.estimate"] = result.overall_estimate
            if not self.dml_withheld:
                out[f"did.dml_did.{name}.se"] = result.overall_se
        if self.pretrend is not None and not self.withheld:
            out["did.pretrend.p_value"] = self.pretrend.p_value
        out["did.cells"] = float(len(self.att_gt.att))
        out["did.clusters"] = float(self.att_gt.n_clusters)
        out.update({f"did.dropped.{k}": float(v) for k, v in self.dropped.items()})
        if self.twfe is not None:
            out["did.twfe.estimate"] = self.twfe.estimate
            if not self.regressions_withheld:
                low, high = self.twfe.ci
                out.update({"did.twfe.se": self.twfe.se, "did.twfe.ci_low": low,
                            "did.twfe.ci_high": high})  # fmt: skip
        if self.bacon is not None:
            out["did.bacon.forbidden_weight"] = self.bacon.forbidden_weight
            out["did.bacon.twfe_balanced"] = self.bacon.twfe
            out["did.bacon.firms_left_out"] = float(self.bacon.n_units_left_out)
        if self.honest is not None:
            frame, withheld = self.honest.breakdown, self._honest_withheld()
            for method, target, event, value in zip(
                frame["method"], frame["target"], frame["event_time"], frame["breakdown"],
                strict=True,
            ):  # fmt: skip
                if method not in withheld:
                    label = "average" if target == "average" else f"e{int(event)}"
                    out[f"did.honest.breakdown.{method}.{label}"] = float(value)
        if self.types is not None:
            out.update(self.types.metrics())
        if self.catt is not None:
            out.update(self.catt.metrics())
        return out

    def _bacon_left_out(self) -> list[pd.DataFrame]:
        """The ``did_dropped`` rows of the Bacon decomposition's balanced subpanel."""
        if self.bacon is None:
            return []
        step = "bacon: balanced subpanel (firms observed in every year)"
        return [
            pd.DataFrame(
                {
                    "step": step,
                    "reason": ["firms not observed in every year", "their firm-years"],
                    "count": [self.bacon.n_units_left_out, self.bacon.n_rows_left_out],
                }
            )
        ]


def did_sample(
    frame: pd.DataFrame, roles: Roles, config: DidConfig
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The firm-years to estimate on: unit, year, cohort, cluster, outcome and covariates,
    and the rows left out by reason.

    Raises
    ------
    ValueError
        If ``roles.time`` or ``roles.policy`` is unset, or the outcome or a covariate is
        not a numeric column of the panel.
    """
    if roles.time is None or roles.policy is None:
        raise ValueError(
            "the did stage needs `roles.time` (the year column) and `roles.policy` (the "
            "adoption year of each firm's city)"
        )
    cluster = roles.cluster or roles.unit
    missing = [
        c for c in (config.outcome, *config.covariates) if c != LOG_EXPORTS and c not in frame
    ]
    if missing:
        raise ValueError(f"did: {missing} are not columns of the panel")
    if config.outcome == LOG_EXPORTS:
        if roles.exports is None:
            raise ValueError("`did.outcome: log_exports` needs `roles.exports`")
        exports = pd.to_numeric(frame[roles.exports], errors="coerce")
        y = np.log(exports.where(exports > 0))
        reasons = {
            "missing_exports": exports.isna().to_numpy(),
            "zero_exports": (exports.fillna(1.0) <= 0).to_numpy(),
        }
    else:
        values = frame[config.outcome]
        if not pd.api.types.is_numeric_dtype(values):
            raise ValueError(f"`did.outcome` column '{config.outcome}' must be numeric")
        y = values.astype(np.float64)
        reasons = {
            f"missing_{config.outcome}": y.isna().to_numpy(),
            f"infinite_{config.outcome}": np.isinf(y.to_numpy()),
        }
    sample = pd.DataFrame(
        {
            "unit": frame[roles.unit].to_numpy(),
            "year": frame[roles.time].to_numpy(),
            "cohort": pd.to_numeric(frame[roles.policy], errors="coerce").fillna(0).to_numpy(),
            "cluster": frame[cluster].to_numpy(),
            "y": y.to_numpy(dtype=np.float64),
        }
    )
    for column in config.covariates:
        sample[column] = frame[column].to_numpy()
    years = sample["year"].to_numpy()
    low = -np.inf if config.first_year is None else config.first_year
    high = np.inf if config.last_year is None else config.last_year
    outside = (years < low) | (years > high)
    reasons = {"outside_years": outside, **{k: v & ~outside for k, v in reasons.items()}}
    keep = np.isfinite(sample["y"].to_numpy()) & ~outside
    dropped = {name: int(mask.sum()) for name, mask in reasons.items() if mask.sum()}
    kept = sample.loc[keep].reset_index(drop=True)
    _check_adoption(kept, roles.policy)
    return kept, dropped


def _check_adoption(sample: pd.DataFrame, policy: str) -> None:
    """Refuse adoption years a staggered DiD cannot use, naming the fix.

    Raises
    ------
    ValueError
        If a city's adoption year varies, a cohort adopts before the second or after the
        last panel year, or a cohort has a single city.
    """
    per_city = sample.groupby("cluster")["cohort"].nunique()
    varying = per_city.index[per_city > 1]
    if len(varying):
        raise ValueError(
            f"roles.policy: column '{policy}' gives {len(varying)} cities more than one "
            f"adoption year (e.g. {varying[0]}); a city adopts once: fix the column"
        )
    first, last = int(sample["year"].min()), int(sample["year"].max())
    cohorts = sample.loc[sample["cohort"] > 0].groupby("cohort")["cluster"].nunique()
    early = [int(g) for g in cohorts.index if g <= first]
    late = [int(g) for g in cohorts.index if g > last]
    if early or late:
        raise ValueError(
            f"roles.policy: adoption years {early + late} fall outside the estimation years "
            f"{first + 1}-{last} (a cohort needs a year before adoption and one from it on): "
            "code cohorts adopting after the panel as 0 (never), or move `did.first_year` / "
            "`did.last_year`"
        )
    single = [int(g) for g in cohorts.index[cohorts.to_numpy() < 2]]
    if single:
        raise ValueError(
            f"roles.policy: cohorts {single} have one city each; with errors clustered by "
            "city a one-city cohort's effect has no standard error: merge it with the "
            "adjacent cohort or leave that city out"
        )


def did_stage(ctx: RunContext) -> DidResult:
    """Estimate ATT(g, t) of the staggered policy on the run's firm-year panel."""
    config, roles = ctx.config.did, ctx.config.roles
    panel = ctx.study.source_panel
    if panel is None:
        raise ValueError("the did stage needs the firm-year panel (`data.mode: panel`)")
    sample, dropped = did_sample(panel.frame, roles, config)
    asymptotic = config.inference == "asymptotic"
    n_boot = config.n_boot if asymptotic else 0
    ctx.progress(
        f"DiD: ATT(g,t) on {len(sample):,} firm-years of {sample['unit'].nunique():,} firms"
    )
    cells = att_gt(
        sample, SAMPLE_COLUMNS, covariates=list(config.covariates) or None,
        method=config.method, options=cell_options(config), n_boot=n_boot,
        random_state=ctx.seed, backend=_cell_backend(ctx),
    )  # fmt: skip
    min_e, max_e = event_window(config)
    aggregates = {
        name: aggregate(
            cells, name, min_e=min_e, max_e=max_e,
            n_boot=n_boot, random_state=ctx.seed + 1 + k,
        )
        for k, name in enumerate(AGGREGATIONS)
    }  # fmt: skip
    notes: tuple[str, ...] = ()
    try:
        pretrend = pretrend_test(aggregates["dynamic"])
    except ValueError as exc:
        pretrend, notes = None, (f"no pre-trend test: {exc}",)
    regressions = _regressions(ctx, sample, config)
    if DML_ESTIMATOR in config.estimators:
        regressions.update(_dml(ctx, sample, config, n_boot))
    honest, honest_notes = honest_stage(ctx, sample, cells, config)
    regressions["notes"] += honest_notes
    types = did_types(ctx, sample, panel.frame, config, regressions.get("dml_withheld"))
    catt = did_catt(ctx, sample, panel.frame, config)
    return DidResult(
        att_gt=cells, aggregates=aggregates, pretrend=pretrend, outcome=_outcome_name(config),
        dropped=dropped,
        notes=notes + regressions.pop("notes") + (types.notes if types else ())
        + (catt.notes if catt else ()),
        types=types, catt=catt,
        sample=sample[["unit", "year", "cohort"]],
        withheld=WITHHELD if asymptotic and not config.unvalidated_inference else None,
        band_withheld=None if asymptotic or config.unvalidated_inference else CELL_BAND_WITHHELD,
        regressions_withheld=None if config.unvalidated_inference else REGRESSIONS_WITHHELD,
        honest=honest, honest_printed=config.unvalidated_inference, **regressions,
    )  # fmt: skip


def _cell_backend(ctx: RunContext) -> Backend:
    """Where ``cs_did``'s cells are fitted: the run's cluster, or this process on the local
    backend (a cell sample takes milliseconds: all 27 cells of 1,000,000 firm-years took
    0.4-0.7 s here and 0.6-1.2 s in two warm local processes, 5 s with their start)."""
    return ctx.backend.with_local_jobs(1)


def _dml(ctx: RunContext, sample: pd.DataFrame, config: DidConfig, n_boot: int) -> dict[str, Any]:
    """``dml_did``'s cells and aggregations: the run's nuisance learners, cross-fitted over
    folds of cities (:func:`vaer.did.dml_did.dml_att_gt`); one task of the run's backend
    per cell sample."""
    nuisance = ctx.config.nuisance

    def progress(done: int, samples: int) -> None:
        ctx.progress(f"DiD: dml_did cell samples {done}/{samples}")

    ctx.progress(f"DiD: dml_did, {config.dml_folds} folds of cities, {nuisance.model} nuisances")
    cells = dml_att_gt(
        sample, SAMPLE_COLUMNS, crossfit=crossfitting(ctx, config),
        covariates=list(config.covariates), options=cell_options(config), backend=ctx.backend,
        progress=progress,
    )  # fmt: skip
    min_e, max_e = event_window(config)
    aggregates = {
        name: aggregate(cells, name, min_e=min_e, max_e=max_e, n_boot=n_boot,
                        random_state=ctx.seed + 11 + k)
        for k, name in enumerate(AGGREGATIONS)
    }  # fmt: skip
    return {"dml": cells, "dml_aggregates": aggregates, "dml_withheld": dml_withheld(config)}


def dml_withheld(config: DidConfig) -> str | None:
    """Why ``dml_did``'s intervals (overall and by firm type) are not printed, else None.

    They held their level in the small-cluster mode (``benchmarks/RESULTS.md``,
    ``dml_did_validity``) and were not checked in the asymptotic one, where they are
    withheld unless ``did.unvalidated_inference``.
    """
    if config.inference == "asymptotic" and not config.unvalidated_inference:
        return DML_WITHHELD
    return None


def honest_stage(
    ctx: RunContext, sample: pd.DataFrame, cells: ATTGTResult, config: DidConfig
) -> tuple[HonestResult | None, tuple[str, ...]]:
    """Rambachan-Roth intervals of the event study (``did.honest``) and notes.

    A varying base period's pre-period estimates are one-year changes, so the event study
    is re-estimated with a universal base (the post-period cells are the same); skipped,
    with a note, when it has fewer than two pre-period event times.
    """
    honest = config.honest
    if not honest.enabled:
        return None, ()
    if cells.base_period_rule != "universal":
        ctx.progress("DiD: ATT(g,t) with a universal base period for honest DiD")
        cells = att_gt(
            sample, SAMPLE_COLUMNS, covariates=list(config.covariates) or None,
            method=config.method,
            options=dataclasses.replace(cell_options(config), base_period="universal"),
            backend=_cell_backend(ctx),
        )  # fmt: skip
    min_e, max_e = event_window(config)
    study = event_study_inputs(cells, min_e=min_e, max_e=max_e)
    n_pre = int(np.sum(study.event_times < study.reference))
    if n_pre < 2:
        return None, (
            f"honest DiD skipped: the event study has {n_pre} pre-period event time(s) "
            f"before the reference year {study.reference}; relative magnitudes and "
            "smoothness bounds need >= 2 (lower did.min_e or did.first_year)",
        )
    ctx.progress(f"DiD: honest DiD ({', '.join(honest.methods)})")
    try:
        result = honest_did(
            study.beta, study.sigma, study.event_times, reference=study.reference,
            methods=honest.methods, mbar=honest.mbar, m=honest.m, average=honest.average,
            alpha=config.alpha, breakdown=honest.breakdown, random_state=ctx.seed,
            cluster_sums=_flci_sums(study, honest),
        )  # fmt: skip
    except ValueError as exc:
        return None, (f"no honest DiD: {exc}",)
    return result, ()


def _flci_sums(study: EventStudyInputs, honest: HonestConfig) -> np.ndarray | None:
    """The cluster sums that give the smoothness FLCIs their small-cluster folded-t
    critical value (``did.honest.smoothness_critical: folded_t`` with small-cluster
    inference), else None (folded normal)."""
    small = study.inference == "small_cluster" and honest.smoothness_critical == "folded_t"
    return study.cluster_sums if small else None


def _regressions(ctx: RunContext, sample: pd.DataFrame, config: DidConfig) -> dict[str, Any]:
    """TWFE (with its Bacon decomposition and plain event study) and Sun-Abraham, as
    ``did.estimators`` asks; event times outside ``did.min_e``/``max_e`` are left out."""
    options: dict[str, Any] = {"anticipation": config.anticipation}
    out: dict[str, Any] = {"notes": ()}
    min_e, max_e = event_window(config)

    def window(study: EventStudyResult) -> EventStudyResult:
        keep = (study.keys >= min_e) & (study.keys <= max_e)
        return dataclasses.replace(
            study, keys=study.keys[keep], estimate=study.estimate[keep], se=study.se[keep]
        )

    if "twfe" in config.estimators:
        ctx.progress("DiD: two-way fixed effects (pyfixest) and its Goodman-Bacon decomposition")
        out["twfe"] = twfe(sample, SAMPLE_COLUMNS, alpha=config.alpha, **options)
        try:
            out["twfe_dynamic"] = window(
                twfe_event_study(sample, SAMPLE_COLUMNS, alpha=config.alpha, **options)
            )
        except ValueError as exc:
            out["notes"] += (f"no TWFE event study: {exc}",)
        try:
            bacon = bacon_decomposition(sample, SAMPLE_COLUMNS, **options)
        except ValueError as exc:
            out["notes"] += (f"no Bacon decomposition: {exc}",)
        else:
            out["bacon"] = bacon
            if not bacon.balanced:
                out["notes"] += (
                    f"Bacon decomposition on the balanced subpanel: {bacon.n_units:,} firms "
                    f"observed in every year; {bacon.n_units_left_out:,} firms "
                    f"({bacon.n_rows_left_out:,} firm-years) left out; the TWFE coefficient "
                    f"it decomposes is that subpanel's ({bacon.twfe:.4f}), not the full "
                    f"panel's ({out['twfe'].estimate:.4f})",
                )
    if "event_study" in config.estimators:
        ctx.progress("DiD: Sun-Abraham interaction-weighted event study (pyfixest)")
        study = sun_abraham(sample, SAMPLE_COLUMNS, alpha=config.alpha, **options)
        out["event_study"] = window(study)
        if study.control == "last":
            out["notes"] += (
                "Sun-Abraham: no never-treated firms; the last-treated cohort is the "
                "comparison, in the years before it adopts",
            )
    return out


def _outcome_name(config: DidConfig) -> str:
    return "log exports" if config.outcome == LOG_EXPORTS else config.outcome


def did_truth_metrics(result: DidResult, ctx: RunContext) -> dict[str, float]:
    """Coverage and bias against the synthetic pilots' true effect on log exports
    (:class:`vaer.data.synthetic.PilotTruth`); empty for other data or outcomes. Only
    cells whose two years are outside the shock windows are checked (where the truth is
    exact), and the aggregations only when every cell is.

    The truth of a cell is the mean true effect, at ``t`` minus at the base period, over
    the cohort's firms the cell used (observed in both years); the truth of an
    aggregation is the same aggregation of the cells' truths.
    """
    panel = ctx.study.source_panel
    pilot = panel.synthetic.pilot if panel is not None and panel.synthetic is not None else None
    if pilot is None or ctx.config.did.outcome != LOG_EXPORTS:
        return {}
    cells = result.att_gt
    # the reference cells of a universal base period (t = base) are fixed at 0, not estimated
    exact = np.array(
        [
            pilot.exact_in(t) and pilot.exact_in(b) and t != b
            for t, b in zip(cells.time, cells.base_period, strict=True)
        ]
    )
    out = {"did.att_gt.cells_checked": float(exact.sum())}
    if not exact.any():
        return out
    truth = true_att_gt(result, pilot.effect)
    frame = cells.to_frame()
    covered = ((frame["ci_low"] <= truth) & (truth <= frame["ci_high"])).to_numpy()[exact]
    post = cells.post[exact]
    out["did.att_gt.coverage"] = float(covered.mean())
    out["did.att_gt.mean_bias"] = float(np.mean((cells.att - truth)[exact]))
    if post.any():
        out["did.att_gt.post_coverage"] = float(covered[post].mean())
    reference = cells.time == cells.base_period
    if not (exact | reference).all():  # an aggregation over a shock year has no exact truth
        return out
    true_cells = dataclasses.replace(cells, att=np.where(exact, truth, 0.0))
    min_e, max_e = event_window(ctx.config.did)
    for name in result.aggregates:
        true_value = aggregate(true_cells, name, min_e=min_e, max_e=max_e).overall_estimate
        out[f"did.{name}.true"] = true_value
        for prefix, aggregates, printed in (
            ("did", result.aggregates, True),
            ("did.dml_did", result.dml_aggregates, not result.dml_withheld),
        ):
            if name in aggregates:
                overall = aggregates[name].to_frame().iloc[-1]
                out[f"{prefix}.{name}.bias"] = overall["estimate"] - true_value
                if printed:  # no coverage claim for an interval that is not printed
                    covered = overall["ci_low"] <= true_value <= overall["ci_high"]
                    out[f"{prefix}.{name}.covered"] = float(covered)
    if result.types is not None:
        out.update(did_types_truth_metrics(result.types, result.sample, pilot.effect, min_e, max_e))
    if result.twfe is not None:  # TWFE's estimand is not the simple ATT: its gap to it
        out["did.twfe.bias"] = result.twfe.estimate - out["did.simple.true"]
    true_dynamic = aggregate(true_cells, "dynamic", min_e=min_e, max_e=max_e)
    truth_by_e = dict(zip(true_dynamic.keys.tolist(), true_dynamic.estimate, strict=True))
    for name, study in (("event_study", result.event_study), ("twfe_dynamic", result.twfe_dynamic)):
        if study is None:
            continue
        errors = [
            est - truth_by_e[int(e)]
            for e, est in zip(study.keys, study.estimate, strict=True)
            if e >= 0 and int(e) in truth_by_e
        ]
        if errors:  # against CS's event-time truth (cohort shares of firms)
            out[f"did.{name}.max_abs_bias"] = float(np.max(np.abs(errors)))
    return out


def true_att_gt(
    result: DidResult, effect: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """The true ATT(g, t) of every cell: the mean of ``effect(units, t) - effect(units,
    base)`` over the cohort's firms observed in both years (as the cell used them)."""
    sample = result.sample
    observed = pd.crosstab(sample["unit"], sample["year"]) > 0
    cohort = sample.drop_duplicates("unit").set_index("unit")["cohort"].reindex(observed.index)
    units = observed.index.to_numpy()
    cells = result.att_gt
    truth = np.full(len(cells.att), np.nan)
    for k, (g, t, base) in enumerate(zip(cells.group, cells.time, cells.base_period, strict=True)):
        used = (cohort.to_numpy() == g) & observed[t].to_numpy() & observed[base].to_numpy()
        if used.any():
            ids = units[used]
            delta = effect(ids, np.full(len(ids), t)) - effect(ids, np.full(len(ids), base))
            truth[k] = float(np.mean(delta))
    return truth
