r"""A cluster-honest CATT model of the post-period DiD effect, its tests and SHAP channels.

From the per-firm DR-DiD scores of :mod:`vaer.did.pseudo` (score :math:`\Gamma_i`,
weight :math:`\omega_i`, :math:`E[\Gamma \mid X] = E[\omega \mid X]\,\mathrm{CATT}(X)`),
a generalized random forest solves the local moment

.. math:: E[\omega\,(\Gamma/\omega - \theta(x)) \mid X = x] = 0

(:class:`vaer.estimators.cluster_forest.ClusterForest` with ``q = omega``, ``r = 1``:
each tree's leaf estimate is :math:`\sum\Gamma / \sum\omega`, the DR-DiD ATT of the
leaf's firms) on the pre-period covariates only.

**Cluster-honest everywhere.** The cities are dealt into three folds, every cohort spread
over them (:func:`cohort_city_folds`; three folds as in the cross-sectional attribution,
:data:`vaer.attribution.refits.N_FOLDS`):

- the per-firm CATT ``tau_hat`` of a firm in fold ``k`` comes from the forest fitted on
  the two other folds (cross-fitting): no firm's estimate comes from a model that saw any
  firm of its city, and the firms of one fold share one model, so the calibration test
  and RATE (:mod:`vaer.heterogeneity.calibration`, :mod:`vaer.heterogeneity.rate`) centre
  and rank within folds (:mod:`vaer.heterogeneity.folds`) with :math:`\Gamma/\omega` as the
  doubly robust score and CR2 / cluster-bootstrap inference by city;
- SHAP values and channel shares use the forest refitted on each fold alone, every firm
  explained by the two fold models that never saw its city, summed into channels and
  debiased exactly as for the cross-sectional effect (:mod:`vaer.attribution.honest`,
  :mod:`vaer.attribution.channels`), with :math:`\Gamma/\omega` as the score.

**The nuisances are cross-fitted over the same folds.** With the scores of the whole
sample (:func:`vaer.did.pseudo.post_period_scores`), the logit and least-squares
nuisances are fitted on every fold: their residuals are orthogonal to the covariates over
all firms, so what a fold's residuals lean one way the other folds' lean the other, and a
model trained on the other folds predicts each fold's scores *against* them (under a
constant CATT the calibration and AUTOC t-statistics averaged -0.7 and -0.6 over 200
seeds). So fold ``k``'s model is trained on the scores of the two other folds computed
with nuisances fitted on those folds (:meth:`~vaer.did.pseudo.PseudoOutcomes.refit`),
and fold ``k``'s firms are scored for the tests with the same nuisances (out of sample):
nothing the model or the scores' nuisances saw comes from fold ``k``. A fold model for
SHAP is trained on its fold's scores with its fold's own nuisances (or, if a cohort
has too few firms in the fold for its logit, on the fold's out-of-fold scores, whose
nuisances saw the other folds; :attr:`CattModel.own_nuisances` says which).

References
----------
Athey, S., Tibshirani, J. and Wager, S. (2019). Generalized random forests. *Ann.
Statist.* 47(2), 1148-1178. Sant'Anna, P. H. C. and Zhao, J. (2020), *J. Econometrics*
219(1). Abadie, A. (2005), *Rev. Econ. Stud.* 72(1). Kennedy, E. H. (2023), "Towards
optimal doubly robust estimation of heterogeneous causal effects", *Electron. J.
Statist.* 17(2) (the DR-learner: a regression of doubly robust pseudo-outcomes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from vaer.attribution.channels import ChannelShares, channel_shares
from vaer.attribution.explain import ShapExplanation
from vaer.attribution.honest import explain_across_folds
from vaer.attribution.refits import N_FOLDS
from vaer.attribution.truth_check import shap_correlations
from vaer.data.truth import Truth
from vaer.did.folds import deal_city_folds
from vaer.did.pseudo import PseudoOutcomes
from vaer.estimators.cluster_forest import ClusterForest, Moments
from vaer.heterogeneity.calibration import CalibrationResult, test_calibration
from vaer.heterogeneity.rate import RateResult, rank_average_treatment_effect

LABEL = "catt_forest"
"""The estimator label of the CATT model in tables and metrics."""


@dataclass(frozen=True)
class CattModel:
    r"""A fitted CATT forest with its cross-fitted per-firm effects.

    Attributes
    ----------
    pseudo : PseudoOutcomes
        The scores it was fitted on.
    tau_hat : numpy.ndarray
        ``(n,)`` cross-fitted CATT per firm (model of the two other folds).
    folds : numpy.ndarray
        ``(n,)`` fold code ``0..2`` of every firm (whole cities).
    crossfit_models : tuple of ClusterForest
        Model ``k`` fitted on the firms outside fold ``k`` (predicts fold ``k``).
    fold_models : tuple of ClusterForest
        Model ``k`` fitted on fold ``k`` alone (the SHAP explanations' models).
    scores : numpy.ndarray
        ``(n,)`` out-of-fold CATT scores :math:`\Gamma/\omega`: a firm of fold ``k``
        scored with the nuisances fitted on the two other folds (the fold's model's
        training data), the doubly robust scores of the tests and channel shares.
    own_nuisances : tuple of bool
        Per fold model: trained on scores with the fold's own nuisances (True), or, when
        those could not be fitted on the fold alone (a cohort with few firms there:
        separation), on the fold's out-of-fold scores (False).
    """

    pseudo: PseudoOutcomes
    tau_hat: np.ndarray
    folds: np.ndarray
    crossfit_models: tuple[ClusterForest, ...]
    fold_models: tuple[ClusterForest, ...]
    scores: np.ndarray
    own_nuisances: tuple[bool, ...] = ()

    @property
    def features(self) -> list[str]:
        """The covariates the CATT is a function of."""
        return [str(c) for c in self.pseudo.covariates.columns]

    def to_frame(self) -> pd.DataFrame:
        """One row per firm (``tables/did_catt.csv``): unit, cohort, cluster, fold, tau_hat,
        score (:math:`\\Gamma/\\omega`), weight (:math:`\\omega`)."""
        frame = self.pseudo.to_frame()[["unit", "cohort", "cluster"]]
        frame["fold"] = self.folds
        frame["tau_hat"] = self.tau_hat
        frame["score"] = self.pseudo.catt_score
        frame["weight"] = self.pseudo.weight
        frame["oof_score"] = self.scores
        return frame


def _forest(
    x: np.ndarray, pseudo: PseudoOutcomes, rows: np.ndarray, params: Mapping[str, Any], seed: int
) -> ClusterForest:
    """The weighted CATT forest on ``rows`` of ``pseudo``'s scores."""
    weight = pseudo.weight[rows]
    moments = Moments(pseudo.catt_score[rows], weight[:, None], np.ones((len(rows), 1)))
    forest = ClusterForest(**{**params, "random_state": seed})
    return forest.fit(x[rows], moments, pseudo.cluster[rows])


def cohort_city_folds(
    cluster: np.ndarray, cohort: np.ndarray, random_state: int, n_folds: int = N_FOLDS
) -> np.ndarray:
    """Fold code ``0..n_folds-1`` of every firm: whole cities, every cohort spread over the
    folds.

    Cities are grouped by their cohort (the largest cohort of their firms; 0 = never
    treated) and, within each group, dealt in rounds of ``n_folds``, largest city first, to
    the folds with the fewest cities (then the fewest firms), each fold once per round. So
    a cohort of two or more cities has cities outside every fold (each fold's firms can be
    scored with nuisances fitted on the others), one of three or more has cities in every
    fold, and the folds' city counts differ by at most one.

    Raises
    ------
    ValueError
        With fewer than ``4 * n_folds`` cities (a fold's forest needs 4).
    """
    cities = np.unique(np.asarray(cluster))
    if len(cities) < 4 * n_folds:
        raise ValueError(
            f"the CATT forest needs at least {4 * n_folds} clusters ({n_folds} folds of at "
            f"least 4 cities); the panel has {len(cities)}"
        )
    return deal_city_folds(cluster, cohort, random_state, n_folds)


def fit_catt(
    pseudo: PseudoOutcomes,
    *,
    n_estimators: int = 200,
    min_samples_leaf: int = 5,
    max_samples: float = 0.45,
    ci_group_size: int = 4,
    random_state: int = 0,
    n_jobs: int = 1,
) -> CattModel:
    """Fit the CATT forests: three cross-fitting models and three single-fold models.

    Parameters
    ----------
    pseudo : PseudoOutcomes
        From :func:`vaer.did.pseudo.post_period_scores`.
    n_estimators, min_samples_leaf, max_samples, ci_group_size : int or float
        Of every :class:`~vaer.estimators.cluster_forest.ClusterForest` (grf's leaf size
        5 by default; no linear base: the weighted moment has no R-loss to choose one).
    random_state : int
        Seeds the folds (:func:`cohort_city_folds`) and the forests
        (model ``k``: ``random_state + k``; fold model ``k``: ``random_state + 10 + k``).
    n_jobs : int
        Threads growing trees; results do not depend on it.

    Returns
    -------
    CattModel

    Raises
    ------
    ValueError
        With fewer than 12 cities (three folds of at least 4, the forest's minimum), or
        on bad forest parameters.
    """
    params = {
        "n_estimators": n_estimators, "min_samples_leaf": min_samples_leaf,
        "max_samples": max_samples, "ci_group_size": ci_group_size, "n_jobs": n_jobs,
    }  # fmt: skip
    x = pseudo.covariates.to_numpy(dtype=np.float64)
    folds = cohort_city_folds(pseudo.cluster, pseudo.cohort, random_state)
    tau_hat = np.empty(len(x))
    crossfit, single = [], []
    own: list[bool] = []
    scores = np.empty(len(x))
    for k in range(N_FOLDS):
        inside = np.flatnonzero(folds == k)
        outside = np.flatnonzero(folds != k)
        # nuisances of the two other folds: the model's training scores in sample, the
        # fold's scores out of sample
        crossed = pseudo.refit(folds != k)
        scores[inside] = crossed.catt_score[inside]
        if not np.isfinite(scores[inside]).all():
            raise ValueError(
                f"the CATT forest's fold {k} holds every city of a cohort (a cohort of one "
                "city): its firms have no out-of-fold score; merge that cohort with an "
                "adjacent one"
            )
        model = _forest(x, crossed, outside, params, random_state + k)
        tau_hat[inside] = model.predict(x[inside])
        crossfit.append(model)
        try:  # the fold's own nuisances: never saw another fold
            alone = pseudo.refit(folds == k)
            own.append(True)
        except ValueError:  # a cohort with few firms in the fold: its out-of-fold scores
            alone = crossed
            own.append(False)
        single.append(_forest(x, alone, inside, params, random_state + 10 + k))
    return CattModel(pseudo, tau_hat, folds, tuple(crossfit), tuple(single), scores, tuple(own))


@dataclass(frozen=True)
class CattTests:
    """Calibration test and RATE of the cross-fitted CATT.

    Attributes
    ----------
    calibration : CalibrationResult
    rate : RateResult
    """

    calibration: CalibrationResult
    rate: RateResult

    def to_frame(self) -> pd.DataFrame:
        """``tables/did_catt_tests.csv``: one row per test (test, term, estimate, se,
        ci_low, ci_high, df, p_value, inference)."""
        calibration = self.calibration.to_frame().assign(test="calibration")
        rate = self.rate.to_frame().rename(columns={"target": "term"}).assign(test="rate")
        columns = ["test", "term", "estimate", "se", "ci_low", "ci_high", "df", "p_value",
                   "inference"]  # fmt: skip
        return pd.concat([calibration[columns], rate[columns]], ignore_index=True)

    def metrics(self) -> dict[str, float]:
        """``did_catt.calibration.*`` and ``did_catt.rate.*`` metrics."""
        out = {f"did_{k}": v for k, v in self.calibration.metrics().items()}
        out.update({f"did_{k}": v for k, v in self.rate.metrics().items()})
        return out


def catt_tests(
    model: CattModel, *, n_bootstrap: int = 200, ci_level: float = 0.95, random_state: int = 0
) -> CattTests:
    """The calibration test and RATE (AUTOC, Qini) of the cross-fitted CATT, with
    :math:`\\Gamma/\\omega` as the doubly robust score, within folds, clustered by city.

    Raises
    ------
    ValueError
        As :func:`~vaer.heterogeneity.calibration.test_calibration` (e.g. a constant
        ``tau_hat``) and :func:`~vaer.heterogeneity.rate.rank_average_treatment_effect`.
    """
    scores = model.scores
    clusters = model.pseudo.cluster
    calibration = test_calibration(
        LABEL, model.tau_hat, scores, clusters, folds=model.folds, ci_level=ci_level
    )
    rate = rank_average_treatment_effect(
        LABEL, model.tau_hat, scores, clusters, folds=model.folds, n_bootstrap=n_bootstrap,
        ci_level=ci_level, random_state=random_state,
    )  # fmt: skip
    return CattTests(calibration, rate)


@dataclass(frozen=True)
class CattChannels:
    """Cluster-honest SHAP values of the CATT and its channel shares.

    Attributes
    ----------
    explanation : ShapExplanation
    shares : ChannelShares
    """

    explanation: ShapExplanation
    shares: ChannelShares

    def to_frame(self) -> pd.DataFrame:
        """``tables/did_channels.csv``: the channel-share table with ``estimator`` first."""
        table = self.shares.table.copy()
        table.insert(0, "estimator", LABEL)
        return table

    def metrics(self) -> dict[str, float]:
        """``did_catt.share.<channel>`` with its interval, and the surrogate's fidelity."""
        out = {"did_catt.shap.fidelity_r2": self.explanation.fidelity_r2}
        for row in self.shares.table.to_dict("records"):
            prefix = f"did_catt.share.{row['channel']}"
            out[prefix] = float(row["share"])
            out[f"{prefix}.ci_low"] = float(row["ci_low"])
            out[f"{prefix}.ci_high"] = float(row["ci_high"])
        return out


def catt_channels(
    model: CattModel,
    mechanisms: Mapping[str, Sequence[str]],
    *,
    n_units: int = 2000,
    n_background: int = 200,
    surrogate_options: Mapping[str, Any] | None = None,
    ci_level: float = 0.95,
    random_state: int = 0,
) -> CattChannels:
    """SHAP values of the CATT summed into the mechanism channels, as for the
    cross-sectional effect (TreeSHAP of a surrogate of each fold model, every firm by the
    two fold models that never saw its city; Fieller share intervals).

    Parameters
    ----------
    model : CattModel
    mechanisms : mapping
        Channel -> proxy columns (each a covariate of the model).
    n_units, n_background : int
        Firms explained and background firms (drawn at random; all if fewer).
    surrogate_options : mapping, optional
        ``holdout``, ``max_units``, ``params`` of
        :func:`vaer.attribution.surrogate.fit_surrogate`.
    ci_level : float
    random_state : int

    Raises
    ------
    ValueError
        If a proxy is not a covariate of the model, or as
        :func:`vaer.attribution.channels.channel_shares`.
    """
    from vaer.attribution.stage import sample_rows

    features = model.features
    unknown = sorted({p for proxies in mechanisms.values() for p in proxies} - set(features))
    if unknown:
        raise ValueError(
            f"mechanism proxies {unknown} are not CATT covariates ({', '.join(features)}); "
            "add them to did.covariates"
        )
    n = len(model.tau_hat)
    rows = sample_rows(n, n_units, random_state)
    background = sample_rows(n, n_background, random_state + 1)
    x = model.pseudo.covariates.reset_index(drop=True).astype(np.float64)
    explanation = explain_across_folds(
        LABEL, LABEL, list(model.fold_models), model.folds, x, rows, background,
        np.asarray(model.pseudo.unit_ids), {c: [c] for c in features},
        method="tree_surrogate", surrogate_options=surrogate_options, random_state=random_state,
        refit_sizes=[int(np.sum(model.folds == k)) for k in range(N_FOLDS)],
    )  # fmt: skip
    shares = channel_shares(
        explanation, mechanisms, model.scores[rows], model.pseudo.cluster[rows],
        ci_level=ci_level,
    )  # fmt: skip
    return CattChannels(explanation, shares)


def catt_truth_metrics(
    model: CattModel, truth: Truth, channels: CattChannels | None = None
) -> dict[str, float]:
    """Accuracy of the CATT model against a known truth.

    Returns
    -------
    dict
        ``truth.did_catt.corr`` (Pearson correlation of ``tau_hat`` with the true CATT),
        ``truth.did_catt.rmse_sd`` (RMSE over the true CATT's standard deviation), and
        with ``channels``: ``truth.did_catt.shap_corr.<feature>`` for covariates with a
        non-constant true SHAP value, ``truth.did_catt.true_share.<channel>``,
        ``truth.did_catt.share_error.<channel>``, ``truth.did_catt.rank_agreement``
        (Spearman correlation of estimated and true channel shares) and
        ``truth.did_catt.top_channel_match`` (1 if the largest share is the true one's).

    Raises
    ------
    KeyError
        If a firm of the model is not in the truth.
    """
    units = np.asarray(model.pseudo.unit_ids)
    true = truth.tau_for(units)
    error = model.tau_hat - true
    out = {
        "truth.did_catt.corr": shap_correlations(model.tau_hat, true),
        "truth.did_catt.rmse_sd": float(np.sqrt(np.mean(error**2)) / np.std(true)),
    }
    if channels is None:
        return out
    explained = channels.explanation
    true_shap = truth.shap_for(explained.units)
    for feature in explained.values.columns:
        if feature in true_shap and true_shap[feature].std() > 0:
            out[f"truth.did_catt.shap_corr.{feature}"] = shap_correlations(
                explained.values[feature].to_numpy(), true_shap[feature].to_numpy()
            )
    true_shares = truth.channel_shares(explained.units)
    table = channels.shares.table.set_index("channel")
    common = [c for c in table.index if c in true_shares.index]
    for channel in common:
        out[f"truth.did_catt.true_share.{channel}"] = float(true_shares[channel])
        out[f"truth.did_catt.share_error.{channel}"] = float(
            table.loc[channel, "share"] - true_shares[channel]
        )
    estimated = table.loc[common, "share"].rank().to_numpy()
    ranked = true_shares[common].rank().to_numpy()
    out["truth.did_catt.rank_agreement"] = shap_correlations(estimated, ranked)
    out["truth.did_catt.top_channel_match"] = float(
        table.loc[common, "share"].idxmax() == true_shares[common].idxmax()
    )
    return out
