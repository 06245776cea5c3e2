"""What the validity benchmark measures on one run, and how seeds add up to a verdict.

Every function here reads the product's own outputs, the tables a run writes to
``<out_dir>/tables/`` (``cate``, ``ate``, ``gate``, ``gate_tests``, ``gates_sorted``,
``clan``, ``calibration``, ``blp``, ``rate``, ``shap_channels``, ``mechanisms``,
``robustness``), and compares them with the truth of the data (a
:class:`vaer.data.truth.Truth`). None reads vaer's internals, so the estimators can change
underneath.

Per seed, each function returns *measurement rows*: ``claim`` (what is measured),
``estimator``, ``item`` (which interval or test), ``value`` (a 0/1 indicator, or a share
of firms for per-firm coverage), and where they exist ``t``, ``estimate``, ``se`` and
``truth``. :func:`summarise` turns the rows of many seeds into one line per claim, item
and design with its Monte-Carlo standard error and verdict against :data:`TARGETS`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from vaer.data.truth import Truth

ALPHA = 0.05
Z95 = float(stats.norm.ppf(0.975))
TOLERANCE = 1e-9
"""Slack when an interval bound is compared with a truth of exactly 0 (a share)."""

Row = dict[str, Any]


@dataclass(frozen=True)
class Target:
    """A claim's target: ``low <= measured <= high`` (``abs_max``: ``|measured| <= high``)."""

    text: str
    low: float = -np.inf
    high: float = np.inf
    absolute: bool = False

    def met(self, value: float) -> bool:
        """Whether ``value`` meets the target (NaN never does)."""
        if not np.isfinite(value):
            return False
        checked = abs(value) if self.absolute else value
        return bool(self.low <= checked <= self.high)

    def distance(self, value: float) -> float:
        """Distance from ``value`` to the nearest bound of the target."""
        checked = abs(value) if self.absolute else value
        bounds = [b for b in (self.low, self.high) if np.isfinite(b)]
        return min(abs(checked - b) for b in bounds) if bounds else np.inf


TARGETS: dict[str, Target | None] = {
    "cate_coverage": Target("[0.90, 0.97]", 0.90, 0.97),
    "het_size": Target("<= 0.07", high=0.07),
    "het_mean_t": Target("|mean t| <= 0.15", high=0.15, absolute=True),
    "het_power": None,
    "channel_coverage": Target(">= 0.90", low=0.90),
    "mechanism_coverage": Target("[0.92, 0.98]", 0.92, 0.98),
    "mechanism_zero_reject": Target("<= 0.07", high=0.07),
    "ate_coverage": Target("[0.92, 0.98]", 0.92, 0.98),
    "ate_bias_se": Target("|bias| <= 0.2 SE", high=0.2, absolute=True),
    "refuter_false_alarm": Target("<= 0.05", high=0.05),
    "refuter_family": Target("<= 0.05", high=0.05),
    "refuter_any": None,
    "gate_coverage": None,
    "cate_blp_coverage": None,
    "clan_reject": None,
}
"""Targets of issue 21 per claim (``None``: reported for information, no target)."""

ROW_CLAIMS = (
    "cate_coverage",
    "cate_blp_coverage",
    "het_test",
    "clan_reject",
    "gate_coverage",
    "channel_coverage",
    "mechanism_coverage",
    "mechanism_zero_reject",
    "ate_coverage",
    "refuter_false_alarm",
    "refuter_family",
    "refuter_any",
)
"""The claims of measurement rows (``het_test`` becomes size or power in :func:`summarise`,
``ate_coverage`` also gives ``ate_bias_se``)."""


def read_tables(out_dir: Path) -> dict[str, pd.DataFrame]:
    """Every CSV table a run wrote (``<out_dir>/tables/*.csv``), by name."""
    folder = Path(out_dir) / "tables"
    return {path.stem: pd.read_csv(path) for path in sorted(folder.glob("*.csv"))}


def _row(claim: str, estimator: str, item: str, value: float, **extra: Any) -> Row:
    return {"claim": claim, "estimator": estimator, "item": item, "value": float(value), **extra}


def _rejects(p_value: float, alpha: float) -> float:
    """1.0 if ``p_value < alpha``, 0.0 if not, NaN if the product withheld the p-value
    (``heterogeneity.ranking_tests``: the test is not printed, so no size claim)."""
    return float(p_value < alpha) if np.isfinite(p_value) else np.nan


# ------------------------------------------------------------------ per-firm intervals


def cate_schema(cate: pd.DataFrame) -> str:
    """``new`` if ``cate.csv`` has the ``interval`` column (and ``ci_low``/``ci_high``),
    ``old`` if it only has ``se``.

    Raises
    ------
    ValueError
        If the table has neither ``interval`` nor ``se``.
    """
    if {"interval", "ci_low", "ci_high"} <= set(cate.columns):
        return "new"
    if "se" in cate.columns:
        return "old"
    raise ValueError(f"cate.csv has neither `interval` nor `se`; columns {list(cate.columns)}")


def cate_rows(cate: pd.DataFrame, truth: Truth) -> list[Row]:
    """Pointwise coverage of the true tau(x_i) by the per-firm intervals of ``cate.csv``.

    New schema: only rows whose ``interval`` is ``firm`` are intervals for the firm's
    effect (claim ``cate_coverage``); rows marked ``blp`` are intervals for the best linear
    projection at x_i and are reported apart (``cate_blp_coverage``, no target). Old schema
    (``se`` only): the interval is ``tau_hat +- 1.96 se`` for every row; the forest's rows
    count for the claim, a linear model's are reported apart. ``value`` is the share of the
    estimator's firms covered; ``estimate`` the share of its rows that carry such an
    interval; ``se`` the mean interval half-width.
    """
    schema = cate_schema(cate)
    rows: list[Row] = []
    for label, part in cate.groupby("estimator", sort=False):
        tau = truth.tau_for(part["unit"].to_numpy())
        if schema == "new":
            kinds = part["interval"].astype(str).to_numpy()
            low, high = part["ci_low"].to_numpy(float), part["ci_high"].to_numpy(float)
        else:
            forest = "forest" in str(label)
            kinds = np.full(len(part), "firm" if forest else "blp", dtype=object)
            half = Z95 * part["se"].to_numpy(float)
            low = part["tau_hat"].to_numpy(float) - half
            high = part["tau_hat"].to_numpy(float) + half
        for kind, claim in (("firm", "cate_coverage"), ("blp", "cate_blp_coverage")):
            chosen = (kinds == kind) & np.isfinite(low) & np.isfinite(high)
            if kind == "firm" and not chosen.any() and "forest" in str(label):
                # the claim's estimator wrote no per-firm interval: the claim cannot hold
                rows.append(_row(claim, str(label), f"{schema} schema", np.nan, estimate=0.0))
                continue
            if not chosen.any():
                continue
            covered = (low[chosen] <= tau[chosen]) & (tau[chosen] <= high[chosen])
            rows.append(
                _row(
                    claim,
                    str(label),
                    f"{schema} schema",
                    covered.mean(),
                    estimate=chosen.mean(),
                    se=float(np.mean((high[chosen] - low[chosen]) / 2)),
                )
            )
    return rows


# ------------------------------------------------------------ heterogeneity tests


def holm_any(p_values: Iterable[float], alpha: float = ALPHA) -> bool:
    """Whether Holm's step-down procedure rejects any of ``p_values`` at ``alpha``."""
    p = np.sort(np.asarray([v for v in p_values if np.isfinite(v)], dtype=float))
    if p.size == 0:
        return False
    return bool(p[0] <= alpha / p.size)


def heterogeneity_rows(tables: Mapping[str, pd.DataFrame], alpha: float = ALPHA) -> list[Row]:
    """Rejections at ``alpha`` of every heterogeneity test the run printed.

    Claim ``het_test``; items: ``wald:<dimension>`` (GATE equality) and ``wald:any (Holm)``
    over the dimensions; ``pairs:<dimension>`` (share of pairwise GATE differences with
    raw p < alpha) and ``pairs_holm:<dimension>`` (any Holm-adjusted pair, as printed);
    ``calibration:differential``; ``sorted:top-bottom``; ``rate:AUTOC`` and ``rate:QINI``;
    ``blp:<covariate>`` and ``blp:any (Holm)``; ``t`` is the signed statistic where the
    test has one. CLAN contrasts go to claim ``clan_reject``: their null (equal mean
    characteristic in the top and bottom groups) is false whenever tau_hat varies with the
    characteristic, even under a constant effect, so they are no test of heterogeneity.
    """
    rows: list[Row] = []
    tests = tables.get("gate_tests")
    if tests is not None and len(tests):
        for label, part in tests.groupby("estimator", sort=False):
            equality = part[part["test"] == "equality"]
            for rec in equality.itertuples(index=False):
                rows.append(
                    _row(
                        "het_test",
                        str(label),
                        f"wald:{rec.dimension}",
                        rec.p_value < alpha,
                        estimate=rec.statistic,
                    )
                )
            if len(equality):
                rows.append(
                    _row(
                        "het_test",
                        str(label),
                        "wald:any (Holm)",
                        holm_any(equality["p_value"], alpha),
                    )
                )
            pairs = part[part["test"] == "difference"]
            for dimension, group in pairs.groupby("dimension", sort=False):
                rows.append(
                    _row(
                        "het_test",
                        str(label),
                        f"pairs:{dimension}",
                        float(np.mean(group["p_value"] < alpha)),
                    )
                )
                rows.append(
                    _row(
                        "het_test",
                        str(label),
                        f"pairs_holm:{dimension}",
                        bool((group["p_holm"] < alpha).any()),
                    )
                )
    calibration = tables.get("calibration")
    if calibration is not None:
        for rec in calibration.itertuples(index=False):
            if rec.term == "differential_forest_prediction":
                rows.append(
                    _row(
                        "het_test",
                        str(rec.estimator),
                        "calibration:differential",
                        _rejects(rec.p_value, alpha),
                        t=rec.t_stat,
                        estimate=rec.estimate,
                        se=rec.se,
                    )
                )
    sorted_gates = tables.get("gates_sorted")
    if sorted_gates is not None:
        for rec in sorted_gates.itertuples(index=False):
            if str(rec.group) == "top - bottom":
                rows.append(
                    _row(
                        "het_test",
                        str(rec.estimator),
                        "sorted:top-bottom",
                        _rejects(rec.p_value, alpha),
                        t=rec.estimate / rec.se,
                        estimate=rec.estimate,
                        se=rec.se,
                    )
                )
    rate = tables.get("rate")
    if rate is not None:
        for rec in rate.itertuples(index=False):
            rows.append(
                _row(
                    "het_test",
                    str(rec.estimator),
                    f"rate:{rec.target}",
                    _rejects(rec.p_value, alpha),
                    t=rec.estimate / rec.se,
                    estimate=rec.estimate,
                    se=rec.se,
                )
            )
    blp = tables.get("blp")
    if blp is not None:
        for label, part in blp.groupby("estimator", sort=False):
            slopes = part[part["term"] != "(intercept)"]
            for rec in slopes.itertuples(index=False):
                rows.append(
                    _row(
                        "het_test",
                        str(label),
                        f"blp:{rec.term}",
                        rec.p_value < alpha,
                        t=rec.t_stat,
                        estimate=rec.estimate,
                        se=rec.se,
                    )
                )
            if len(slopes):
                rows.append(
                    _row(
                        "het_test", str(label), "blp:any (Holm)", holm_any(slopes["p_value"], alpha)
                    )
                )
    clan = tables.get("clan")
    if clan is not None:
        for rec in clan.itertuples(index=False):
            rows.append(
                _row("clan_reject", str(rec.estimator), f"clan:{rec.variable}", rec.p_value < alpha)
            )
    return rows


def gate_rows(gate: pd.DataFrame, truth: Truth) -> list[Row]:
    """Coverage of the true GATE of each firm-type level by its CI (``gate_coverage``,
    item ``<dimension>``: share of the dimension's levels covered) and by the sup-t band
    (item ``band:<dimension>``: 1 if every level is covered). Truth over the run's firms."""
    rows: list[Row] = []
    for (label, dimension), part in gate.groupby(["estimator", "dimension"], sort=False):
        if " x " in str(dimension) or dimension not in truth.firm_types.columns:
            continue
        true = truth.gates(str(dimension))
        levels = part["level"].astype(str)
        target = true.reindex(levels).to_numpy()
        inside = (part["ci_low"].to_numpy() <= target) & (target <= part["ci_high"].to_numpy())
        band = (part["band_low"].to_numpy() <= target) & (target <= part["band_high"].to_numpy())
        rows.append(_row("gate_coverage", str(label), f"level:{dimension}", inside.mean()))
        rows.append(_row("gate_coverage", str(label), f"band:{dimension}", bool(band.all())))
    return rows


# ------------------------------------------------- channels, mechanisms, ATE, refuters


def channel_rows(
    channels: pd.DataFrame, truth: Truth, projected: Mapping[str, float] | None = None
) -> list[Row]:
    """Whether each printed channel-share interval covers the share it names
    (``channel_coverage``).

    The true share (:meth:`Truth.channel_shares` over every firm of the run) of a channel
    without effect is 0, so for it coverage means that the interval reaches 0. Rows whose
    ``interval`` says they cover the best linear projection (linear final stages) are
    checked against ``projected`` (channel -> the projection's share,
    :meth:`Truth.linear_projection_shares`, which the run logs as the truth metric
    ``shap.linear_projection_share.<channel>``); withheld intervals make no claim.
    """
    true = truth.channel_shares()
    rows: list[Row] = []
    for rec in channels.itertuples(index=False):
        if rec.channel not in true.index or pd.isna(rec.ci_low):
            continue
        linear = str(getattr(rec, "interval", "")).startswith("best linear projection")
        named = projected if linear else true
        if named is None:
            raise ValueError("linear projection intervals need the projection's shares")
        value = float(named[rec.channel])
        covered = rec.ci_low - TOLERANCE <= value <= rec.ci_high + TOLERANCE
        rows.append(
            _row(
                "channel_coverage",
                str(rec.estimator),
                str(rec.channel),
                covered,
                estimate=rec.share,
                truth=value,
                se=(rec.ci_high - rec.ci_low) / (2 * Z95),
            )
        )
    return rows


def mechanism_rows(mechanisms: pd.DataFrame, truth: Truth, alpha: float = ALPHA) -> list[Row]:
    """Coverage of each true T -> M effect (``mechanism_coverage``) and, for mediators
    with no effect, rejection of 0 (``mechanism_zero_reject``); whole-sample rows only."""
    rows: list[Row] = []
    whole = mechanisms[mechanisms["dimension"].astype(str) == "all"]
    for rec in whole.itertuples(index=False):
        if rec.mediator not in truth.mediator_effects:
            continue
        theta = float(truth.mediator_effects[rec.mediator])
        extra = {
            "estimate": rec.estimate,
            "se": rec.se,
            "truth": theta,
            "t": (rec.estimate - theta) / rec.se,
        }
        covered = rec.ci_low <= theta <= rec.ci_high
        rows.append(_row("mechanism_coverage", "mechanisms", str(rec.mediator), covered, **extra))
        if theta == 0.0:
            rows.append(
                _row(
                    "mechanism_zero_reject",
                    "mechanisms",
                    str(rec.mediator),
                    rec.p_value < alpha,
                    **extra,
                )
            )
    return rows


def is_cluster_row(se_type: str) -> bool:
    """Whether an ``ate.csv`` row carries vaer's cluster-robust SE (not econml's)."""
    text = str(se_type).lower()
    return "cluster" in text and "econml" not in text


def ate_rows(ate: pd.DataFrame, truths: Mapping[str, float]) -> list[Row]:
    """Coverage of the true ATE by the cluster-robust rows of ``ate.csv`` (``ate_coverage``)
    with the error in ``estimate - truth`` (``ate_bias_se`` divides its mean by the mean SE).

    ``truths`` maps estimator label -> its true estimand; estimators not in it are skipped.
    """
    rows: list[Row] = []
    for rec in ate.itertuples(index=False):
        if rec.estimator not in truths or not is_cluster_row(rec.se_type):
            continue
        value = float(truths[rec.estimator])
        covered = rec.ci_low <= value <= rec.ci_high
        rows.append(
            _row(
                "ate_coverage",
                str(rec.estimator),
                str(rec.se_type),
                covered,
                estimate=rec.estimate,
                se=rec.se,
                truth=value,
                t=(rec.estimate - value) / rec.se,
            )
        )
    return rows


def refuter_rows(robustness: pd.DataFrame) -> list[Row]:
    """False alarms on data where the model is right: of each refuter
    (``refuter_false_alarm``: any of its rows flagged, ``passed`` false), of the checks
    taken together (``refuter_family``: a check's Holm-adjusted ``family_p`` at most its
    false-alarm rate, as the report's verdict reads) and, for information, of "some check
    flagged at its own level" (``refuter_any``).
    """
    rows: list[Row] = []
    flags: dict[str, bool] = {}
    for check, part in robustness.groupby("check", sort=False):
        flags[str(check)] = not bool(part["passed"].astype(str).str.lower().eq("true").all())
    if not flags:
        return rows
    estimator = str(robustness["estimator"].iloc[0])
    rows += [_row("refuter_false_alarm", estimator, c, f) for c, f in flags.items()]
    rows += refuter_family_rows(estimator, flags, family_flagged(robustness))
    return rows


def family_flagged(robustness: pd.DataFrame) -> bool | None:
    """Whether the checks taken together flag the model (some ``family_p`` at most its
    ``false_alarm``), or None for a table written without ``family_p``."""
    if "family_p" not in robustness.columns:
        return None
    return bool((robustness["family_p"] <= robustness["false_alarm"]).any())


def refuter_family_rows(estimator: str, flags: dict[str, bool], family: bool | None) -> list[Row]:
    """The rows ``refuter_any`` (some check flagged at its own level) and, when the table
    has it, ``refuter_family`` (the Holm verdict)."""
    rows = [_row("refuter_any", estimator, "some check at its own level", any(flags.values()))]
    if family is not None:
        rows.append(_row("refuter_family", estimator, "all checks together (Holm)", family))
    return rows


# ------------------------------------------------------------------------ summaries


def mean_and_se(values: np.ndarray) -> tuple[float, float]:
    """Mean over seeds and its Monte-Carlo SE (NaNs dropped first).

    For 0/1 values (rates) the binomial SE ``sqrt(p~ (1 - p~) / S)`` with the Laplace
    estimate ``p~ = (k + 1) / (S + 2)``, so that 0 of S and S of S keep a non-zero SE
    (with few seeds a rate of 1 is no evidence against 0.95); ``sd / sqrt(S)`` otherwise.

    Raises
    ------
    ValueError
        If no finite value is left.
    """
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        raise ValueError("no finite value to summarise")
    mean = float(finite.mean())
    if np.isin(finite, (0.0, 1.0)).all():
        smoothed = (finite.sum() + 1.0) / (finite.size + 2.0)
        return mean, float(np.sqrt(smoothed * (1 - smoothed) / finite.size))
    sd = float(finite.std(ddof=1)) if finite.size > 1 else np.nan
    return mean, sd / np.sqrt(finite.size)


def verdict(claim: str, value: float, se: float) -> str:
    """``PASS``/``FAIL`` of ``value`` against the claim's target, ``*`` when the target's
    bound is within 2 Monte-Carlo SEs (the seeds cannot tell), ``info`` without target."""
    target = TARGETS.get(claim)
    if target is None:
        return "info"
    word = "PASS" if target.met(value) else "FAIL"
    close = np.isfinite(se) and target.distance(value) < 2 * se
    return f"{word}*" if close else word


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """One line per design, claim, estimator and item over the seeds of ``frame``.

    Heterogeneity tests (``het_test``) become ``het_size`` on designs with a constant
    effect (``heterogeneity`` 0) and ``het_power`` otherwise; tests with a signed
    statistic also give ``het_mean_t`` on constant-effect designs. A test whose p-values
    the product withheld (not printed: no size or power claim) gives only
    ``het_withheld_mean_t`` (info) on constant-effect designs. ATE rows also give
    ``ate_bias_se`` (mean error over mean SE, its SE from the spread of the errors).

    Returns
    -------
    DataFrame
        Columns ``design, claim, estimator, item, target, measured, mc_se, seeds, verdict``.
    """
    lines: list[Row] = []
    keys = ["design", "claim", "estimator", "item"]
    for (design, claim, estimator, item), part in frame.groupby(keys, sort=False):
        null = bool((part["heterogeneity"] == 0).all())
        names = [claim]
        if claim == "het_test":
            withheld = bool(part["value"].isna().all())
            names = [] if withheld else ["het_size"] if null else ["het_power"]
            if null and part["t"].notna().any():
                names.append("het_withheld_mean_t" if withheld else "het_mean_t")
        if claim == "ate_coverage":
            names.append("ate_bias_se")
        for name in names:
            values = part["t"] if name.endswith("mean_t") else part["value"]
            seeds = int(part["seed"].nunique())
            try:
                measured, se = mean_and_se(values.to_numpy())
            except ValueError:
                measured, se = np.nan, np.nan
            if name == "ate_bias_se":
                error = (part["estimate"] - part["truth"]).to_numpy(float)
                scale = float(part["se"].mean())
                measured = float(error.mean() / scale)
                spread = float(error.std(ddof=1)) if len(error) > 1 else np.nan
                se = spread / np.sqrt(len(error)) / scale
            target = TARGETS.get(name)
            lines.append(
                {
                    "design": design,
                    "claim": name,
                    "estimator": estimator,
                    "item": item,
                    "target": target.text if target else "",
                    "measured": measured,
                    "mc_se": se,
                    "seeds": seeds,
                    "verdict": verdict(name, measured, se),
                }
            )
    return pd.DataFrame(lines)
