r"""Per-firm doubly robust DiD pseudo-outcomes of the post-period average effect.

For a staggered panel with never-treated comparison firms (``G = 0``), cohorts ``g``
(first treated period) and anticipation ``delta``, firm ``i``'s *post-period average
effect* is the mean of its effects over the panel's periods ``t >= g``. Its long
difference against the last period before ``g - delta`` (the base ``b_g`` of
:mod:`vaer.did.att_gt`'s post cells) is

.. math:: \Delta\bar Y_{ig} = \frac{1}{T_g}\sum_{t \ge g} Y_{it} - Y_{i b_g},

and per cohort the doubly robust DiD of Sant'Anna and Zhao (2020) on the firms of cohort
``g`` and the never treated, with the logit propensity :math:`p_g(X) = P(G = g \mid X,
G \in \{g, 0\})`, the comparison firms' outcome regression :math:`m_g(X) = E[\Delta\bar
Y_g \mid X, G = 0]` (both linear in the pre-period covariates, as R ``drdid_panel``),
residuals :math:`r_{ig} = \Delta\bar Y_{ig} - \hat m_g(X_i)` and comparison weights
:math:`w_{ig} = \hat p_g (1 - D_{ig}) / (1 - \hat p_g)` (0 if trimmed), is
:math:`\hat\theta(g) = \bar r_{g,\text{treated}} - \sum_i w_{ig} r_{ig} / W_g`,
:math:`W_g = \sum_i w_{ig}`. Because the DR-DiD estimate is linear in the outcome change
on a fixed sample, :math:`\hat\theta(g)` is exactly the mean over ``t >= g`` of
``att_gt(method="dr")``'s ATT(g, t) on a balanced panel.

**The pseudo-outcome.** With ``n`` firms, ``n_T`` of them treated and ``n_g`` in cohort
``g``, firm ``i``'s DR-DiD score is

.. math:: \Gamma_i = \frac{n}{n_T}\Big[D_i\, r_{i G_i}
          - \sum_g n_g \frac{w_{ig} r_{ig}}{W_g}\Big],
          \qquad D_i = 1\{G_i > 0\}:

a treated firm contributes its own residual change, a never-treated firm minus its
reweighted residual change in every cohort's comparison. Its mean over all firms is
:math:`\sum_g (n_g / n_T)\hat\theta(g)`, the Callaway–Sant'Anna ``group`` aggregation's
overall ATT (cohorts weighted by size: the average over treated firms of their
post-period average effects), exactly.

**Why a weight.** :math:`E[\Gamma \mid X] = (n/n_T) P(G > 0 \mid X)\,\mathrm{CATT}(X)`
with :math:`\mathrm{CATT}(x) = E[\text{post-period average effect} \mid X = x, G > 0]`
(if either nuisance is right): the score carries the firm's chance of being treated.
So each firm also gets the weight :math:`\omega_i = (n / n_T)\hat P(G > 0 \mid X_i)`,
:math:`\hat P(G > 0 \mid x) = \sum_g o_g(x) / (1 + \sum_g o_g(x))` from the cohorts'
odds :math:`o_g = \hat p_g / (1 - \hat p_g)` (never-treated comparisons:
:math:`o_g = P(G = g \mid x) / P(G = 0 \mid x)`), and

.. math:: \mathrm{CATT}(x) = E[\Gamma \mid X = x] / E[\omega \mid X = x]
          = E[\Gamma / \omega \mid X = x].

:math:`\Gamma_i / \omega_i` is Abadie's (2005) :math:`\rho_0`-weighted change made doubly
robust (:math:`(D - p)/(p(1 - p))\,(\Delta Y - m)` with one cohort), the per-firm score
of the CATT whose conditional mean is the CATT: the calibration test and RATE use it as
their doubly robust score, and a forest solving
:math:`E[\omega(\Gamma/\omega - \theta(x)) \mid x] = 0` estimates each leaf's CATT as
:math:`\sum \Gamma / \sum \omega`, a DR-DiD ATT of the leaf's firms
(:mod:`vaer.did.catt`).

Requirements: a balanced panel (every firm observed in every period: a firm's
post-period average and its comparison terms use all of them) and never-treated
comparison firms.

References
----------
Sant'Anna, P. H. C. and Zhao, J. (2020), "Doubly robust difference-in-differences
estimators", Journal of Econometrics 219(1), 101-122.
Callaway, B. and Sant'Anna, P. H. C. (2021), "Difference-in-differences with multiple
time periods", Journal of Econometrics 225(2), 200-230.
Abadie, A. (2005), "Semiparametric difference-in-differences estimators", Review of
Economic Studies 72(1), 1-19.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import expit

from vaer.did.att_gt import CellOptions, checked_panel
from vaer.did.drdid import _PS_CLIP, EstimationError, fit_logit
from vaer.did.panel import Panel, PanelColumns


@dataclass(frozen=True)
class PseudoOutcomes:
    """One DR-DiD score per firm for its post-period average effect.

    Attributes
    ----------
    unit_ids : pandas.Index
        The ``n`` firms, sorted (rows of every array).
    score : numpy.ndarray
        ``(n,)`` :math:`\\Gamma_i`; its mean is the ``group`` aggregation's ATT.
    weight : numpy.ndarray
        ``(n,)`` :math:`\\omega_i = (n / n_T) \\hat P(G > 0 \\mid X_i)` (> 0).
    cohort, cluster : numpy.ndarray
        ``(n,)`` cohort (0 = never treated) and cluster code.
    cluster_ids : pandas.Index
        Cluster labels behind the codes.
    covariates : pandas.DataFrame
        ``(n, k)`` pre-period covariates (each firm's first period), indexed by firm.
    cohort_att : dict
        Cohort -> :math:`\\hat\\theta(g)`.
    n_trimmed : int
        Comparison firm-cohort pairs given zero weight by propensity trimming.
    panel : Panel
        The validated panel (for :meth:`refit`).
    anticipation : int
    trim_level : float
    """

    unit_ids: pd.Index
    score: np.ndarray
    weight: np.ndarray
    cohort: np.ndarray
    cluster: np.ndarray
    cluster_ids: pd.Index
    covariates: pd.DataFrame
    cohort_att: dict[int, float]
    n_trimmed: int
    panel: Panel = field(repr=False, compare=False)
    anticipation: int = 0
    trim_level: float = 0.995

    def refit(self, rows: np.ndarray) -> PseudoOutcomes:
        """Every firm's scores with the nuisances and normalisers fitted on ``rows`` only.

        Cross-fitting: scores of firms outside ``rows`` are then out of sample (the CATT
        model's tests score a fold of cities with nuisances that never saw it).

        Parameters
        ----------
        rows : numpy.ndarray
            ``(n,)`` boolean mask of the firms the nuisances are fitted on.

        Returns
        -------
        PseudoOutcomes
            ``score`` and ``weight`` NaN for the firms of a cohort with no firm in ``rows``.

        Raises
        ------
        ValueError
            If ``rows`` has no never-treated or no treated firm, or a nuisance fit fails.
        """
        return _scores(self.panel, self.anticipation, self.trim_level, np.asarray(rows, bool))

    @property
    def catt_score(self) -> np.ndarray:
        """:math:`\\Gamma_i / \\omega_i`, whose conditional mean given ``X`` is the CATT."""
        return self.score / self.weight

    @property
    def att(self) -> float:
        """Mean of the scores: the ``group`` aggregation's overall ATT."""
        return float(self.score.mean())

    def to_frame(self) -> pd.DataFrame:
        """One row per firm: unit, cohort, cluster, score, weight, catt_score."""
        return pd.DataFrame(
            {
                "unit": self.unit_ids,
                "cohort": self.cohort,
                "cluster": self.cluster_ids[self.cluster],
                "score": self.score,
                "weight": self.weight,
                "catt_score": self.catt_score,
            }
        )


def post_period_scores(
    data: pd.DataFrame | None,
    columns: PanelColumns,
    *,
    covariates: Sequence[str] | pd.DataFrame,
    anticipation: int = 0,
    trim_level: float = 0.995,
) -> PseudoOutcomes:
    """Per-firm DR-DiD pseudo-outcomes of the post-period average effect (module docstring).

    Parameters
    ----------
    data, columns
        As :func:`vaer.did.att_gt.att_gt`.
    anticipation, trim_level
        As :class:`vaer.did.att_gt.CellOptions` (comparison group: the never treated).
    covariates : list of str or pandas.DataFrame
        Pre-period covariates (at least one): the nuisances' regressors and, in
        :mod:`vaer.did.catt`, the CATT's features.

    Returns
    -------
    PseudoOutcomes

    Raises
    ------
    ValueError
        On the panels :func:`~vaer.did.att_gt.att_gt` refuses, no covariates, an
        unbalanced panel, a cohort without a period before it or without a post period in
        the panel, or a singular or separated nuisance fit (the message names the cohort).
    """
    options = CellOptions(anticipation=anticipation, trim_level=trim_level)  # never treated
    if covariates is None or len(covariates.columns if isinstance(covariates, pd.DataFrame)
                                 else covariates) == 0:  # fmt: skip
        raise ValueError(
            "the CATT pseudo-outcomes need pre-period covariates (did.covariates): the CATT "
            "is a function of them"
        )
    panel = checked_panel(data, columns, covariates, options)
    missing = ~panel.observed
    if missing.any():
        n_bad = int(missing.any(axis=1).sum())
        raise ValueError(
            f"the per-firm DR-DiD pseudo-outcomes need a balanced panel: {n_bad} of "
            f"{panel.n_units} firms miss some of the {len(panel.periods)} periods; keep the "
            "firms observed in every period"
        )
    return _scores(panel, anticipation, trim_level, np.ones(panel.n_units, dtype=bool))


def _scores(panel: Panel, anticipation: int, trim_level: float, fit: np.ndarray) -> PseudoOutcomes:
    """The scores of every firm with nuisances and normalisers fitted on the ``fit`` firms
    (all of them: :func:`post_period_scores`; a subset: :meth:`PseudoOutcomes.refit`)."""
    n = panel.n_units
    x = panel.covariates
    y = panel.outcome
    treated_any = panel.cohort > 0
    n_treated = int((treated_any & fit).sum())
    never = panel.cohort == 0
    if n_treated == 0 or not (never & fit).any():
        raise ValueError(
            "the CATT pseudo-outcomes need treated and never-treated firms among the firms "
            "the nuisances are fitted on"
        )
    score = np.zeros(n)
    odds_sum = np.zeros(n)
    unscored = np.zeros(n, dtype=bool)
    cohort_att: dict[int, float] = {}
    n_trimmed = 0
    for g in np.unique(panel.cohort[treated_any]):
        pre = np.flatnonzero(panel.periods + anticipation < g)
        post = np.flatnonzero(panel.periods >= g)
        if len(pre) == 0 or len(post) == 0:
            raise ValueError(
                f"cohort {int(g)} has no {'pre' if len(pre) == 0 else 'post'}-period in the "
                f"panel ({int(panel.periods[0])}-{int(panel.periods[-1])}, anticipation "
                f"{anticipation}); drop its firms"
            )
        in_g = panel.cohort == g
        if not (in_g & fit).any():  # no firm of the cohort to fit on: its firms unscored
            unscored |= in_g
            continue
        delta = y[:, post].mean(axis=1) - y[:, pre[-1]]
        sample = (in_g | never) & fit
        d = in_g[sample]
        xs = x[sample]
        try:
            beta_ps = fit_logit(xs, d.astype(np.float64))
            xc = xs[~d]
            if np.linalg.matrix_rank(xc.T @ xc) < xc.shape[1]:
                raise EstimationError(
                    "singular covariate design among the comparison units (a covariate is "
                    "constant or collinear there)"
                )
            beta = np.linalg.solve(xc.T @ xc, xc.T @ delta[sample][~d])
        except EstimationError as error:
            raise ValueError(f"CATT pseudo-outcomes, cohort {int(g)}: {error}") from None
        p_all = np.clip(expit(x @ beta_ps), _PS_CLIP, 1.0 - _PS_CLIP)
        odds = p_all / (1.0 - p_all)
        odds_sum += odds
        resid = delta - x @ beta
        keep = never & (p_all < trim_level)
        n_trimmed += int(np.sum(never & fit & ~keep))
        w_c = np.where(keep, odds, 0.0)
        total_w = w_c[fit].sum()
        if total_w <= 0:
            raise ValueError(
                f"CATT pseudo-outcomes, cohort {int(g)}: every comparison firm has a "
                f"propensity score >= {trim_level} (no overlap)"
            )
        n_g = int((in_g & fit).sum())
        cohort_att[int(g)] = float(resid[in_g & fit].mean() - w_c[fit] @ resid[fit] / total_w)
        score[in_g] += resid[in_g]
        score -= n_g * w_c * resid / total_w
    scale = int(fit.sum()) / n_treated
    names = list(panel.covariate_names)
    return PseudoOutcomes(
        unit_ids=panel.unit_ids,
        score=np.where(unscored, np.nan, scale * score),
        weight=np.where(unscored, np.nan, scale * odds_sum / (1.0 + odds_sum)),
        cohort=panel.cohort,
        cluster=panel.cluster,
        cluster_ids=panel.cluster_ids,
        covariates=pd.DataFrame(x[:, 1:], index=panel.unit_ids, columns=names),
        cohort_att=cohort_att,
        n_trimmed=n_trimmed,
        panel=panel,
        anticipation=int(anticipation),
        trim_level=float(trim_level),
    )
