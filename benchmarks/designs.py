r"""Data-generating designs with exact truth for the accuracy benchmarks.

Each design draws a data set and returns, next to ``(y, t, x, w)``, the true per-unit
effect ``tau``, the true nuisance functions ``m = E[Y | X, W]`` and ``e = E[T | X, W]``
(what an oracle residualises on), cluster codes and, where the design has them, firm-type
groups for group average effects (GATEs).

Designs
-------
``nw_a`` .. ``nw_d``
    Nie and Wager (2021), Section 6, setups A-D: ``Y = b(X) + (T - 1/2) tau(X) + sigma eps``,
    ``T ~ Bernoulli(e(X))``, ``eps ~ N(0, 1)``, so ``m(x) = b(x) + (e(x) - 1/2) tau(x)``.

    * A: ``X ~ U[0, 1]^d``, ``b = sin(pi X1 X2) + 2 (X3 - 1/2)^2 + X4 + X5 / 2``,
      ``e = trim_0.1(sin(pi X1 X2))``, ``tau = (X1 + X2) / 2``;
    * B: ``X ~ N(0, I_d)``, ``b = max(0, X1 + X2, X3) + max(0, X4 + X5)``, ``e = 1/2``,
      ``tau = X1 + log(1 + exp(X2))``;
    * C: ``X ~ N(0, I_d)``, ``b = 2 log(1 + exp(X1 + X2 + X3))``,
      ``e = 1 / (1 + exp(X2 + X3))``, ``tau = 1``;
    * D: ``X ~ N(0, I_d)``, ``b = (max(0, X1 + X2 + X3) + max(0, X4 + X5)) / 2``,
      ``e = 1 / (1 + exp(-X1) + exp(-X2))``,
      ``tau = max(0, X1 + X2 + X3) - max(0, X4 + X5)``;

    with ``trim_eta(v) = max(eta, min(v, 1 - eta))``.
``wa``
    Wager and Athey (2018), Section 5, the design with heterogeneous effects:
    ``X ~ U[0, 1]^d``, ``e = 1/2``, main effect 0,
    ``Y = (T - 1/2) tau(X) + eps``, ``tau = s(X1) s(X2)``,
    ``s(v) = 1 + 1 / (1 + exp(-20 (v - 1/3)))``.
``ihdp``
    Hill (2011) response surface B on the IHDP covariates econml ships
    (``econml/data/ihdp/sim.csv``: treated children with non-white mothers removed, the six
    continuous covariates standardised, as econml's ``ihdp_surface_B``):
    ``Y(0) = exp((X + 1/2) beta) + eps``, ``Y(1) = X beta - omega + eps``, ``eps ~ N(0, 1)``,
    ``beta_j`` drawn from ``{0, .1, .2, .3, .4}`` with probabilities ``(.6, .1, .1, .1, .1)``,
    the offset 1/2 added to every covariate but the intercept (Hill's setting "A"), and
    ``omega`` set so that the average effect on the treated is exactly 4. The mother's
    race ``momwhite`` is kept as the one control ``W``: IHDP was a randomised experiment
    and only non-white treated children were removed, so ``e(x, w) = p * w`` with ``p``
    the treated share among children of white mothers, and ``m = mu_0 + e tau``.
``table``, ``table_hard``
    vaer's synthetic firm table (:mod:`vaer.data.synthetic_table`), default parameters and
    a harder setting (confounding 2, heterogeneity 0.5, noise 1.0); its exact nuisances
    come from :meth:`~vaer.data.synthetic_table.SyntheticTable.exact_nuisances`; GATEs by
    ownership; clusters are cities.

References
----------
Nie, X. and Wager, S. (2021). Quasi-oracle estimation of heterogeneous treatment
effects. *Biometrika* 108(2), 299-319.
Wager, S. and Athey, S. (2018). Estimation and inference of heterogeneous treatment
effects using random forests. *JASA* 113(523), 1228-1242.
Hill, J. L. (2011). Bayesian nonparametric modeling for causal inference. *JCGS* 20(1),
217-240.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from vaer.config.models import SyntheticTableConfig
from vaer.data.design import encode_features
from vaer.data.synthetic_table import CONTROLS, MODIFIERS, make_synthetic_table


@dataclass(frozen=True)
class DesignData:
    """One draw of a design, with its exact truth.

    Attributes
    ----------
    name : str
    y, t : ndarray of shape (n,)
        Outcome and treatment (0/1 floats when ``binary``).
    x : ndarray of shape (n, p)
        Features the effect may vary with.
    w : ndarray of shape (n, q)
        Further controls (``q`` may be 0).
    tau : ndarray of shape (n,)
        True effect of the treatment per unit.
    m, e : ndarray of shape (n,)
        True ``E[Y | X, W]`` and ``E[T | X, W]``.
    clusters : ndarray of shape (n,)
        Cluster code per unit (each unit its own cluster when the design has none).
    groups : ndarray of shape (n,) or None
        Group label per unit for GATEs, or None.
    binary : bool
        Whether the treatment is binary.
    """

    name: str
    y: np.ndarray
    t: np.ndarray
    x: np.ndarray
    w: np.ndarray
    tau: np.ndarray
    m: np.ndarray
    e: np.ndarray
    clusters: np.ndarray
    groups: np.ndarray | None = None
    binary: bool = False
    x_names: list[str] = field(default_factory=list)
    w_names: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        """Number of units."""
        return len(self.y)

    @property
    def ate(self) -> float:
        """True sample average effect: the mean of ``tau``."""
        return float(np.mean(self.tau))

    def gates(self) -> pd.Series:
        """True GATE per group (mean of ``tau`` within the group).

        Raises
        ------
        ValueError
            If the design has no groups.
        """
        if self.groups is None:
            raise ValueError(f"design '{self.name}' has no groups, so no GATEs")
        return pd.Series(self.tau).groupby(self.groups).mean()


def _check_size(name: str, n: int, minimum: int) -> None:
    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < minimum:
        raise ValueError(f"`n` must be an int >= {minimum} for design '{name}'; got {n!r}")


def _check_dim(name: str, d: int, minimum: int) -> None:
    if not isinstance(d, int | np.integer) or isinstance(d, bool) or d < minimum:
        raise ValueError(f"`d` must be an int >= {minimum} for design '{name}'; got {d!r}")


def _trim(v: np.ndarray, eta: float) -> np.ndarray:
    return np.clip(v, eta, 1.0 - eta)


def _softplus(v: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, v)


def _nie_wager(
    setup: str, n: int, d: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Covariates, b(x), e(x), tau(x) of Nie and Wager's setup A-D."""
    if setup == "A":
        x = rng.uniform(size=(n, d))
        b = np.sin(np.pi * x[:, 0] * x[:, 1]) + 2 * (x[:, 2] - 0.5) ** 2 + x[:, 3] + 0.5 * x[:, 4]
        e = _trim(np.sin(np.pi * x[:, 0] * x[:, 1]), 0.1)
        tau = (x[:, 0] + x[:, 1]) / 2
    else:
        x = rng.normal(size=(n, d))
        if setup == "B":
            b = np.maximum.reduce([np.zeros(n), x[:, 0] + x[:, 1], x[:, 2]]) + np.maximum(
                0.0, x[:, 3] + x[:, 4]
            )
            e = np.full(n, 0.5)
            tau = x[:, 0] + _softplus(x[:, 1])
        elif setup == "C":
            b = 2 * _softplus(x[:, 0] + x[:, 1] + x[:, 2])
            e = 1 / (1 + np.exp(x[:, 1] + x[:, 2]))
            tau = np.ones(n)
        else:
            first = np.maximum(0.0, x[:, 0] + x[:, 1] + x[:, 2])
            second = np.maximum(0.0, x[:, 3] + x[:, 4])
            b = (first + second) / 2
            e = 1 / (1 + np.exp(-x[:, 0]) + np.exp(-x[:, 1]))
            tau = first - second
    return x, b, e, tau


def nie_wager(
    setup: str, n: int = 1000, d: int = 6, sigma: float = 1.0, *, random_state: int = 0
) -> DesignData:
    """Draw Nie and Wager's (2021) setup A, B, C or D (module docstring).

    Parameters
    ----------
    setup : {"A", "B", "C", "D"}
    n : int
        Units (>= 50).
    d : int
        Covariates (>= 5; the formulas use the first five).
    sigma : float
        Noise standard deviation (> 0).
    random_state : int

    Returns
    -------
    DesignData

    Raises
    ------
    ValueError
        On an unknown setup, ``n < 50``, ``d < 5`` or ``sigma <= 0``.
    """
    name = f"nw_{str(setup).lower()}"
    if setup not in ("A", "B", "C", "D"):
        raise ValueError(f"`setup` must be one of 'A', 'B', 'C', 'D'; got {setup!r}")
    _check_size(name, n, 50)
    _check_dim(name, d, 5)
    if not sigma > 0:
        raise ValueError(f"`sigma` must be > 0; got {sigma!r}")
    rng = np.random.default_rng(random_state)
    x, b, e, tau = _nie_wager(setup, n, d, rng)
    t = (rng.uniform(size=n) < e).astype(np.float64)
    y = b + (t - 0.5) * tau + sigma * rng.normal(size=n)
    return DesignData(
        name=name,
        y=y,
        t=t,
        x=x,
        w=np.empty((n, 0)),
        tau=tau,
        m=b + (e - 0.5) * tau,
        e=e,
        clusters=np.arange(n),
        binary=True,
        x_names=[f"x{j + 1}" for j in range(d)],
    )


def wager_athey(n: int = 2000, d: int = 6, *, random_state: int = 0) -> DesignData:
    """Draw Wager and Athey's (2018) design with heterogeneous effects (module docstring).

    Parameters
    ----------
    n : int
        Units (>= 50).
    d : int
        Covariates (>= 2).
    random_state : int

    Raises
    ------
    ValueError
        If ``n < 50`` or ``d < 2``.
    """
    _check_size("wa", n, 50)
    _check_dim("wa", d, 2)
    rng = np.random.default_rng(random_state)
    x = rng.uniform(size=(n, d))

    def s(v: np.ndarray) -> np.ndarray:
        return 1 + 1 / (1 + np.exp(-20 * (v - 1 / 3)))

    tau = s(x[:, 0]) * s(x[:, 1])
    e = np.full(n, 0.5)
    t = (rng.uniform(size=n) < e).astype(np.float64)
    y = (t - 0.5) * tau + rng.normal(size=n)
    return DesignData(
        name="wa",
        y=y,
        t=t,
        x=x,
        w=np.empty((n, 0)),
        tau=tau,
        m=(e - 0.5) * tau,
        e=e,
        clusters=np.arange(n),
        binary=True,
        x_names=[f"x{j + 1}" for j in range(d)],
    )


IHDP_COLUMNS = [
    "bw", "b.head", "preterm", "birth.o", "nnhealth", "momage", "sex", "twin", "b.marr",
    "mom.lths", "mom.hs", "mom.scoll", "cig", "first", "booze", "drugs", "work.dur",
    "prenatal", "site1", "site2", "site3", "site4", "site5", "site6", "site7",
]  # fmt: skip


def ihdp_path() -> Path:
    """Where econml ships the IHDP covariates (``econml/data/ihdp/sim.csv``)."""
    import econml

    return Path(econml.__file__).resolve().parent / "data" / "ihdp" / "sim.csv"


def _ihdp_covariates() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Treatment, covariates (intercept first) and momwhite, as econml prepares them."""
    raw = pd.read_csv(ihdp_path())
    kept = raw[~((raw["treat"] == 1) & (raw["momwhite"] == 0))]
    x = kept[IHDP_COLUMNS].to_numpy(dtype=np.float64)
    x[:, :6] = (x[:, :6] - x[:, :6].mean(axis=0)) / x[:, :6].std(axis=0)
    x[:, 13] += 1  # `first` in {1, 2}, as in Hill (2011)
    x = np.column_stack([np.ones(len(x)), x])
    return kept["treat"].to_numpy(dtype=np.float64), x, kept["momwhite"].to_numpy(np.float64)


def ihdp(*, random_state: int = 0) -> DesignData:
    """Draw IHDP response surface B (Hill, 2011) on econml's covariates (module docstring).

    ``beta`` and the noise are drawn anew for every ``random_state``; covariates and
    treatment are the study's. The returned ``x`` has no intercept column.
    """
    t, x1, white = _ihdp_covariates()
    n, k = x1.shape
    rng = np.random.default_rng(random_state)
    beta = rng.choice([0.0, 0.1, 0.2, 0.3, 0.4], size=k, p=[0.6, 0.1, 0.1, 0.1, 0.1])
    offset = np.full(k, 0.5)
    offset[0] = 0.0
    mu0 = np.exp((x1 + offset) @ beta)
    omega = float(np.mean((x1 @ beta - mu0)[t == 1])) - 4.0
    mu1 = x1 @ beta - omega
    tau = mu1 - mu0
    y = np.where(t == 1, mu1, mu0) + rng.normal(size=n)
    share = float(t[white == 1].mean())
    e = share * white
    return DesignData(
        name="ihdp",
        y=y,
        t=t,
        x=x1[:, 1:],
        w=white[:, None],
        tau=tau,
        m=mu0 + e * tau,
        e=e,
        clusters=np.arange(n),
        binary=True,
        x_names=list(IHDP_COLUMNS),
        w_names=["momwhite"],
    )


HARD_TABLE = {"confounding": 2.0, "heterogeneity": 0.5, "noise": 1.0}


def synthetic_table(
    n: int = 2000, n_clusters: int = 50, *, hard: bool = False, random_state: int = 0
) -> DesignData:
    """Draw vaer's synthetic firm table (default or hard setting) as a design.

    Parameters
    ----------
    n : int
        Firms (>= 200).
    n_clusters : int
        Cities (>= 10).
    hard : bool
        Stronger confounding (2), weaker heterogeneity (0.5), more noise (1.0).
    random_state : int

    Raises
    ------
    ValueError
        If ``n < 200`` or ``n_clusters < 10``.
    """
    name = "table_hard" if hard else "table"
    _check_size(name, n, 200)
    if not isinstance(n_clusters, int | np.integer) or n_clusters < 10:
        raise ValueError(f"`n_clusters` must be an int >= 10; got {n_clusters!r}")
    config = SyntheticTableConfig(n_units=n, n_clusters=n_clusters, **(HARD_TABLE if hard else {}))
    table = make_synthetic_table(config, random_state=random_state)
    frame = table.frame
    x, _ = encode_features(frame, MODIFIERS)
    w, _ = encode_features(frame, [c for c in CONTROLS if c not in MODIFIERS])
    m, e = table.exact_nuisances()
    return DesignData(
        name=name,
        y=frame["resilience"].to_numpy(dtype=np.float64),
        t=frame["va_index"].to_numpy(dtype=np.float64),
        x=x.to_numpy(),
        w=w.to_numpy(),
        tau=table.truth.tau,
        m=m,
        e=e,
        clusters=pd.factorize(frame["city"], sort=True)[0].astype(np.int64),
        groups=frame["ownership"].to_numpy(),
        binary=False,
        x_names=list(x.columns),
        w_names=list(w.columns),
    )


Design = Callable[[int], DesignData]

#: Accuracy-benchmark designs at their benchmark sizes, each a function of the seed.
DESIGNS: dict[str, Design] = {
    "nw_a": lambda seed: nie_wager("A", n=1000, random_state=seed),
    "nw_b": lambda seed: nie_wager("B", n=1000, random_state=seed),
    "nw_c": lambda seed: nie_wager("C", n=1000, random_state=seed),
    "nw_d": lambda seed: nie_wager("D", n=1000, random_state=seed),
    "wa": lambda seed: wager_athey(n=2000, random_state=seed),
    "ihdp": lambda seed: ihdp(random_state=seed),
    "table": lambda seed: synthetic_table(random_state=seed),
    "table_hard": lambda seed: synthetic_table(hard=True, random_state=seed),
}


def draw(name: str, seed: int) -> DesignData:
    """Draw design ``name`` with ``seed``.

    Raises
    ------
    ValueError
        If ``name`` is not a known design (the message lists them).
    """
    if name not in DESIGNS:
        raise ValueError(f"unknown design {name!r}; known designs: {', '.join(DESIGNS)}")
    return DESIGNS[name](seed)
