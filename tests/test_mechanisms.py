"""Mechanism tests: the score's small-cluster inference and coverage of known effects."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from vaer.attribution import mechanism_tests
from vaer.attribution.mechanisms import partial_out_effect
from vaer.config.models import NuisanceConfig, Roles, SyntheticTableConfig
from vaer.data.design import build_analysis_data
from vaer.data.synthetic_table import (
    CONTROLS,
    MECHANISMS,
    MEDIATOR_EFFECTS,
    MODIFIERS,
    make_synthetic_table,
)
from vaer.estimators.inference import bell_mccaffrey_df

MEDIATORS = {channel: [f"d_{proxies[0]}"] for channel, proxies in MECHANISMS.items()}


def test_partial_out_effect_is_the_score_mean_with_a_cr2_t_interval() -> None:
    rng = np.random.default_rng(0)
    sizes = np.array([3, 5, 8, 12, 20, 30, 40, 60])
    clusters = np.repeat(np.arange(len(sizes)), sizes)
    n = len(clusters)
    t_res = rng.normal(size=n) + rng.normal(size=len(sizes))[clusters]
    t = t_res + rng.normal(size=n)
    m_res = 0.3 * t + rng.normal(size=n)
    mean = partial_out_effect(m_res, t_res, clusters, t)
    estimate, se, low, high, p = mean.estimate, mean.se, mean.ci_low, mean.ci_high, mean.p_value
    units, g = mean.n, mean.n_clusters
    jacobian = np.mean(t_res * t)
    theta = np.mean(t_res * m_res) / jacobian
    scores = theta + t_res * (m_res - theta * t) / jacobian
    sums = np.array([np.sum(scores[clusters == c] - scores.mean()) for c in range(len(sizes))])
    se_cr2 = np.sqrt(np.sum(sums**2 / (1 - sizes / n))) / n
    df = bell_mccaffrey_df(sizes[:, None].astype(float), np.array([float(n)]), np.ones(1))
    assert estimate == pytest.approx(theta)
    assert se == pytest.approx(se_cr2)
    q = stats.t.ppf(0.975, df)
    assert (low, high) == pytest.approx((theta - q * se_cr2, theta + q * se_cr2))
    assert p == pytest.approx(2 * stats.t.sf(abs(theta / se_cr2), df))
    assert (units, g) == (n, len(sizes))


def _roles() -> Roles:
    return Roles(
        unit="firm_id",
        outcome="resilience",
        treatment="va_index",
        cluster="city",
        controls=CONTROLS,
        modifiers=MODIFIERS,
        mechanisms=MECHANISMS,
        mediators=MEDIATORS,
    )


@pytest.mark.statistical
def test_mechanism_intervals_cover_the_true_effects_with_few_clusters() -> None:
    """The synthetic table's mediators are linear in VA and the controls, so with ridge
    nuisances the score is correctly specified and its 95% intervals must cover each
    true effect in 95% of 150 draws of 25 cities: binomial SD 0.018, so coverage within
    0.95 -+ 3 SD, and the zero-effect mediator rejected in at most 0.05 + 3 SD. One
    cross-fitting split: a ridge fit barely changes between splits, so this checks the
    score and its small-cluster SE alone (the repeated splits' default is checked on the
    reporting designs, ``benchmarks/mechanism_validity.py``)."""
    mediators = {k: MEDIATORS[k] for k in ("knowledge_spillover", "export_cost", "smart_green")}
    nuisance = NuisanceConfig(model="ridge", n_jobs=1)
    covered: dict[str, list[bool]] = {m[0]: [] for m in mediators.values()}
    rejected = []
    for seed in range(150):
        table = make_synthetic_table(
            SyntheticTableConfig(n_units=500, n_clusters=25), random_state=5000 + seed
        )
        data = build_analysis_data(table.frame, _roles())
        for est in mechanism_tests(
            table.frame, mediators, data, nuisance, random_state=seed, n_rep=1
        ):
            covered[est.mediator].append(est.covers(MEDIATOR_EFFECTS[est.mediator]))
            if est.mediator == "d_smart_green":
                rejected.append(est.significant)
    band = 3 * np.sqrt(0.95 * 0.05 / 150)
    for mediator, hits in covered.items():
        assert abs(np.mean(hits) - 0.95) <= band, (mediator, np.mean(hits))
    assert np.mean(rejected) <= 0.05 + band
