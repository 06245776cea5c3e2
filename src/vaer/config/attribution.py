"""The ``attribution:`` section: SHAP of the effect function, channels, mechanism tests.

See :mod:`vaer.attribution` for what each key controls.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from vaer.config.section import Section


class SurrogateConfig(Section):
    """The distilled model explained by exact TreeSHAP (``method: tree_surrogate``).

    A LightGBM regressor is fitted to the estimator's effect function evaluated at the
    study's units; ``holdout`` of them are kept out of the fit to measure its fidelity
    (R² to tau_hat). ``params`` override the LightGBM defaults.
    """

    params: dict[str, Any] = {}
    holdout: float = Field(0.2, gt=0.0, lt=0.5)
    max_units: int = Field(20_000, ge=100)


class MechanismTestConfig(Section):
    """DML effects of VA on each mediator of ``roles.mediators``."""

    enabled: bool = True
    cv: int = Field(5, ge=2, description="cross-fitting folds, grouped by cluster")
    score: Literal["iv_type", "partialling_out"] = "iv_type"
    by_firm_type: bool = False
    max_units: int | None = Field(
        50_000, ge=1_000, description="whole clusters drawn at random up to this many units"
    )
    n_rep: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        "auto",
        description="cross-fitting splits (median estimate, SE with their spread); auto: 3 "
        "on at most 20,000 units, else 1",
    )


class AttributionConfig(Section):
    """Cluster-honest SHAP attribution of tau_hat(x) and mechanism tests (DESIGN.md 7).

    Each estimator's final stage is refitted on three folds of the clusters, on at most
    ``refit_units`` firms in all (whole clusters; forests with at most ``refit_trees``
    trees), and each of ``n_units`` explained firms (``permutation_units`` on the slow
    permutation route) is explained by the two fold models that never saw its city,
    against ``n_background`` background firms (linear and permutation routes). ``method``
    is ``auto`` (exact linear SHAP for linear final stages, a TreeSHAP-explained surrogate
    for forests, the permutation explainer otherwise), or one of them for all estimators.
    Channel shares get ``ci_level`` Fieller intervals that include the effect model's
    estimation error (:mod:`vaer.attribution.importance`). For a linear final stage they
    are intervals for the shares of the best linear projection of the effect on the
    modifiers; for forests and other non-linear final stages they are printed only with
    ``smoothed_share_intervals`` (:mod:`vaer.attribution.share_intervals` says why).
    """

    enabled: bool = True
    method: Literal["auto", "linear", "tree_surrogate", "permutation"] = "auto"
    n_units: int = Field(3000, ge=20)
    permutation_units: int = Field(300, ge=10)
    n_background: int = Field(100, ge=10)
    refit_units: int | None = Field(
        30_000, ge=300, description="firms (whole clusters) the three fold refits use at most"
    )
    refit_trees: int = Field(100, ge=8, description="trees of each forest fold refit at most")
    ci_level: float = Field(0.95, gt=0.5, lt=1.0)
    smoothed_share_intervals: bool = Field(
        False,
        description="print share intervals of non-linear effect models (cover the shares of "
        "their smoothed effect, not the true shares)",
    )
    top_features: int = Field(8, ge=1)
    surrogate: SurrogateConfig = SurrogateConfig()
    mechanisms: MechanismTestConfig = MechanismTestConfig()
