"""The ``heterogeneity:`` section: GATEs, sorted GATES/CLAN, calibration/BLP, RATE, policy tree.

See :mod:`vaer.heterogeneity` for the estimands. Every list names *original* columns
(as in ``roles``), never encoded ones.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field, field_validator

from vaer.config.section import Section


class HeterogeneityConfig(Section):
    """How effects are broken down by firm type and tested for heterogeneity.

    Attributes
    ----------
    enabled : bool
        Run the heterogeneity stage (default true).
    estimators : list of str or None
        Estimator names to analyse; all estimators of the run when omitted.
    dimensions : list of str or None
        Firm-type columns to report GATEs by; ``roles.firm_types`` when omitted.
    crossed : list of [str, str]
        Pairs of firm-type columns whose crossed levels (e.g. ownership x region) get
        GATEs too.
    ci_level : float
        Confidence level of every interval (default 0.95).
    n_groups : int
        Number of ``tau_hat`` quantile groups of the sorted GATES and CLAN (default 5).
    blp_covariates : list of str or None
        Modifiers of the best linear projection; the numeric modifiers when omitted.
    n_bootstrap : int
        Cluster-bootstrap replications of RATE and multiplier-bootstrap draws of the joint
        bands and Romano-Wolf adjustments.
    policy_features : list of str
        Modifiers the policy tree may split on besides the firm types.
    policy_split_points : int
        Quantile thresholds tried per numeric policy feature.
    policy_cost : float or None
        Cost per unit of VA a firm must beat to be targeted; the ATE when omitted, so the
        tree targets firms with above-average gains.
    policy_min_leaf : int
        Smallest leaf of the policy tree (firms).
    policy_honest : bool
        Grow the tree on half of the clusters and estimate the leaf effects on the other
        half (default true), so the leaf CIs are valid after the search.
    random_state : int or None
        Seed of the bootstrap and the honest split; the experiment's ``seed`` when omitted.
    ranking_tests : bool
        Print p-values and confidence intervals of the analyses that rank or regress on
        ``tau_hat`` (calibration slope, sorted GATES, RATE and the TOC band). Off by
        default: under a constant effect they rejected far more often than their level
        (up to 25% at 5%, mean t-statistics down to -0.7) because ``tau_hat`` and the
        doubly robust scores share the nuisance models' errors and the out-of-bag forest
        leaks each city's scores into the other cities' predictions, which no reference
        distribution of this stage can undo (``benchmarks/RESULTS.md``,
        ``heterogeneity_size``). Their estimates and SEs are always written; switch this
        on for methods research only.
    """

    enabled: bool = True
    estimators: list[str] | None = None
    dimensions: list[str] | None = None
    crossed: list[tuple[str, str]] = []
    ci_level: float = Field(0.95, gt=0.5, lt=1.0)
    n_groups: int = Field(5, ge=2, le=20)
    blp_covariates: list[str] | None = None
    n_bootstrap: int = Field(200, ge=20)
    policy_features: list[str] = []
    policy_split_points: int = Field(10, ge=1, le=100)
    policy_cost: float | None = None
    policy_min_leaf: int = Field(50, ge=1)
    policy_honest: bool = True
    random_state: int | None = Field(None, ge=0)
    ranking_tests: bool = False

    @field_validator("crossed")
    @classmethod
    def _distinct_pairs(cls, value: list[tuple[str, str]]) -> list[tuple[str, str]]:
        for first, second in value:
            if first == second:
                raise ValueError(
                    f"a crossed pair needs two different columns; got [{first}, {first}]"
                )
        return value

    def check_roles(
        self, firm_types: Sequence[str], modifiers: Sequence[str], estimators: Sequence[str]
    ) -> None:
        """Check that every column and estimator named here exists in the experiment.

        Raises
        ------
        ValueError
            Naming the first unknown column or estimator and what is allowed.
        """
        checks: list[tuple[str, list[str], Sequence[str], str]] = [
            ("estimators", self.estimators or [], estimators, "the run's estimator names"),
            ("dimensions", self.dimensions or [], firm_types, "`roles.firm_types`"),
            (
                "crossed",
                [c for pair in self.crossed for c in pair],
                firm_types,
                "`roles.firm_types`",
            ),
            ("blp_covariates", self.blp_covariates or [], modifiers, "`roles.modifiers`"),
            ("policy_features", self.policy_features, modifiers, "`roles.modifiers`"),
        ]
        for key, named, allowed, where in checks:
            unknown = [name for name in named if name not in allowed]
            if unknown:
                raise ValueError(
                    f"`heterogeneity.{key}` names {unknown}, which are not in {where} "
                    f"({', '.join(allowed) or 'none'})"
                )
