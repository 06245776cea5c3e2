"""The did stage's ATT by firm type: ``tables/did_types.csv`` and ``did_type_tests.csv``.

For every firm-type dimension of the run (``heterogeneity.dimensions``, or
``roles.firm_types`` when unset: the dimensions of ``gate.csv``), Callaway–Sant'Anna
ATT(g, t) and its four aggregations per level (:func:`vaer.did.types.att_gt_by_type`,
type indicators in both nuisance models), on the did stage's sample and with its
options, and the tables of :func:`vaer.did.type_tables.type_frames`: each level's
estimates with t intervals, Holm / Romano-Wolf p-values and a band over the levels, and
per (aggregation, key) the equality F test and the pairwise differences. A firm's type
is its value in its first year of the DiD sample. Crossed dimensions are not formed.
With ``dml_did`` among ``did.estimators`` the same rows follow with ``estimator:
dml_did`` (:func:`vaer.did.dml_types.dml_att_gt_by_type`: the run's nuisance learners
cross-fitted over ``did.dml_folds`` folds of cities on ``did.covariates`` and every
dimension's type indicators, one fit per cell sample for all dimensions); their
intervals are printed where ``dml_did``'s are.

What was validated (``benchmarks/RESULTS.md``, ``did_types_validity``) is the small-
cluster mode; in the asymptotic mode the intervals and tests are withheld unless
``did.unvalidated_inference`` is set.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vaer.config.did import DidConfig
from vaer.context import RunContext
from vaer.did.aggregate import aggregate
from vaer.did.dml_types import dml_att_gt_by_type
from vaer.did.run_spec import SAMPLE_COLUMNS, cell_options, crossfitting, event_window
from vaer.did.type_tables import type_frames
from vaer.did.types import TypeATT, att_gt_by_type

CS_ESTIMATOR = "cs_did"
DML_ESTIMATOR = "dml_did"

TYPES_WITHHELD = (
    "withheld: ATT by firm type validated in did.inference: small_cluster only (did_types_validity)"
)
_INFERENCE = ("se", "ci_low", "ci_high", "p_adj", "p_value", "p_romano_wolf", "band_low",
              "band_high")  # fmt: skip
_TEST_INFERENCE = ("se", "statistic", "df_den", "p_value", "p_holm", "p_romano_wolf")


@dataclass(frozen=True)
class DidTypesResult:
    """ATT by firm type of the did stage.

    Attributes
    ----------
    results : dict
        Dimension -> :class:`~vaer.did.types.TypeATT` (Callaway-Sant'Anna).
    levels, tests : pandas.DataFrame
        ``did_types`` and ``did_type_tests`` rows (before withholding) of every
        estimator (``estimator`` column).
    withheld : str or None
        Why the ``cs_did`` rows' intervals and tests are not printed, else None.
    notes : tuple of str
        Dimensions that could not be estimated and why.
    small_cluster : bool
        Whether the inference is the small-cluster mode (else asymptotic).
    dml_results : dict
        Dimension -> :class:`~vaer.did.types.TypeATT` of ``dml_did`` (empty without it).
    dml_withheld : str or None
        Why the ``dml_did`` rows' intervals and tests are not printed, else None.
    """

    results: dict[str, TypeATT]
    levels: pd.DataFrame
    tests: pd.DataFrame
    withheld: str | None = None
    notes: tuple[str, ...] = ()
    small_cluster: bool = True
    dml_results: dict[str, TypeATT] = field(default_factory=dict)
    dml_withheld: str | None = None

    def _reasons(self) -> tuple[tuple[str, str | None], ...]:
        return ((CS_ESTIMATOR, self.withheld), (DML_ESTIMATOR, self.dml_withheld))

    def tables(self, outcome: str) -> dict[str, pd.DataFrame]:
        """``did_types`` and ``did_type_tests`` (with an ``inference`` and ``outcome``
        column); nothing when no dimension was estimated."""
        if self.levels.empty:
            return {}
        reason = "clustered by the cluster role" + (
            " (small-cluster t)" if self.small_cluster else " (asymptotic, not checked)"
        )
        levels = self.levels.assign(inference=reason)
        tests = self.tests.assign(inference=reason)
        for estimator, withheld in self._reasons():
            if withheld:
                for frame, columns in ((levels, _INFERENCE), (tests, _TEST_INFERENCE)):
                    rows = (frame["estimator"] == estimator).to_numpy()
                    frame.loc[rows, list(columns)] = np.nan
                    frame.loc[rows, "inference"] = withheld
        return {
            "did_types": levels.assign(outcome=outcome),
            "did_type_tests": tests.assign(outcome=outcome),
        }

    def metrics(self) -> dict[str, float]:
        """``did.types.<dimension>.<level>.<aggregation>`` (overall estimates) and, unless
        withheld, ``did.types.<dimension>.<aggregation>.equality_p`` (the equality test of
        the overall aggregates) and ``.equality_f``; ``dml_did``'s under
        ``did.types.dml_did.``."""
        out: dict[str, float] = {}
        if self.levels.empty:
            return out
        for estimator, withheld in self._reasons():
            stem = "did.types" if estimator == CS_ESTIMATOR else f"did.types.{estimator}"
            levels = self.levels[self.levels["estimator"] == estimator]
            for row in levels[levels["overall"].astype(bool)].to_dict("records"):
                key = f"{stem}.{row['dimension']}.{row['level']}.{row['aggregation']}"
                out[key] = float(row["estimate"])
            if withheld or self.tests.empty:
                continue
            tests = self.tests[self.tests["estimator"] == estimator]
            equality = tests[(tests["test"] == "equality") & tests["key"].isna()]
            for row in equality.to_dict("records"):
                prefix = f"{stem}.{row['dimension']}.{row['aggregation']}"
                out[f"{prefix}.equality_p"] = float(row["p_value"])
                out[f"{prefix}.equality_f"] = float(row["statistic"])
        return out


def type_dimensions(ctx: RunContext) -> list[str]:
    """The firm-type dimensions of ``gate.csv``: ``heterogeneity.dimensions`` or else
    ``roles.firm_types``."""
    dimensions = ctx.config.heterogeneity.dimensions
    return list(dimensions) if dimensions is not None else list(ctx.config.roles.firm_types)


def did_types(
    ctx: RunContext,
    sample: pd.DataFrame,
    frame: pd.DataFrame,
    config: DidConfig,
    dml_withheld: str | None = None,
) -> DidTypesResult | None:
    """ATT by firm type on the did stage's ``sample`` (unit, year, cohort, cluster, y,
    covariates), with the types read from the panel ``frame``; None without dimensions.
    ``dml_withheld``: why ``dml_did``'s intervals are not printed (its rows follow
    ``dml_did``'s overall rows)."""
    dimensions = type_dimensions(ctx)
    if not dimensions:
        return None
    roles = ctx.config.roles
    absent = [d for d in dimensions if d not in frame.columns]
    if absent:
        raise ValueError(f"did: firm-type columns {absent} are not columns of the panel")
    types = frame[[roles.unit, roles.time, *dimensions]].rename(
        columns={roles.unit: "unit", roles.time: "year"}
    )
    data = sample.merge(types, on=["unit", "year"], how="left", validate="one_to_one")
    ctx.progress(f"DiD: ATT by firm type ({', '.join(dimensions)})")
    results: dict[str, TypeATT] = {}
    notes: list[str] = []
    min_e, max_e = event_window(config)
    for dimension in dimensions:
        try:
            results.update(
                att_gt_by_type(
                    data, SAMPLE_COLUMNS, types=[dimension],
                    covariates=list(config.covariates) or None, method=config.method,
                    options=cell_options(config), min_e=min_e, max_e=max_e,
                )
            )  # fmt: skip
        except ValueError as exc:
            notes.append(f"no ATT by {dimension}: {exc}")
            continue
        result = results[dimension]
        for level in result.levels:
            if level not in result.cells:
                reasons = result.skipped.loc[result.skipped["level"] == level, "reason"]
                why = reasons.value_counts().index[0] if len(reasons) else "no cell"
                notes.append(f"ATT by {dimension}: level {level} not estimated in any cell ({why})")
    dml_results = _dml_types(ctx, data, [d for d in dimensions if d in results], config, notes)
    frames = [
        type_frames(
            result, estimator=estimator, n_draws=ctx.config.heterogeneity.n_bootstrap,
            random_state=ctx.seed + 7 * k,
        )
        for k, (estimator, result) in enumerate(
            [(CS_ESTIMATOR, r) for r in results.values()]
            + [(DML_ESTIMATOR, r) for r in dml_results.values()]
        )
    ]  # fmt: skip
    levels = pd.concat([f[0] for f in frames], ignore_index=True) if frames else pd.DataFrame()
    tests = pd.concat([f[1] for f in frames], ignore_index=True) if frames else pd.DataFrame()
    withheld = (
        TYPES_WITHHELD
        if config.inference == "asymptotic" and not config.unvalidated_inference
        else None
    )
    return DidTypesResult(
        results, levels, tests, withheld, tuple(notes), config.inference == "small_cluster",
        dml_results=dml_results, dml_withheld=dml_withheld,
    )  # fmt: skip


def _dml_types(
    ctx: RunContext, data: pd.DataFrame, dimensions: list[str], config: DidConfig,
    notes: list[str],
) -> dict[str, TypeATT]:  # fmt: skip
    """``dml_did`` by type for ``dimensions`` (all in one nuisance fit per cell sample),
    when ``did.estimators`` has it; a failure is a note."""
    if DML_ESTIMATOR not in config.estimators or not dimensions:
        return {}
    ctx.progress(f"DiD: dml_did by firm type ({', '.join(dimensions)})")
    min_e, max_e = event_window(config)
    try:
        return dml_att_gt_by_type(
            data, SAMPLE_COLUMNS, types=dimensions, crossfit=crossfitting(ctx, config),
            covariates=list(config.covariates), options=cell_options(config),
            backend=ctx.backend, min_e=min_e, max_e=max_e,
        )  # fmt: skip
    except ValueError as exc:
        notes.append(f"no dml_did ATT by firm type: {exc}")
        return {}


def did_types_truth_metrics(
    types: DidTypesResult,
    sample: pd.DataFrame,
    effect: Callable[[np.ndarray, np.ndarray], np.ndarray],
    min_e: float = -np.inf,
    max_e: float = np.inf,
) -> dict[str, float]:
    """Coverage of the levels' overall aggregates against a known per-firm effect.

    The truth of a level's cell is the mean of ``effect(units, t) - effect(units, base)``
    over the level's cohort firms observed in both years (the firms the cell used); a
    level's true aggregate is the same aggregation of its true cells. The caller checks
    that the truth is exact in every year used.

    Returns
    -------
    dict
        ``did.types.truth.coverage`` (share of level x aggregation overall intervals that
        cover the truth), ``did.types.truth.max_abs_t`` (largest |estimate - truth| / SE)
        and ``did.types.truth.checked`` (how many); ``dml_did``'s under
        ``did.types.dml_did.truth.``; none for an estimator whose intervals are withheld.
    """
    out: dict[str, float] = {}
    observed = pd.crosstab(sample["unit"], sample["year"]) > 0
    for stem, results, withheld in (
        ("did.types.truth", types.results, types.withheld),
        (f"did.types.{DML_ESTIMATOR}.truth", types.dml_results, types.dml_withheld),
    ):
        if withheld or not results:
            continue
        covered, t_values = _truth_checks(results, observed, effect, min_e, max_e)
        if covered:
            out[f"{stem}.coverage"] = float(np.mean(covered))
            out[f"{stem}.max_abs_t"] = float(np.max(t_values))
            out[f"{stem}.checked"] = float(len(covered))
    return out


def _truth_checks(
    results: dict[str, TypeATT], observed: pd.DataFrame,
    effect: Callable[[np.ndarray, np.ndarray], np.ndarray], min_e: float, max_e: float,
) -> tuple[list[bool], list[float]]:  # fmt: skip
    """Whether each level x aggregation overall interval covers its truth, and its |t|."""
    covered: list[bool] = []
    t_values: list[float] = []
    for result in results.values():
        for level, cells in result.cells.items():
            seen = observed.reindex(cells.unit_ids).fillna(False)
            truth = np.zeros(len(cells.att))
            for k, (g, t, base) in enumerate(
                zip(cells.group, cells.time, cells.base_period, strict=True)
            ):
                used = (cells.cohort == g) & seen[t].to_numpy(bool) & seen[base].to_numpy(bool)
                ids = cells.unit_ids.to_numpy()[used]
                if len(ids) and t != base:
                    years = np.full(len(ids), t)
                    truth[k] = float(
                        np.mean(effect(ids, years) - effect(ids, np.full_like(years, base)))
                    )
            true_cells = dataclasses.replace(cells, att=truth)
            for name, estimated in result.aggregates[level].items():
                true = aggregate(true_cells, name, min_e=min_e, max_e=max_e).overall_estimate
                row = estimated.to_frame().iloc[-1]
                covered.append(bool(row["ci_low"] <= true <= row["ci_high"]))
                t_values.append(abs(estimated.overall_estimate - true) / estimated.overall_se)
    return covered, t_values
