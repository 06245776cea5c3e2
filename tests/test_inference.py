from __future__ import annotations

import numpy as np
import pytest

from vaer.estimators.inference import cluster_robust_mean
from vaer.estimators.nuisance import grouped_folds
from vaer.estimators.scores import continuous_dr_scores


def test_cluster_robust_mean_matches_the_formula() -> None:
    rng = np.random.default_rng(0)
    clusters = np.repeat(np.arange(10), 5)
    scores = rng.normal(size=50)
    result = cluster_robust_mean(scores, clusters)
    centred = scores - scores.mean()
    sums = np.array([centred[clusters == g].sum() for g in range(10)])
    expected = np.sqrt(10 / 9 * np.sum(sums**2) / 50**2)
    assert result.estimate == pytest.approx(scores.mean())
    assert result.se == pytest.approx(expected)
    assert result.n_clusters == 10


@pytest.mark.statistical
def test_cluster_robust_ci_covers_under_intra_cluster_correlation() -> None:
    """With a shared cluster shock, CR1 intervals cover ~95%; i.i.d. SEs would not."""
    rng = np.random.default_rng(1)
    covered_cr, covered_iid = [], []
    for _ in range(400):
        clusters = np.repeat(np.arange(60), 20)
        scores = rng.normal(size=60)[clusters] + rng.normal(size=1200)
        result = cluster_robust_mean(scores, clusters)
        iid = cluster_robust_mean(scores, np.arange(1200))
        covered_cr.append(result.ci_low <= 0 <= result.ci_high)
        covered_iid.append(iid.ci_low <= 0 <= iid.ci_high)
    # 400 replications: the binomial SE of a 0.95 rate is about 0.011
    assert 0.91 <= np.mean(covered_cr) <= 0.99
    assert np.mean(covered_iid) < 0.6


@pytest.mark.parametrize(
    ("scores", "clusters", "message"),
    [
        (np.ones(3), np.zeros(4), "must have the same shape"),
        (np.ones(3), np.zeros(3), "need at least 2 clusters; got 1"),
    ],
)
def test_cluster_robust_mean_errors(scores: np.ndarray, clusters: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cluster_robust_mean(scores, clusters)


def test_dr_scores_formula_and_errors() -> None:
    tau, y_res, t_res, s2 = (
        np.array([1.0, 2.0]),
        np.array([0.5, -1.0]),
        np.array([1.0, 2.0]),
        np.array([2.0, 4.0]),
    )
    expected = tau + t_res * (y_res - tau * t_res) / s2
    np.testing.assert_allclose(continuous_dr_scores(tau, y_res, t_res, s2), expected)
    with pytest.raises(ValueError, match="same shape"):
        continuous_dr_scores(tau, y_res, t_res, np.ones(3))
    with pytest.raises(ValueError, match="strictly positive"):
        continuous_dr_scores(tau, y_res, t_res, np.array([1.0, 0.0]))


def test_grouped_folds_never_split_a_cluster() -> None:
    clusters = np.repeat(np.arange(23), 7)
    folds = grouped_folds(clusters, 5, random_state=0)
    assert len(folds) == 5
    for train, test in folds:
        assert not set(clusters[train]) & set(clusters[test])
    assert sorted(np.concatenate([test for _, test in folds])) == list(range(len(clusters)))
    again = grouped_folds(clusters, 5, random_state=0)
    for (_, a), (_, b) in zip(folds, again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_grouped_folds_need_enough_clusters() -> None:
    with pytest.raises(ValueError, match="cv=5 folds need at least 5 clusters; the data have 3"):
        grouped_folds(np.array([0, 1, 2, 0, 1, 2]), 5, random_state=0)


def test_group_means_matches_per_group_cluster_formula() -> None:
    from vaer.estimators.inference import group_means

    rng = np.random.default_rng(2)
    n = 300
    clusters = rng.integers(0, 25, size=n)
    groups = rng.choice(["a", "b", "c"], size=n)
    scores = rng.normal(size=n) + rng.normal(size=25)[clusters]
    result = group_means(scores, groups, clusters)
    assert list(result.labels) == ["a", "b", "c"]
    phi = np.zeros((n, 3))
    for k, g in enumerate(["a", "b", "c"]):
        mask = groups == g
        assert result.estimates[k] == pytest.approx(scores[mask].mean())
        phi[mask, k] = (scores[mask] - scores[mask].mean()) / mask.sum()
    sums = np.array([phi[clusters == c].sum(axis=0) for c in range(25)])
    np.testing.assert_allclose(result.cov, 25 / 24 * sums.T @ sums)
    # a single group reproduces cluster_robust_mean
    one = group_means(scores, np.zeros(n), clusters)
    assert one.se[0] == pytest.approx(cluster_robust_mean(scores, clusters).se)
    assert list(result.to_frame().columns) == ["group", "estimate", "se", "ci_low", "ci_high", "n"]


def test_two_way_clustering_adds_both_dimensions() -> None:
    from vaer.estimators.inference import group_means

    rng = np.random.default_rng(3)
    n = 2000
    city, industry = rng.integers(0, 40, size=n), rng.integers(0, 30, size=n)
    scores = rng.normal(size=40)[city] + rng.normal(size=30)[industry] + rng.normal(size=n)
    one_way = group_means(scores, np.zeros(n), city)
    two_way = group_means(scores, np.zeros(n), city, clusters2=industry)
    assert two_way.se_type.startswith("two-way")
    # industry shocks are ignored by city clustering: two-way SE must be clearly larger
    assert two_way.se[0] > 1.2 * one_way.se[0]
    # with the second dimension = units, two-way equals one-way up to the CR1 factors
    same = group_means(scores, np.zeros(n), city, clusters2=np.arange(n))
    assert same.se[0] == pytest.approx(one_way.se[0], rel=0.05)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"groups": np.zeros(3)}, "must be 1-d of the same length"),
        ({"scores": np.array([1.0, np.nan, 2.0, 3.0])}, "must be finite"),
        ({"clusters": np.zeros(4)}, "need at least 2 clusters; got 1"),
    ],
)
def test_group_means_errors(kwargs: dict, message: str) -> None:
    from vaer.estimators.inference import group_means

    args = {"scores": np.arange(4.0), "groups": np.zeros(4), "clusters": np.arange(4)}
    with pytest.raises(ValueError, match=message):
        group_means(**{**args, **kwargs})
