r"""A depth-2 policy tree over firm types and chosen modifiers, found by exhaustive search.

Which firms should be targeted if targeting a firm costs :math:`c` per unit of VA effect?
A policy :math:`\pi(x) \in \{0, 1\}` has value :math:`V(\pi) = E[\pi(X)(\tau(X) - c)]`,
estimated without bias by :math:`\frac1n\sum_i \pi(X_i)(\Gamma_i - c)` with doubly robust
scores :math:`\Gamma_i` (Athey and Wager, 2021). This module searches every tree of depth
at most 2 whose splits are ``type = level`` / ``type != level`` for firm-type columns
and ``x <= s`` / ``x > s`` at quantile thresholds for numeric modifiers, and returns the
one with the highest estimated value (exact search, like R's ``policytree`` on these
candidate splits). With :math:`c` the average effect (the default) the tree separates
firms whose gains are above average from the rest. A split is kept only if it raises
the value, so trees stay as small as the data allow.

With ``honest=True`` the clusters are split at random into two halves: the tree is grown
on one, and the effect of each leaf (mean score) is estimated on the other, so the leaf
CIs are not distorted by the search. Leaf effects are OLS on leaf indicators with CR2
cluster-robust SEs; CIs and the p-value of a zero leaf effect use Student's t with the
Bell-McCaffrey degrees of freedom (``df``; :mod:`vaer.heterogeneity.ols`), about the
number of estimation clusters with firms in the leaf minus one. A leaf informed by fewer
than two clusters gets no SE, CI or p-value.

References
----------
Athey, S. and Wager, S. (2021). Policy learning with observational data. *Econometrica*
89(1), 133-161. Sverdrup, E. et al. (2020). policytree: policy learning via doubly
robust empirical welfare maximization over trees. *JOSS* 5(50), 2232.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vaer.heterogeneity.ols import group_design

POLICY_COLUMNS = [
    "estimator",
    "leaf",
    "rule",
    "action",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "n",
    "df",
    "p_value",
    "search_estimate",
    "search_n",
]
_GAIN_TOLERANCE = 1e-9


@dataclass(frozen=True)
class SplitCandidate:
    """A binary split: units where ``mask`` is true satisfy ``rule``, others ``negation``."""

    feature: str
    rule: str
    negation: str
    mask: np.ndarray = field(repr=False, compare=False)


def split_candidates(
    firm_types: pd.DataFrame, numeric: pd.DataFrame, n_split_points: int = 10
) -> list[SplitCandidate]:
    """Every candidate split of the tree.

    Parameters
    ----------
    firm_types : DataFrame of shape (n, d)
        Categorical columns: one split ``column = level`` per level (one only for two
        levels).
    numeric : DataFrame of shape (n, m)
        Numeric columns: splits ``column <= s`` at ``n_split_points`` interior quantiles.
    n_split_points : int

    Returns
    -------
    list of SplitCandidate

    Raises
    ------
    ValueError
        If the frames have different lengths or ``n_split_points`` < 1.
    """
    if len(firm_types) != len(numeric):
        raise ValueError(
            f"`firm_types` and `numeric` must have the same length; got {len(firm_types)} "
            f"and {len(numeric)}"
        )
    if n_split_points < 1:
        raise ValueError(f"`n_split_points` must be an int >= 1; got {n_split_points}")
    candidates: list[SplitCandidate] = []
    for column in firm_types.columns:
        labels = firm_types[column].astype(str).to_numpy()
        levels = sorted(set(labels.tolist()))
        for level in levels[: 1 if len(levels) == 2 else len(levels)]:
            candidates.append(
                SplitCandidate(
                    column, f"{column} = {level}", f"{column} != {level}", labels == level
                )
            )
    for column in numeric.columns:
        values = numeric[column].to_numpy(dtype=np.float64)
        quantiles = np.linspace(0, 1, n_split_points + 2)[1:-1]
        for threshold in np.unique(np.quantile(values, quantiles)):
            mask = values <= threshold
            if mask.all() or not mask.any():
                continue
            candidates.append(
                SplitCandidate(
                    column, f"{column} <= {threshold:.3g}", f"{column} > {threshold:.3g}", mask
                )
            )
    return candidates


@dataclass(frozen=True)
class PolicyTreeResult:
    """The chosen tree of one estimator and the effect in each leaf.

    Attributes
    ----------
    estimator : str
    cost : float
        Cost per unit of effect a leaf had to beat to be targeted.
    leaves : DataFrame
        One row per leaf (``POLICY_COLUMNS``): its rule, ``action`` (``target`` or
        ``do not target``, decided on the search sample), the leaf effect with its CI,
        ``df`` and two-sided p-value on the estimation sample, and the leaf mean on the
        search sample.
    leaf_of : ndarray of shape (n,)
        Leaf number of every unit of the data.
    honest : bool
    """

    estimator: str
    cost: float
    leaves: pd.DataFrame
    leaf_of: np.ndarray = field(repr=False, compare=False)
    honest: bool = True

    def to_frame(self) -> pd.DataFrame:
        """The policy tree table rows of this estimator (``tables/policy_tree.csv``)."""
        return self.leaves.copy()

    @property
    def targeted(self) -> np.ndarray:
        """Whether each unit falls in a leaf the tree targets, shape (n,)."""
        chosen = self.leaves.loc[self.leaves["action"] == "target", "leaf"].to_numpy()
        return np.isin(self.leaf_of, chosen)

    def metrics(self) -> dict[str, float]:
        """Number of leaves and share of firms targeted, under ``policy_tree.<estimator>.``."""
        return {
            f"policy_tree.{self.estimator}.n_leaves": float(len(self.leaves)),
            f"policy_tree.{self.estimator}.share_targeted": float(self.targeted.mean()),
        }


def _best_depth2(
    rewards: np.ndarray, masks: np.ndarray, min_leaf: int
) -> tuple[int | None, list[int | None]]:
    """Root split and the split of its (true, false) children; ``None`` means no split."""
    b = masks.astype(np.float64)
    total, n = float(rewards.sum()), len(rewards)
    r_k = b.T @ rewards
    n_k = b.sum(axis=0)
    m = b.T @ (b * rewards[:, None])
    c = b.T @ b

    def leaf(value: np.ndarray | float) -> np.ndarray:
        return np.maximum(np.asarray(value, dtype=np.float64), 0.0)

    # children of root k1: true = B_k1, false = ~B_k1; split each by k2 (rows k1, cols k2)
    parts = {
        "true": (m, r_k[:, None] - m, c, n_k[:, None] - c, r_k, n_k),
        "false": (
            r_k[None, :] - m,
            total - r_k[:, None] - r_k[None, :] + m,
            n_k[None, :] - c,
            n - n_k[:, None] - n_k[None, :] + c,
            total - r_k,
            n - n_k,
        ),
    }
    best_child: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for side, (s1, s2, c1, c2, s_all, _) in parts.items():
        value = leaf(s1) + leaf(s2)
        value = np.where((c1 >= min_leaf) & (c2 >= min_leaf), value, -np.inf)
        arg = np.argmax(value, axis=1)
        best = value[np.arange(len(arg)), arg]
        unsplit = leaf(s_all)
        keep = best > unsplit + _GAIN_TOLERANCE
        best_child[side] = (np.where(keep, best, unsplit), np.where(keep, arg, -1))
    valid_root = (n_k >= min_leaf) & (n - n_k >= min_leaf)
    root_value = np.where(valid_root, best_child["true"][0] + best_child["false"][0], -np.inf)
    if not np.any(valid_root) or root_value.max() <= leaf(total) + _GAIN_TOLERANCE:
        return None, []
    k1 = int(np.argmax(root_value))
    children: list[int | None] = []
    for side in ("true", "false"):
        arg = int(best_child[side][1][k1])
        children.append(None if arg < 0 else arg)
    return k1, children


def _leaves(
    candidates: Sequence[SplitCandidate], root: int | None, children: Sequence[int | None], n: int
) -> list[tuple[str, np.ndarray]]:
    if root is None:
        return [("all firms", np.ones(n, dtype=bool))]
    out: list[tuple[str, np.ndarray]] = []
    split = candidates[root]
    for side, rule, mask in ((0, split.rule, split.mask), (1, split.negation, ~split.mask)):
        child = children[side]
        if child is None:
            out.append((rule, mask))
            continue
        second = candidates[child]
        out.append((f"{rule} & {second.rule}", mask & second.mask))
        out.append((f"{rule} & {second.negation}", mask & ~second.mask))
    return out


def fit_policy_tree(
    estimator: str,
    scores: np.ndarray,
    clusters: np.ndarray,
    candidates: Sequence[SplitCandidate],
    *,
    cost: float | None = None,
    min_leaf: int = 50,
    honest: bool = True,
    ci_level: float = 0.95,
    random_state: int = 0,
) -> PolicyTreeResult:
    r"""Grow the value-maximising depth-2 tree on the scores and estimate its leaf effects.

    Parameters
    ----------
    estimator : str
    scores : ndarray of shape (n,)
        Doubly robust scores :math:`\Gamma_i`.
    clusters : ndarray of shape (n,)
    candidates : sequence of SplitCandidate
        From :func:`split_candidates`.
    cost : float, optional
        Targeting cost :math:`c`; the mean score of the search sample when omitted.
    min_leaf : int
        Smallest leaf (firms of the search sample).
    honest : bool
        Search on half of the clusters, estimate leaf effects on the other half.
    ci_level : float
    random_state : int
        Seed of the honest split.

    Returns
    -------
    PolicyTreeResult

    Raises
    ------
    ValueError
        If lengths differ, ``min_leaf`` < 1, or an honest split is asked for with fewer
        than 4 clusters.
    """
    scores = np.asarray(scores, dtype=np.float64)
    n = len(scores)
    if len(clusters) != n or any(len(c.mask) != n for c in candidates):
        raise ValueError("`scores`, `clusters` and every candidate mask must have the same length")
    if min_leaf < 1:
        raise ValueError(f"`min_leaf` must be an int >= 1; got {min_leaf}")
    codes, _ = pd.factorize(np.asarray(clusters))
    n_clusters = int(codes.max()) + 1 if n else 0
    if honest:
        if n_clusters < 4:
            raise ValueError(
                f"an honest policy tree needs at least 4 clusters; got {n_clusters} "
                "(set `heterogeneity.policy_honest: false`)"
            )
        rng = np.random.default_rng(random_state)
        search_clusters = rng.permutation(n_clusters)[: n_clusters // 2]
        search = np.isin(codes, search_clusters)
    else:
        search = np.ones(n, dtype=bool)
    estimate_rows = ~search if honest else search
    threshold = float(scores[search].mean()) if cost is None else float(cost)
    masks = (
        np.column_stack([c.mask[search] for c in candidates])
        if candidates
        else np.zeros((int(search.sum()), 0), dtype=bool)
    )
    root, children = (
        _best_depth2(scores[search] - threshold, masks, min_leaf) if candidates else (None, [])
    )
    leaves = _leaves(candidates, root, children, n)
    leaf_of = np.zeros(n, dtype=np.int64)
    for number, (_, mask) in enumerate(leaves, start=1):
        leaf_of[mask] = number
    present = [str(k) for k in range(1, len(leaves) + 1) if np.any(estimate_rows & (leaf_of == k))]
    found: dict[str, tuple[float, float, float, float, float, int]] = {}
    if present and len(np.unique(codes[estimate_rows])) >= 2:
        design, _ = group_design(leaf_of[estimate_rows].astype(str), codes[estimate_rows], present)
        tests = design.fit(scores[estimate_rows]).coefficients()
        half, p_values = tests.half_width(ci_level), tests.p_values()
        counts = design.x.sum(axis=0)
        for k, level in enumerate(present):
            found[level] = (
                float(tests.estimates[k]),
                float(tests.se[k]),
                float(half[k]),
                float(tests.df[k]),
                float(p_values[k]),
                int(counts[k]),
            )
    rows = []
    for number, (rule, mask) in enumerate(leaves, start=1):
        in_search = search & mask
        search_mean = float(scores[in_search].mean()) if in_search.any() else float("nan")
        missing = (float("nan"),) * 5 + (0,)
        estimate, se, half_width, df, p, count = found.get(str(number), missing)
        rows.append(
            {
                "estimator": estimator,
                "leaf": number,
                "rule": rule,
                "action": "target" if search_mean > threshold else "do not target",
                "estimate": estimate,
                "se": se,
                "ci_low": estimate - half_width,
                "ci_high": estimate + half_width,
                "n": count,
                "df": df,
                "p_value": p,
                "search_estimate": search_mean,
                "search_n": int(in_search.sum()),
            }
        )
    return PolicyTreeResult(
        estimator=estimator,
        cost=threshold,
        leaves=pd.DataFrame(rows, columns=POLICY_COLUMNS),
        leaf_of=leaf_of,
        honest=honest,
    )
