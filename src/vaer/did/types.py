"""Callaway–Sant'Anna ATT(g, t) by firm type, with the same inference as the overall ATT.

For a firm-type dimension (ownership, size class, ...) with levels ``l`` the estimand of a
cell is ``ATT_l(g, t) = E[Y_t(g) - Y_t(inf) | G = g, L = l]``: the level mean of the
cell's doubly robust DiD terms, each arm normalised within the level
(:mod:`vaer.did.drdid_levels`, whose docstring argues why the comparison units must be of
the same level and the nuisances must condition on it). Each level's cells form an
:class:`~vaer.did.att_gt.ATTGTResult` on all units of the panel, so the aggregations of
:func:`vaer.did.aggregate.aggregate` apply unchanged: units outside the level carry the
cohort code ``-1``, so that the cohort weights ``p_g`` are the level's own cohort shares
``P(G = g, L = l)`` (normalised within the level: the simple ATT of SOEs weights each
cohort by its number of SOEs) and the estimated-weight term of the influence function is
that of those shares.

Inference is the overall ATT's (:mod:`vaer.did.inference`): per-unit influence
functions on all ``n`` units of the panel, in the small-cluster mode scaled by the CR2
arm-leverage factor of each unit's cluster in its arm *of its level* (a level's ATT is a
difference of two within-level means), clustered by city with Satterthwaite degrees of
freedom. Because every level's influence functions live on the same units and clusters,
the covariance of the levels' estimates (for the equality tests of
:mod:`vaer.did.type_tables`) is the cluster-robust one of the stacked columns.

Exact identities (tests): with one level, every estimate and standard error is the
overall one; with ``nuisance="per_level"``, or without covariates, a level's cells and
aggregations equal :func:`vaer.did.att_gt.att_gt` on the subpanel of that level's firms
(small-cluster mode: also the standard errors and degrees of freedom).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vaer.did.aggregate import AGGREGATIONS, AggregateResult, aggregate
from vaer.did.att_gt import (
    DEFAULT_OPTIONS,
    ATTGTResult,
    CellOptions,
    _Cell,
    _cells,
    cell_arms,
    check_method,
    checked_panel,
    result_options,
)
from vaer.did.drdid import EstimationError
from vaer.did.drdid_levels import NUISANCE_MODES, LevelFit, level_two_period_att
from vaer.did.inference import arm_leverage_factor, cluster_se_df
from vaer.did.panel import Panel, PanelColumns

OUTSIDE_LEVEL = -1
"""Cohort code of the units outside a level in that level's ATTGTResult."""


@dataclass(frozen=True)
class TypeATT:
    """ATT(g, t) and its aggregations for every level of one firm-type dimension.

    Attributes
    ----------
    dimension : str
        The firm-type column.
    levels : tuple of str
        Its levels (sorted).
    cells : dict
        Level -> :class:`~vaer.did.att_gt.ATTGTResult` of the cells estimated for it
        (rows of ``influence``: all units of the panel; ``cohort`` is ``-1`` outside the
        level).
    aggregates : dict
        Level -> {aggregation -> AggregateResult}.
    n_units, n_clusters : dict
        Level -> firms of the level and clusters holding them.
    skipped : pandas.DataFrame
        Cells not estimated for a level (level, group, time, base_period, reason).
    nuisance : str
        ``"pooled"`` or ``"per_level"`` (:mod:`vaer.did.drdid_levels`), or ``"crossfit"``
        (:mod:`vaer.did.dml_types`).
    """

    dimension: str
    levels: tuple[str, ...]
    cells: dict[str, ATTGTResult]
    aggregates: dict[str, dict[str, AggregateResult]]
    n_units: dict[str, int]
    n_clusters: dict[str, int]
    skipped: pd.DataFrame
    nuisance: str


def _type_labels(
    data: pd.DataFrame | None, columns: PanelColumns, panel: Panel,
    types: Sequence[str] | pd.DataFrame,
) -> pd.DataFrame:  # fmt: skip
    """The firm-type labels of every panel unit (as strings), rows in ``unit_ids`` order."""
    if isinstance(types, pd.DataFrame):
        missing = panel.unit_ids.difference(types.index)
        if len(missing):
            raise ValueError(
                f"`types` has no row for {len(missing)} units (e.g. {missing[0]!r}); index it "
                "by unit id with one row per unit"
            )
        if not types.index.is_unique:
            raise ValueError("`types` has duplicate unit ids in its index; one row per unit")
        frame = types.loc[panel.unit_ids]
    else:
        unit, period = columns.unit, columns.period
        if data is None or not isinstance(unit, str) or not isinstance(period, str):
            raise ValueError("`types` as column names needs `data` with named unit/period")
        absent = [c for c in types if c not in data.columns]
        if absent:
            raise ValueError(f"`types` columns {absent} are not in the data")
        first = data.sort_values([unit, period]).drop_duplicates(unit).set_index(unit)
        frame = first.loc[panel.unit_ids, list(types)]
    if frame.isna().to_numpy().any():
        bad = [str(c) for c in frame.columns if frame[c].isna().any()]
        raise ValueError(f"firm types {bad} have missing values; fill or drop those firms")
    return frame.astype(str).set_axis(panel.unit_ids, axis=0)


def att_gt_by_type(
    data: pd.DataFrame | None,
    columns: PanelColumns,
    *,
    types: Sequence[str] | pd.DataFrame,
    covariates: Sequence[str] | pd.DataFrame | None = None,
    method: str = "dr",
    options: CellOptions = DEFAULT_OPTIONS,
    nuisance: str = "pooled",
    min_e: float = -np.inf,
    max_e: float = np.inf,
    aggregations: Sequence[str] = AGGREGATIONS,
) -> dict[str, TypeATT]:
    """ATT(g, t) and its aggregations per level of each firm-type dimension.

    Parameters
    ----------
    data, columns, covariates, method, options
        As :func:`vaer.did.att_gt.att_gt` (no bootstrap: the small-cluster mode's bands
        are Bonferroni-t).
    types : list of str or pandas.DataFrame
        Firm-type columns of ``data`` (each unit's value in its first observed period)
        or a DataFrame indexed by unit id; each column is one dimension, its values
        (as strings) the levels.
    nuisance : {"pooled", "per_level"}
        How the propensity and outcome models condition on the level
        (:mod:`vaer.did.drdid_levels`).
    min_e, max_e : float
        Event-time window of the aggregations (as :func:`vaer.did.aggregate.aggregate`).
    aggregations : sequence of str
        Which aggregations to form for every level.

    Returns
    -------
    dict
        Dimension -> :class:`TypeATT`.

    Raises
    ------
    ValueError
        On an invalid option or panel (as ``att_gt``), a type column missing or with
        missing values, no never-treated units with ``control_group="never"``, or a
        singular or separated nuisance fit in some cell and level (the message names
        them and the fix).
    """
    check_method(method)
    if nuisance not in NUISANCE_MODES:
        raise ValueError(f"`nuisance` must be one of {NUISANCE_MODES}; got {nuisance!r}")
    panel = checked_panel(data, columns, covariates, options)
    labels = _type_labels(data, columns, panel, types)

    def fit_levels(
        delta: np.ndarray, treated: np.ndarray, rows: np.ndarray, codes: np.ndarray, n_levels: int
    ) -> LevelFit:
        return level_two_period_att(
            delta, treated, panel.covariates[rows], codes, n_levels, method=method,
            nuisance=nuisance, trim_level=options.trim_level,
        )  # fmt: skip

    return by_dimension(
        panel, labels, fit_levels, options, method=method,
        hint="use fewer covariates or did nuisance 'pooled'", nuisance=nuisance, min_e=min_e,
        max_e=max_e, aggregations=aggregations,
    )  # fmt: skip


LevelFitter = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int], LevelFit]
"""Fits every level of the cells that share one sample: ``(delta_y, treated, rows, codes,
n_levels) -> LevelFit``, with ``delta_y`` the ``(n_s, m)`` outcome changes, ``treated`` the
``(n_s,)`` cohort indicator, ``rows`` the sample's row numbers in the panel's unit arrays
and ``codes`` the ``(n_s,)`` level codes of those units."""


def by_dimension(
    panel: Panel,
    labels: pd.DataFrame,
    fit_levels: LevelFitter,
    options: CellOptions,
    *,
    method: str,
    hint: str,
    nuisance: str,
    min_e: float = -np.inf,
    max_e: float = np.inf,
    aggregations: Sequence[str] = AGGREGATIONS,
) -> dict[str, TypeATT]:
    """The cells and aggregations of every level of every dimension of ``labels``.

    Shared by the estimators of the cells by type (Callaway-Sant'Anna's
    :func:`att_gt_by_type`, the cross-fitted :func:`vaer.did.dml_types.dml_att_gt_by_type`);
    only ``fit_levels`` differs. ``options`` are the cells'; ``method`` names the estimator
    of the cells, ``hint`` the fix named when a cell cannot be fitted and ``nuisance``
    labels the result.
    """
    cells = _cells(panel, options)
    out: dict[str, TypeATT] = {}
    for dimension in labels.columns:
        codes, levels = pd.factorize(labels[dimension], sort=True)
        result = _dimension(
            panel, cells, str(dimension), codes, tuple(map(str, levels)), fit_levels,
            options, method, hint,
        )  # fmt: skip
        aggregates = {
            level: {name: aggregate(c, name, min_e=min_e, max_e=max_e) for name in aggregations}
            for level, c in result.cells.items()
        }
        out[str(dimension)] = TypeATT(
            dimension=result.dimension, levels=result.levels, cells=result.cells,
            aggregates=aggregates, n_units=result.n_units, n_clusters=result.n_clusters,
            skipped=result.skipped, nuisance=nuisance,
        )  # fmt: skip
    return out


@dataclass(frozen=True)
class _Dimension:
    dimension: str
    levels: tuple[str, ...]
    cells: dict[str, ATTGTResult]
    n_units: dict[str, int]
    n_clusters: dict[str, int]
    skipped: pd.DataFrame


def _dimension(
    panel: Panel, cells: list[_Cell], dimension: str, codes: np.ndarray,
    levels: tuple[str, ...], fit_levels: LevelFitter, options: CellOptions, method: str,
    hint: str,
) -> _Dimension:  # fmt: skip
    """Every cell of every level of one dimension."""
    periods, cohort, observed = panel.periods, panel.cohort, panel.observed
    n, n_levels, n_cells = panel.n_units, len(levels), len(cells)
    att = np.full((n_levels, n_cells), np.nan)
    influence = np.zeros((n_levels, n, n_cells))
    n_treated = np.zeros((n_levels, n_cells), dtype=np.int64)
    n_control = np.zeros((n_levels, n_cells), dtype=np.int64)
    reasons: dict[tuple[int, int], str] = {}
    reference = np.zeros(n_cells, dtype=bool)
    groups: dict[tuple[int, bytes], list[int]] = {}
    masks: dict[tuple[int, bytes], np.ndarray] = {}
    for position, cell in enumerate(cells):
        treated, control = cell_arms(panel, cell, options)
        both = observed[:, cell.t] & observed[:, cell.b]
        n_treated[:, position] = np.bincount(codes[treated & both], minlength=n_levels)
        n_control[:, position] = np.bincount(codes[control & both], minlength=n_levels)
        if cell.t == cell.b:
            reference[position] = True
            att[:, position] = np.where(n_treated[:, position] > 0, 0.0, np.nan)
            continue
        sample = (treated | control) & both
        key = (cell.group, np.packbits(sample).tobytes())
        groups.setdefault(key, []).append(position)
        masks[key] = sample
    for key, positions in groups.items():
        rows = np.flatnonzero(masks[key])
        t_idx = [cells[p].t for p in positions]
        b_idx = [cells[p].b for p in positions]
        y = panel.outcome[rows]
        treated = cohort[rows] == key[0]
        try:
            fit = fit_levels(y[:, t_idx] - y[:, b_idx], treated, rows, codes[rows], n_levels)
        except EstimationError as error:
            names = ", ".join(f"({key[0]}, {int(periods[t])})" for t in t_idx)
            raise ValueError(
                f"ATT by {dimension}: cells (g, t) = {names}: {error}; with few firms of a "
                f"level in a cell {hint}"
            ) from None
        columns = np.asarray(positions, dtype=np.int64)
        scale = np.full(len(rows), n / len(rows))
        one_city: set[int] = set()
        if options.inference == "small_cluster":  # CR2 factor in the unit's arm of its level
            for code in np.unique(codes[rows]):
                own = codes[rows] == code
                try:
                    scale[own] *= arm_leverage_factor(
                        panel.cluster[rows][own], treated[own], panel.n_clusters
                    )
                except ValueError:
                    one_city.add(int(code))
        for level in range(n_levels):
            reason = None
            if not np.isfinite(fit.att[level]).all():
                reason = "no treated or no comparison firm of the level"
            elif level in one_city:
                reason = "the level's treated or comparison firms are in one city"
            if reason is not None:
                reasons.update({(level, p): reason for p in positions})
                continue
            att[level, columns] = fit.att[level]
            influence[level][np.ix_(rows, columns)] = fit.influence[level] * scale[:, None]
    per_level: dict[str, ATTGTResult] = {}
    skipped: list[dict[str, object]] = []
    for level, name in enumerate(levels):
        keep = np.isfinite(att[level])
        for p in np.flatnonzero(~keep):
            skipped.append(
                {
                    "level": name, "group": cells[p].group, "time": int(periods[cells[p].t]),
                    "base_period": int(periods[cells[p].b]),
                    "reason": reasons.get((level, int(p)), "no firm of the level in the cohort"),
                }
            )  # fmt: skip
        if not keep.any():
            continue
        inf = influence[level][:, keep]
        se, df = cluster_se_df(inf, panel.cluster, panel.n_clusters, options.inference)
        se[reference[keep]] = np.nan
        df[reference[keep]] = np.nan
        kept = [c for c, k in zip(cells, keep, strict=True) if k]
        drops = pd.DataFrame(
            {
                "group": [c.group for c in kept],
                "time": periods[[c.t for c in kept]],
                "base_period": periods[[c.b for c in kept]],
                "n_treated": n_treated[level, keep],
                "n_control": n_control[level, keep],
            }
        )
        per_level[name] = ATTGTResult(
            group=np.array([c.group for c in kept], dtype=np.int64),
            time=periods[[c.t for c in kept]],
            base_period=periods[[c.b for c in kept]],
            att=att[level, keep],
            se=se,
            n_treated=n_treated[level, keep],
            n_control=n_control[level, keep],
            influence=inf,
            unit_ids=panel.unit_ids,
            cohort=np.where(codes == level, cohort, OUTSIDE_LEVEL),
            cluster=panel.cluster,
            cluster_ids=panel.cluster_ids,
            periods=periods,
            drops=drops,
            skipped=pd.DataFrame(columns=["group", "time", "base_period", "reason"]),
            df=df,
            **result_options(method, options),
        )
    return _Dimension(
        dimension=dimension,
        levels=levels,
        cells=per_level,
        n_units={name: int(np.sum(codes == k)) for k, name in enumerate(levels)},
        n_clusters={
            name: len(np.unique(panel.cluster[codes == k])) for k, name in enumerate(levels)
        },
        skipped=pd.DataFrame(skipped, columns=["level", "group", "time", "base_period", "reason"]),
    )
