"""The ``robustness:`` section: which refuters run, their settings, and the omitted-variable
sensitivity analysis (DESIGN.md section 7).

Every refuter re-estimates the effect with one cheap estimator (``estimator``: the label of
one of the run's estimators, by default the run's first ``linear_dml``), on shared
cross-fitted nuisances refitted for the modified data. The refits run in parallel on the
run's ``compute:`` backend.

Every refuter is a test at level ``alpha``: when the model is right (and the SEs it uses
are valid) it raises a false alarm in at most ``alpha`` of runs, its rows sharing that
budget by Bonferroni (:mod:`vaer.robustness.rules`). A flagged check is evidence against
the model at that level, not proof: one check in twenty is flagged by chance at 5%. The
report's verdict takes the checks together (Holm across checks, family-wise rate ``alpha``;
:mod:`vaer.robustness.results`).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from vaer.config.panel import MeasuresConfig, ShockWindow
from vaer.config.section import Section


class PlaceboTreatmentConfig(Section):
    """Placebo treatment: VA's within-cluster deviations permuted within cluster; each
    permutation's effect is t-tested for 0 (G - 1 df) at level ``alpha / repeats``: false
    alarm ``alpha`` when the model is right."""

    enabled: bool = True
    repeats: int = Field(1, ge=1, le=100, description="independent permutations")


class RandomCommonCauseConfig(Section):
    """A standard-normal column added as a control; the refit is t-tested against the run's
    estimate at level ``alpha`` with the SE of the difference bounded by
    ``sqrt(se_refit**2 + se_run**2)``: false alarm at most ``alpha`` when the model is
    right."""

    enabled: bool = True


class DataSubsetsConfig(Section):
    """Re-estimation on ``repeats`` random subsets of ``fraction`` of the clusters; each
    subset is t-tested against the full-sample estimate at level ``alpha / repeats`` with
    the SE of the difference bounded by ``sqrt(se_subset**2 + se_full**2)`` (a subset
    moves by sampling noise, about ``se_full * sqrt(1/fraction - 1)``, plus refit noise):
    false alarm at most ``alpha`` for the check when the model is right. (``min_share``,
    the old rule's share of subsets inside the full-sample CI, is gone.)"""

    enabled: bool = True
    fraction: float = Field(0.8, gt=0.0, lt=1.0, description="share of clusters kept")
    repeats: int = Field(3, ge=1, le=200)


class LeaveOneGroupOutConfig(Section):
    """Drop one firm-type level at a time and re-estimate the effect of the firms left;
    each refit is t-tested against the run's estimate for the same firms at level
    ``alpha / levels`` with the SE of the difference bounded by
    ``sqrt(se_refit**2 + se_same_firms**2)``: false alarm at most ``alpha`` for the check
    when the model is right."""

    enabled: bool = True
    dimensions: list[str] | None = Field(
        None, description="firm-type columns to drop levels of; default: every roles.firm_types"
    )


class PlaceboShockConfig(Section):
    """Panel mode only: the outcome rebuilt for a calm window before the first shock
    (default: base 2005, fake trough 2006, fake recovery 2007); its effect is t-tested for
    0 (G - 1 df) at level ``alpha``: false alarm ``alpha`` when the model is right."""

    enabled: bool = False
    window: ShockWindow = ShockWindow(pre=[2005], trough=[2006], recovery=[2007])


class AlternativeMeasuresConfig(Section):
    """Panel mode only: the analysis rebuilt with other outcome measures and VA indices,
    each a ``key=value`` override of ``measures:``; each is flagged if its effect is
    significantly of the opposite sign to the main estimate (one-sided t-test at level
    ``alpha / variants``): false alarm at most ``alpha`` when the model is right."""

    enabled: bool = False
    variants: list[str] = [
        "growth=dhs",
        "outcome=ratio",
        "outcome=composite",
        "va_index=entropy",
        "va_index=pca",
    ]

    @model_validator(mode="after")
    def _check_variants(self) -> AlternativeMeasuresConfig:
        keys = sorted(k for k in MeasuresConfig.model_fields if k != "shock")
        for variant in self.variants:
            key, sep, value = (part.strip() for part in variant.partition("="))
            if not sep or key not in keys or not value:
                raise ValueError(
                    f"alternative measure '{variant}' must be `key=value` with key one of "
                    f"{keys} (e.g. growth=dhs)"
                )
            try:
                MeasuresConfig.model_validate({key: value})
            except ValueError as exc:
                first = str(exc).splitlines()[-1].strip()
                raise ValueError(f"alternative measure '{variant}': {first}") from None
        return self


class SensitivityConfig(Section):
    """Omitted-variable sensitivity (Chernozhukov, Cinelli, Newey, Sharma and Syrgkanis, 2022).

    ``cf_y`` is the share of the outcome's residual variance a hidden confounder explains
    (partial R^2 with the outcome), ``cf_d`` the share of the Riesz representer's variance
    it explains (for a partially linear model: of the treatment's residual variance); the
    bounds are computed for every pair, with ``rho`` the correlation of the two gaps.
    """

    enabled: bool = True
    cf_y: list[float] = [0.01, 0.03, 0.1]
    cf_d: list[float] = [0.01, 0.03, 0.1]
    rho: float = Field(1.0, ge=0.0, le=1.0)
    benchmark: bool = Field(True, description="implied strengths of each observed control")

    @model_validator(mode="after")
    def _check_strengths(self) -> SensitivityConfig:
        for name in ("cf_y", "cf_d"):
            values = getattr(self, name)
            if not values:
                raise ValueError(f"`robustness.sensitivity.{name}` must list at least one value")
            bad = [v for v in values if not 0.0 <= v < 1.0]
            if bad:
                raise ValueError(
                    f"`robustness.sensitivity.{name}` values must be in [0, 1); got {bad}"
                )
        return self


class RobustnessConfig(Section):
    """Refuters and sensitivity analysis of a run (off unless ``enabled: true``)."""

    enabled: bool = False
    alpha: float = Field(
        0.05,
        gt=0.0,
        le=0.5,
        description="false-alarm rate of each check when the model is right (its level)",
    )
    estimator: str | None = Field(
        None,
        description="label of the run estimator refuters refit; default: first linear_dml",
    )
    placebo_treatment: PlaceboTreatmentConfig = PlaceboTreatmentConfig()
    random_common_cause: RandomCommonCauseConfig = RandomCommonCauseConfig()
    data_subsets: DataSubsetsConfig = DataSubsetsConfig()
    leave_one_group_out: LeaveOneGroupOutConfig = LeaveOneGroupOutConfig()
    placebo_shock: PlaceboShockConfig = PlaceboShockConfig()
    alternative_measures: AlternativeMeasuresConfig = AlternativeMeasuresConfig()
    sensitivity: SensitivityConfig = SensitivityConfig()
    max_units: int | None = Field(
        20_000,
        ge=1_000,
        description=(
            "refit the refuters on whole clusters drawn at random up to this many units "
            "(null: all units); refuters compare refits with a reference on the same units"
        ),
    )

    def check_against(self, mode: str, estimator_labels: list[str], firm_types: list[str]) -> None:
        """Check the section against the rest of the experiment.

        Raises
        ------
        ValueError
            If a panel-only refuter is enabled in table mode, ``estimator`` names no estimator
            of the run, or a leave-one-group-out dimension is not one of ``roles.firm_types``.
        """
        if not self.enabled:
            return
        for name in ("placebo_shock", "alternative_measures"):
            if getattr(self, name).enabled and mode != "panel":
                raise ValueError(
                    f"`robustness.{name}` rebuilds the outcome from a firm-year panel and needs "
                    f"`data.mode: panel`; this experiment has `data.mode: {mode}`: set "
                    f"`robustness.{name}.enabled: false`"
                )
        if self.estimator is not None and self.estimator not in estimator_labels:
            raise ValueError(
                f"`robustness.estimator` is '{self.estimator}', which is not an estimator of "
                f"this run; use one of {estimator_labels}"
            )
        dims = self.leave_one_group_out.dimensions or []
        unknown = [d for d in dims if d not in firm_types]
        if self.leave_one_group_out.enabled and unknown:
            raise ValueError(
                f"`robustness.leave_one_group_out.dimensions` {unknown} are not in "
                f"`roles.firm_types` {firm_types}"
            )
