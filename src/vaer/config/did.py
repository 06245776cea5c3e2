"""Config of the staggered difference-in-differences stage (``did:``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from vaer.config.section import Section

LOG_EXPORTS = "log_exports"
DidEstimator = Literal["cs_did", "dml_did", "twfe", "event_study"]


HonestMethod = Literal["relative_magnitude", "smoothness"]


class HonestConfig(Section):
    """Rambachan-Roth sensitivity of the event study to violations of parallel trends
    (``did.honest``; :mod:`vaer.did.honest`).

    ``methods``: ``relative_magnitude`` (post-period changes of the trend difference at
    most ``Mbar`` times the largest pre-period one; hybrid ARP confidence sets) and
    ``smoothness`` (its second differences at most ``M``; optimal FLCIs). ``mbar`` and
    ``m`` are the bounds reported; ``m: null`` (default) takes five values from 0 to twice
    the largest second difference of the pre-period estimates (``M`` is in outcome units,
    so no fixed default fits every outcome). Targets: every post event time and, with
    ``average``, their mean; ``breakdown`` adds the smallest bound at which each target's
    interval includes 0. The event study is re-estimated with a universal base period
    (every event time measured from the year before adoption) when ``did.base_period`` is
    ``varying``, whose pre-period estimates are one-year changes; post-period estimates
    are the same. Needs >= 2 pre-period event times (else skipped with a note). Off by
    default: about 10-40 s on the synthetic panel's 11 event times.

    ``smoothness_critical``: ``folded_t`` (default) gives the smoothness FLCIs a folded
    Student t critical value with the Satterthwaite degrees of freedom of their estimator
    (few clusters; :mod:`vaer.did.honest_flci`), ``folded_normal`` Rambachan and Roth's
    folded normal one. With ``did.inference: asymptotic`` the folded normal is used.

    What is printed (``benchmarks/honest_did_coverage.py``, 1000 reporting seeds, a known
    linear violation of parallel trends): relative-magnitude sets at the true Mbar covered
    the true effects in every draw (conservative), so they are printed. Smoothness FLCIs at
    the true M covered 0.941-0.949 with the folded t (0.916-0.936 with the folded normal,
    0.944-0.950 with the Monte Carlo covariance), so the folded-t ones are printed and the
    folded-normal ones withheld unless ``did.unvalidated_inference``; so are the
    ``original`` rows' normal intervals (did_aggregates.csv has the small-cluster t ones).
    """

    enabled: bool = False
    methods: list[HonestMethod] = ["relative_magnitude"]
    mbar: list[float] = [0.0, 0.5, 1.0, 1.5, 2.0]
    m: list[float] | None = None
    average: bool = True
    breakdown: bool = True
    smoothness_critical: Literal["folded_t", "folded_normal"] = "folded_t"

    @model_validator(mode="after")
    def _bounds(self) -> HonestConfig:
        if not self.methods:
            raise ValueError(
                "`did.honest.methods` is empty: list relative_magnitude and/or smoothness"
            )
        negative = [b for b in (*self.mbar, *(self.m or [])) if b < 0]
        if negative:
            raise ValueError(f"`did.honest.mbar` and `did.honest.m` must be >= 0; got {negative}")
        if not self.mbar and "relative_magnitude" in self.methods:
            raise ValueError("`did.honest.mbar` is empty: give at least one Mbar (e.g. [0, 1])")
        return self


class DidConfig(Section):
    """Callaway–Sant'Anna ATT(g, t) of the city pilots on a yearly firm outcome
    (:mod:`vaer.did`), on the firm-year panel of ``data.mode: panel``.

    ``outcome``: ``log_exports`` (the log of ``roles.exports``; firm-years with zero or
    missing exports are left out and counted) or any numeric column of the panel, used as
    is. The cohort of a firm is ``roles.policy`` (the adoption year of its city; 0 or
    empty = never adopted). ``covariates`` are time-invariant pre-period covariates
    (each firm's value in its first year of the DiD sample); ``method``, ``control_group``,
    ``anticipation`` and ``base_period`` as R ``did::att_gt``. Errors are clustered by
    ``roles.cluster`` in the ``inference`` mode of :mod:`vaer.did.inference`:
    ``small_cluster`` (default: leverage-adjusted CR2 cluster variances, Student t
    intervals with Satterthwaite degrees of freedom, Bonferroni-t bands and pre-trend
    test) or ``asymptotic`` (as R ``did``: normal intervals, ``n_boot`` cluster
    multiplier-bootstrap draws for sup-t bands, Wald pre-trend test).
    ``first_year``/``last_year`` keep the panel years between them (e.g. to leave out
    years of a trade shock); ``min_e``/``max_e`` bound the event times of the dynamic
    aggregation, and ``max_e`` also caps the post-adoption cells the simple and group
    aggregations average (as R ``did::aggte``).

    What is printed is what held its level on vaer's synthetic pilot panel
    (``benchmarks/RESULTS.md``, ``did_validity``; cities of very unequal size, about 15
    adopting cities per cohort of 150, 4 of 40). In the asymptotic mode the intervals of
    single ATT(g, t) covered 90%, the bands 65-82% and the pre-trend test rejected a true
    null 15% of the time, so only the overall aggregates' intervals are printed. In the
    small-cluster mode (200 reporting seeds; 150 / 40 cities) cells covered 95.7% / 93.4%,
    event times 96.1% / 95.5%, the event-study band 97.0% / 93.4%, the overall aggregates
    93.4-96.5%, and the pre-trend test's size was 5.5% / 4.2%: everything is printed except
    the band over all ATT(g, t) cells (94.0% / 83.1%).
    ``unvalidated_inference: true`` prints the withheld ones anyway.

    ``estimators``: ``cs_did`` (Callaway-Sant'Anna, always run: the stage's cells,
    aggregations, pre-trend test and truth checks are its), ``twfe`` (firm and year fixed
    effects, clustered, with its Goodman-Bacon decomposition and the plain TWFE event
    study) and ``event_study`` (Sun-Abraham interaction-weighted, never-treated or else
    last-treated comparisons); ``twfe`` and ``event_study`` fit with pyfixest; ``dml_did``
    (:func:`vaer.did.dml_did.dml_att_gt`) estimates the same cells and aggregations with
    the orthogonal DR-DiD score and the run's ``nuisance`` learners (LightGBM by default)
    cross-fitted over ``dml_folds`` folds of cities, on ``covariates`` (and, by firm type,
    the type indicators); its small-cluster intervals held their level on simulated panels
    (``dml_did_validity``) and are printed, its asymptotic ones are withheld. The default
    is ``cs_did`` alone: pyfixest's import costs 2-3 s and the two add 3-5 s to the stage on
    ``experiments/broadband_did.yaml`` (0.8 s without them), which asks for all three.

    ``catt: true`` (off by default) adds the CATT model (:mod:`vaer.did.catt_stage`): a
    cluster-honest forest of each firm's DR-DiD score of its post-period average effect on
    ``covariates`` (never-treated comparisons, firms observed in every year), its per-firm
    effects (``did_catt.csv``), calibration test and RATE (``did_catt_tests.csv``), SHAP
    channel shares of the ``roles.mechanisms`` whose proxies are covariates
    (``did_channels.csv``) and mechanism tests, cs_did on each of ``mediators`` (yearly
    panel columns; default: the mechanism proxies in the panel; ``did_mechanisms.csv``).
    """

    enabled: bool = False
    outcome: str = LOG_EXPORTS
    method: Literal["dr", "ipw", "reg"] = "dr"
    control_group: Literal["never", "notyet"] = "never"
    anticipation: int = Field(0, ge=0)
    base_period: Literal["varying", "universal"] = "varying"
    covariates: list[str] = []
    first_year: int | None = None
    last_year: int | None = None
    min_e: int | None = None
    max_e: int | None = None
    inference: Literal["small_cluster", "asymptotic"] = "small_cluster"
    n_boot: int = Field(999, ge=99)
    alpha: float = Field(0.05, gt=0.0, lt=0.5)
    estimators: list[DidEstimator] = ["cs_did"]
    dml_folds: int = Field(5, ge=2)
    honest: HonestConfig = HonestConfig()
    catt: bool = Field(False, description="fit the CATT model of the post-period effect")
    mediators: list[str] = []
    unvalidated_inference: bool = Field(
        False,
        description="print the intervals, bands and tests that did not hold their level on "
        "vaer's synthetic panel in the chosen inference mode",
    )

    @model_validator(mode="after")
    def _window(self) -> DidConfig:
        if "cs_did" not in self.estimators:
            raise ValueError(
                f"`did.estimators` ({self.estimators}) must include cs_did: the stage's "
                "ATT(g,t), aggregations, pre-trend test and truth checks are Callaway-"
                "Sant'Anna's; add twfe and event_study beside it"
            )
        if "dml_did" in self.estimators and not self.covariates:
            raise ValueError(
                "`did.estimators` has dml_did but `did.covariates` is empty: its learners "
                "would have no features and it would repeat cs_did; list the pre-period "
                "covariates (e.g. did.covariates: [productivity, firm_age])"
            )
        if self.catt and not self.covariates:
            raise ValueError(
                "`did.catt` needs `did.covariates`: the CATT is a function of the pre-period "
                "covariates (e.g. did.covariates: [productivity, city_dev])"
            )
        if self.catt and self.control_group != "never":
            raise ValueError(
                "`did.catt` compares with never-treated firms; set `did.control_group: never`"
            )
        if len(set(self.estimators)) != len(self.estimators):
            raise ValueError(f"`did.estimators` lists an estimator twice: {self.estimators}")
        if self.min_e is not None and self.max_e is not None and self.min_e > self.max_e:
            raise ValueError(f"`min_e` ({self.min_e}) must not exceed `max_e` ({self.max_e})")
        if (
            self.first_year is not None
            and self.last_year is not None
            and self.first_year >= self.last_year
        ):
            raise ValueError(
                f"`first_year` ({self.first_year}) must come before `last_year` ({self.last_year})"
            )
        return self

    def check_against(self, mode: str, policy: str | None, time: str | None) -> None:
        """Raise if the stage is on without a panel, a policy column or a time column."""
        if not self.enabled:
            return
        if mode != "panel":
            raise ValueError("`did.enabled` needs the firm-year panel: set `data.mode: panel`")
        if policy is None:
            raise ValueError(
                "`did.enabled` needs `roles.policy`: the column with the adoption year of "
                "each firm's city (0 or empty = never adopted)"
            )
        if time is None:
            raise ValueError("`did.enabled` needs `roles.time` (the year column)")
