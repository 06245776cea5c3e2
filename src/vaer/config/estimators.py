"""Config of the estimation stage: nuisance learners, estimators by ``kind``, tuning.

Every estimator kind has its own params model with ``extra="forbid"``, so an unknown
param is rejected with the list of allowed ones (see :mod:`vaer.config.loader`).
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from vaer.config.section import Section

AUTO_JOBS_MIN_ROWS = 50_000


def _check_jobs(value: int | str) -> int | str:
    if isinstance(value, int) and value < 1:
        raise ValueError(f"`n_jobs` must be an int >= 1 or 'auto'; got {value}")
    return value


Jobs = Annotated[int | Literal["auto"], AfterValidator(_check_jobs)]
"""An ``n_jobs`` setting: a number of local processes, or ``auto``."""


def resolve_jobs(n_jobs: int | str, n_rows: int | None) -> int:
    """Processes for ``n_rows`` units: an int as given; ``auto``: one below
    ``AUTO_JOBS_MIN_ROWS`` units (or when the size is unknown), where starting processes
    costs more than it saves, and every core above."""
    if n_jobs != "auto":
        return int(n_jobs)
    if n_rows is None or n_rows < AUTO_JOBS_MIN_ROWS:
        return 1
    return max(1, os.cpu_count() or 1)


class NuisanceConfig(Section):
    """The first-stage learners shared by every estimator of a run.

    ``model`` picks the family used for every regression and classification nuisance
    (``ridge`` means ridge regression and L2-logistic regression); ``params`` override
    its defaults; ``n_jobs`` runs cross-fitting folds in that many local processes, and
    grows forests in that many threads
    (results do not depend on it); ``auto`` (default) uses one below
    ``AUTO_JOBS_MIN_ROWS`` units, where starting processes costs more than it saves, and
    every core above.

    ``early_stopping`` (LightGBM only) chooses each nuisance model's number of trees, up to
    ``n_estimators``, on a held-out fifth of its training rows (stopping after 20 rounds
    without improvement) and refits on all of them with that many trees. A fixed 300
    trees overfit small samples: on Nie and Wager's design A at n = 1000 the overfitted
    ``E[(T - e)^2 | X]`` made the doubly robust ATE scores unstable (SE 0.54 with 300
    trees, 0.09 with 40). ``auto`` (default) stops early when a model is fitted on at
    most ``early_stopping_max_rows`` rows, where it matters and costs little; ``true``
    always; ``false`` never. Other model families ignore ``auto``. With
    ``linear_candidate`` (default true), a ridge (logistic) regression on standardised
    features is scored on the same held-out fifth and replaces the LightGBM model where it
    predicts better.

    ``outcome_model`` (default ``iv_type``) builds the outcome regression as
    ``g + theta e`` from a regression of ``Y - theta T`` (a preliminary constant effect
    ``theta``), so that the outcome and treatment models do not copy the same city shocks
    with different weights; ``iv_type_linear`` makes the preliminary effect linear in the
    modifiers (less ATE bias when the effect varies with city-level VA, but a noisy linear
    fit can leak into the forest's CATEs), ``iv_type_auto`` refits with a linear effect
    only where one predicts held-out clusters' ``iv_type`` residuals better than the
    constant, and ``partialling_out`` regresses ``Y`` directly
    (:func:`vaer.estimators.nuisance.fit_nuisances`). With ``early_stopping: auto`` the
    instrument models of the IV kinds stop early at any size
    (:meth:`vaer.estimators.nuisance.NuisanceCache.iv`). ``crossfit_repeats`` (an int
    >= 1, or ``auto``: 4 below 100 clusters, else 1) averages the continuous and IV
    nuisances' out-of-fold predictions over that many random cluster splits
    (:meth:`vaer.estimators.nuisance.NuisanceCache.splits`); it multiplies their cost.
    """

    model: Literal["lightgbm", "random_forest", "hist_gradient_boosting", "ridge"] = "lightgbm"
    params: dict[str, Any] = {}
    n_jobs: Jobs = "auto"
    early_stopping: bool | Literal["auto"] = "auto"
    early_stopping_max_rows: int = Field(20_000, ge=100)
    linear_candidate: bool = True
    outcome_model: Literal["iv_type", "iv_type_linear", "iv_type_auto", "partialling_out"] = (
        "iv_type"
    )
    crossfit_repeats: int | Literal["auto"] = "auto"

    def jobs(self, n_rows: int) -> int:
        """Local processes for cross-fitting ``n_rows`` units (resolves ``auto``)."""
        return resolve_jobs(self.n_jobs, n_rows)

    @model_validator(mode="after")
    def _check_repeats(self) -> NuisanceConfig:
        value = self.crossfit_repeats
        if isinstance(value, int) and value < 1:
            raise ValueError(f"`crossfit_repeats` must be an int >= 1 or 'auto'; got {value}")
        return self

    @model_validator(mode="after")
    def _check_early_stopping(self) -> NuisanceConfig:
        if self.early_stopping is True and self.model != "lightgbm":
            raise ValueError(
                f"`early_stopping: true` needs `model: lightgbm`; got model {self.model!r} "
                "(set `early_stopping: auto` or `false`)"
            )
        return self


class _EstimatorParams(Section):
    cv: int = Field(5, ge=2, description="cross-fitting folds, grouped by cluster")


class _ForestParams(Section):
    """Shared parameters of vaer's cluster forests
    (:class:`~vaer.estimators.cluster_forest.ClusterForest`).

    Every forest subsamples, splits honestly and computes its variance by cluster
    (``roles.cluster``): trees come in groups of ``ci_group_size`` that share a half-sample
    of the clusters; each tree draws ``max_samples`` of all clusters from that half, is grown
    on half of its clusters and estimates its leaves on the other half. The per-firm
    intervals (``tables/cate.csv``) come from the bootstrap of little bags over those
    half-samples, and each firm's ``tau_hat`` from the groups that never saw its cluster.

    ``linear_base``: each group first fits the linear model of the effect in the modifiers
    (the linear R-learner, or its IV/regression analogue) on its half-sample; its trees
    grow on and estimate what that leaves, and add it back. A forest averages leaves, so an
    effect that is additive over many modifiers (firm types and channel proxies) is
    flattened towards the mean at the edges; on the synthetic table (8,000 firms, 120
    cities, tuning seeds 0-7) the base halved the CATE RMSE (0.19 to 0.08) and raised the
    coverage of the per-firm intervals from 0.64 to 0.91. Where the effect is constant or
    has few linear terms, the base's sampling error costs more than it gains (Nie-Wager
    designs A and C, Wager-Athey: RMSE 29-42% above econml's forest). ``auto`` (default)
    grows the forest both ways on the same draws and keeps the one with the smaller
    cluster-honest out-of-bag R-loss (no firm's own city enters the choice; the IV forest,
    whose moment has no loss, keeps the base; above ``2 * max_subsample_size`` firms the
    two are compared on their first quarter of tree groups and only the winner grows the
    rest); ``true``/``false`` force it. The base's
    sampling error is part of the interval, because each group fits its own.

    ``per_firm_intervals`` (default ``false``): whether ``tables/cate.csv`` and the logged
    model print each firm's interval. The bootstrap-of-little-bags variance is right for
    the spread of the forest's estimate, but the estimate is smoothed: where the effect
    bends (a step, a kink, a U-shape in a modifier) the forest flattens it, and that bias
    is not in the interval. On held-out designs the intervals covered the firm's true
    effect for 79% of firms (the forest's own mean for 96.5%; squared bias 2.7 times the
    variance), and on a tuning design with a kinked effect 70%
    (``benchmarks/per_firm_diagnosis``); no data-driven check can certify that the bias is
    small at a firm (Low 1997; Armstrong and Kolesar 2018). Group effects (GATEs), the
    best linear projection and the tests of heterogeneity stay valid and are printed.
    ``true`` prints the per-firm intervals, labelled as covering the forest's smoothed
    effect at the firm.

    Defaults: 400 trees in groups of 4, each on 45% of the clusters, at least 5 units per
    leaf, all features considered at each split. ``max_subsample_size`` caps the units
    each tree is grown on (drawn within its clusters): growing a tree costs about
    ``s log s`` in its subsample size ``s``, so without a cap a forest on 200k firms costs
    ten times one on 20k, while a tree on 20k units already resolves effects that vary
    over firm types and a handful of proxies. ``null`` removes the cap.
    """

    n_estimators: int = Field(400, ge=4)
    min_samples_leaf: int = Field(5, ge=1)
    max_depth: int | None = Field(None, ge=1)
    max_samples: float = Field(0.45, gt=0.0, le=0.5)
    max_features: float | Literal["auto", "sqrt", "log2"] | None = "auto"
    ci_group_size: int = Field(4, ge=2)
    max_subsample_size: int | None = Field(20_000, ge=100)
    linear_base: bool | Literal["auto"] = "auto"
    per_firm_intervals: bool = False

    @model_validator(mode="after")
    def _check_groups(self) -> _ForestParams:
        if self.n_estimators % self.ci_group_size:
            raise ValueError(
                f"`n_estimators` must be a multiple of `ci_group_size` ({self.ci_group_size}): "
                f"trees come in groups sharing a half-sample of clusters; got {self.n_estimators}"
            )
        return self


class _BinaryParams(Section):
    """How the continuous VA index is binarised for the binary-treatment estimators.

    ``median``: high = above the sample median; ``top_tercile``: high = in the top third,
    low = the rest. ``min_propensity`` clips the propensity score into
    ``[min_propensity, 1 - min_propensity]``.
    """

    binarise: Literal["median", "top_tercile"] = "median"
    min_propensity: float = Field(0.01, gt=0.0, lt=0.5)


class LinearDMLParams(_EstimatorParams):
    """Parameters of ``linear_dml`` (econml ``LinearDML``)."""

    fit_cate_intercept: bool = True


class SparseLinearDMLParams(_EstimatorParams):
    """Parameters of ``sparse_linear_dml`` (econml ``SparseLinearDML``, debiased lasso)."""

    fit_cate_intercept: bool = True
    alpha: float | Literal["auto"] = "auto"
    n_alphas: int = Field(20, ge=2)
    max_iter: int = Field(1000, ge=10)
    tol: float = Field(1e-4, gt=0.0)


class CausalForestDMLParams(_EstimatorParams, _ForestParams):
    """Parameters of ``causal_forest_dml``: a causal forest on the cross-fitted residuals
    (the final stage of econml's ``CausalForestDML``, grown by cluster; see
    :class:`_ForestParams`)."""

    criterion: Literal["mse", "het"] = "mse"


class DRLearnerParams(_EstimatorParams, _BinaryParams):
    """Parameters of ``dr_learner`` (econml ``LinearDRLearner`` on binarised VA)."""

    fit_cate_intercept: bool = True


class ForestDRLearnerParams(_EstimatorParams, _BinaryParams, _ForestParams):
    """Parameters of ``forest_dr_learner``: a regression forest on the doubly robust
    pseudo-outcomes of binarised VA (econml ``ForestDRLearner``'s final stage, grown by
    cluster)."""


class OrthoIVParams(_EstimatorParams):
    """Parameters of ``orthoiv`` (econml ``OrthoIV``: linear CATE, residualised instrument)."""

    fit_cate_intercept: bool = True


class DMLIVParams(_EstimatorParams):
    """Parameters of ``dmliv`` (econml ``DMLIV``: linear CATE, projected treatment)."""

    fit_cate_intercept: bool = True


class CausalIVForestParams(_EstimatorParams, _ForestParams):
    """Parameters of ``causal_iv_forest``: an instrumental forest on the cross-fitted
    residuals (grf's ``instrumental_forest``, grown by cluster)."""

    criterion: Literal["mse", "het"] = "mse"


ForestParams = CausalForestDMLParams | ForestDRLearnerParams | CausalIVForestParams
"""Params of the forest kinds (:class:`_ForestParams`)."""
BinaryParams = DRLearnerParams | ForestDRLearnerParams
"""Params of the binary-treatment kinds (:class:`_BinaryParams`)."""
AnyParams = (
    LinearDMLParams
    | SparseLinearDMLParams
    | CausalForestDMLParams
    | DRLearnerParams
    | ForestDRLearnerParams
    | OrthoIVParams
    | DMLIVParams
    | CausalIVForestParams
)
"""Params of any kind."""


class _Spec(Section):
    name: str | None = None


class LinearDMLSpec(_Spec):
    kind: Literal["linear_dml"]
    params: LinearDMLParams = LinearDMLParams()


class SparseLinearDMLSpec(_Spec):
    kind: Literal["sparse_linear_dml"]
    params: SparseLinearDMLParams = SparseLinearDMLParams()


class CausalForestDMLSpec(_Spec):
    kind: Literal["causal_forest_dml"]
    params: CausalForestDMLParams = CausalForestDMLParams()


class DRLearnerSpec(_Spec):
    kind: Literal["dr_learner"]
    params: DRLearnerParams = DRLearnerParams()


class ForestDRLearnerSpec(_Spec):
    kind: Literal["forest_dr_learner"]
    params: ForestDRLearnerParams = ForestDRLearnerParams()


class OrthoIVSpec(_Spec):
    kind: Literal["orthoiv"]
    params: OrthoIVParams = OrthoIVParams()


class DMLIVSpec(_Spec):
    kind: Literal["dmliv"]
    params: DMLIVParams = DMLIVParams()


class CausalIVForestSpec(_Spec):
    kind: Literal["causal_iv_forest"]
    params: CausalIVForestParams = CausalIVForestParams()


AnySpec = (
    LinearDMLSpec
    | SparseLinearDMLSpec
    | CausalForestDMLSpec
    | DRLearnerSpec
    | ForestDRLearnerSpec
    | OrthoIVSpec
    | DMLIVSpec
    | CausalIVForestSpec
)
EstimatorSpec = Annotated[AnySpec, Field(discriminator="kind")]

IV_KINDS = frozenset({"orthoiv", "dmliv", "causal_iv_forest"})
BINARY_KINDS = frozenset({"dr_learner", "forest_dr_learner"})


def estimator_label(spec: AnySpec) -> str:
    """The name an estimator goes by in tables and metrics (``name`` or ``kind``)."""
    return spec.name or spec.kind


def check_instrument_for(specs: list[AnySpec], instrument: str | None) -> None:
    """Raise if an instrumental-variable estimator is requested without an instrument.

    Raises
    ------
    ValueError
        Naming the estimators and the fix (set ``roles.instrument``).
    """
    needing = [estimator_label(s) for s in specs if s.kind in IV_KINDS]
    if needing and instrument is None:
        raise ValueError(
            f"estimators {needing} are instrumental-variable estimators and need an "
            "instrument: set `roles.instrument` to the instrument column (e.g. `pilot`), "
            "or remove them from `estimators`"
        )


class TuneConfig(Section):
    """Opt-in tuning of the nuisance learners and the causal forests on cluster-grouped
    splits (econml's own ``tune()`` splits without groups).

    Nuisances: each candidate in ``nuisance_grid`` (a list of param overrides) is scored by
    cluster-grouped cross-validated MSE of the outcome and treatment regressions; the
    best (lowest summed MSE relative to the variance of each target) replaces
    ``nuisance.params``. Forests: each candidate in ``forest_grid`` is scored by the
    R-loss (Nie and Wager, 2021) on held-out clusters; the best replaces the forest's
    params. ``nuisance_grid: null`` uses a small default grid for ``nuisance.model``.
    """

    enabled: bool = False
    cv: int = Field(3, ge=2)
    nuisance_grid: list[dict[str, Any]] | None = None
    forest_grid: list[dict[str, Any]] = [
        {},
        {"min_samples_leaf": 5},
        {"min_samples_leaf": 50},
        {"max_samples": 0.3},
    ]
