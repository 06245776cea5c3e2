"""vaer and its peers fitted on the same arrays of a benchmark design.

Every tool gets the same ``(y, t, x, w)`` of one :class:`designs.DesignData` draw and
returns a :class:`PeerResult`: per-unit effects (where the tool gives them), the ATE with
its 95% interval, GATEs with intervals (designs with groups), and the wall time of the fit.
All tools run on one core (``n_jobs=1``) and with a fixed ``random_state``.

Tools
-----
``vaer_cf``, ``vaer_cf_nobase``, ``vaer_linear``
    vaer's ``causal_forest_dml`` with its defaults, the same forest with
    ``linear_base: false``, and ``linear_dml``, through one call of
    :func:`vaer.estimators.fit.fit_estimators` (shared LightGBM nuisances, cluster-grouped
    folds, cluster-honest out-of-sample ``tau_hat``, ATE and GATEs from doubly robust
    scores with cluster-robust SEs). The forests also give each unit's standard error
    (``EstimatorResult.tau_se``, bootstrap of little bags by cluster). Each tool's time is
    the shared nuisances' plus its own fit (out-of-sample effects and scores included).
``econml_cf``, ``econml_linear``
    Plain econml with its defaults: ``CausalForestDML()`` and ``LinearDML()`` (only
    ``random_state`` and ``n_jobs=1`` set), ``effect(X)``, ``ate_inference``, and GATEs as
    ``ate_inference`` on each group's rows.
``econml_same_cf``, ``econml_same_linear``
    econml with vaer's settings, each estimator fitting its own nuisances (vaer's
    LightGBM learners with early stopping and the linear candidate, the same
    cluster-grouped folds). The forest is econml's ``CausalForestDML`` with vaer's forest
    numbers (``n_estimators``, ``min_samples_leaf``, ``max_depth``, ``max_samples``,
    ``max_features``, ``criterion``, ``subforest_size`` = ``ci_group_size``,
    ``honest=True``), but econml draws its subsamples, honest halves and half-samples over
    *units*, not clusters, has no ``max_subsample_size`` cap and no linear base; its
    per-unit effects are its own out-of-bag ones (``oob_predict`` of the fitted forest; a
    unit in every tree's subsample, vanishingly unlikely with 400 trees, would get the
    in-sample effect). Out of bag by unit is not out of bag by cluster.
``doubleml``
    DoubleML's ``DoubleMLPLR`` (partialling out, vaer's LightGBM learners, 5 folds,
    cluster-robust with ``DoubleMLClusterData`` where the design has clusters); ATE and
    ``gate()`` (cluster-robust OLS on the orthogonal signal where the design has
    clusters, HC1 otherwise); no per-unit effects.
``grf``
    grf's causal forest through the ``skgrf`` bindings (``GRFForestCausalRegressor`` with
    grf's defaults: 2000 honest trees, its own regression-forest nuisances; the design's
    clusters where it has them), run by the
    separate peer environment's Python as a subprocess (:mod:`grf_worker`); the ATE is
    the mean of its per-unit effects (skgrf exposes no interval for it).
``oracle``
    vaer's default cluster forest (``forest_of(CausalForestDMLParams(), seed)``: the
    linear base on, as in ``vaer_cf``) fitted on the residuals of the *true* nuisance
    functions (``causal_moments(y - m, t - e)``); cluster-honest out-of-bag effects and
    their SEs (designs without clusters: each unit its own cluster). Its CATE RMSE is the
    yardstick: what vaer's forest reaches when the nuisances are known.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from designs import DesignData
from vaer.config.estimators import CausalForestDMLParams, NuisanceConfig
from vaer.config.models import ExperimentConfig
from vaer.data.design import AnalysisData
from vaer.estimators.cluster_forest import causal_moments
from vaer.estimators.fit import fit_estimators
from vaer.estimators.inference import cluster_robust_mean
from vaer.estimators.nuisance import grouped_folds, make_regressor
from vaer.estimators.registry import forest_of

Z = float(stats.norm.ppf(0.975))
#: grf's peer environment: ``benchmarks/.peers/grf`` (built by ``make bench``), or the
#: directory in the environment variable ``VAER_GRF_PEER``
GRF_PEER = Path(os.environ.get("VAER_GRF_PEER", Path(__file__).resolve().parent / ".peers" / "grf"))
GRF_PYTHON = GRF_PEER / "bin" / "python"
GRF_WORKER = Path(__file__).resolve().parent / "grf_worker.py"


@dataclass
class PeerResult:
    """One tool's estimates on one draw.

    Attributes
    ----------
    tool : str
    seconds : float
        Wall time of the fit (and of its effects and intervals).
    ate, ci_low, ci_high : float
        ATE and its 95% interval (NaN where the tool gives none).
    tau_hat : ndarray of shape (n,) or None
        Per-unit effects, or None if the tool gives none.
    tau_se : ndarray of shape (n,) or None
        Standard error of each unit's ``tau_hat`` as an estimate of its effect, or None
        if the tool gives none (vaer's and the oracle's forests give one).
    gates : DataFrame or None
        Per group: ``estimate``, ``ci_low``, ``ci_high`` (index = group label).
    note : str
        Why something is missing.
    extra : dict
        Further numbers of the tool (e.g. grf's subprocess wall time).
    """

    tool: str
    seconds: float
    ate: float
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    tau_hat: np.ndarray | None = None
    gates: pd.DataFrame | None = None
    note: str = ""
    tau_se: np.ndarray | None = None
    extra: dict[str, float] = field(default_factory=dict)


def _has_clusters(data: DesignData) -> bool:
    return len(np.unique(data.clusters)) < data.n


def _w_or_none(data: DesignData) -> np.ndarray | None:
    return data.w if data.w.shape[1] else None


def _score_gates(scores: np.ndarray, data: DesignData) -> pd.DataFrame | None:
    if data.groups is None:
        return None
    rows = {}
    for label in np.unique(data.groups):
        idx = data.groups == label
        mean = cluster_robust_mean(scores[idx], data.clusters[idx])
        rows[label] = (mean.estimate, mean.ci_low, mean.ci_high)
    return pd.DataFrame.from_dict(rows, orient="index", columns=["estimate", "ci_low", "ci_high"])


def _econml_gates(model: Any, data: DesignData) -> pd.DataFrame | None:
    if data.groups is None:
        return None
    rows = {}
    for label in np.unique(data.groups):
        summary = model.ate_inference(X=data.x[data.groups == label])
        est, se = float(np.ravel(summary.mean_point)[0]), float(np.ravel(summary.stderr_mean)[0])
        rows[label] = (est, est - Z * se, est + Z * se)
    return pd.DataFrame.from_dict(rows, orient="index", columns=["estimate", "ci_low", "ci_high"])


def _econml_ate(model: Any, x: np.ndarray) -> tuple[float, float, float]:
    summary = model.ate_inference(X=x)
    est, se = float(np.ravel(summary.mean_point)[0]), float(np.ravel(summary.stderr_mean)[0])
    return est, est - Z * se, est + Z * se


def analysis_data(data: DesignData) -> AnalysisData:
    """The design as vaer's :class:`~vaer.data.design.AnalysisData` (x: modifiers, w: controls)."""
    x_names = data.x_names or [f"x{j}" for j in range(data.x.shape[1])]
    w_names = data.w_names or [f"w{j}" for j in range(data.w.shape[1])]
    groups = pd.DataFrame({"group": data.groups}) if data.groups is not None else pd.DataFrame()
    return AnalysisData(
        units=np.arange(data.n),
        y=data.y,
        t=data.t,
        x=pd.DataFrame(data.x, columns=x_names),
        w=pd.DataFrame(data.w, columns=w_names),
        clusters=np.asarray(data.clusters, dtype=np.int64),
        firm_types=groups,
    )


VAER_TOOLS = {
    "vaer_cf": {"kind": "causal_forest_dml", "params": {"per_firm_intervals": True}},
    "vaer_cf_base": {
        "kind": "causal_forest_dml",
        "name": "causal_forest_dml_base",
        "params": {"linear_base": True, "per_firm_intervals": True},
    },
    "vaer_cf_nobase": {
        "kind": "causal_forest_dml",
        "name": "causal_forest_dml_nobase",
        "params": {"linear_base": False, "per_firm_intervals": True},
    },
    "vaer_linear": {"kind": "linear_dml"},
}
"""vaer's estimators in :func:`run_vaer`, by tool: the default forest (``linear_base:
auto``), the same forest always with and always without the linear base, and linear
DML. The forests print their per-firm intervals (``per_firm_intervals``, off by default)
so that their coverage can be measured."""


def vaer_specs(estimators: list[dict[str, Any]] | None = None) -> list[Any]:
    """Validated estimator specs of ``estimators`` (default: vaer's default estimators,
    ``causal_forest_dml`` and ``linear_dml``)."""
    raw = estimators or [{"kind": "causal_forest_dml"}, {"kind": "linear_dml"}]
    roles = {"unit": "u", "outcome": "y", "treatment": "t", "modifiers": ["x"]}
    config = ExperimentConfig.model_validate({"name": "bench", "roles": roles, "estimators": raw})
    return list(config.estimators)


def run_vaer(
    data: DesignData,
    seed: int,
    nuisance: NuisanceConfig | None = None,
    tools: list[str] | None = None,
) -> list[PeerResult]:
    """vaer's estimators of :data:`VAER_TOOLS` (default: all three) from one
    ``fit_estimators`` call on shared nuisances.

    Each tool's ``seconds`` is the shared nuisances' time plus the estimator's own fit
    (its out-of-sample effects and scores included); ``tau_se`` is the per-unit SE where
    the estimator gives a valid one (forests), else None.
    """
    names = tools or list(VAER_TOOLS)
    specs = vaer_specs([VAER_TOOLS[name] for name in names])
    result = fit_estimators(
        analysis_data(data), specs, nuisance or NuisanceConfig(), random_state=seed
    )
    out = []
    for est, tool in zip(result.estimators, names, strict=True):
        se = np.asarray(est.tau_se, dtype=np.float64)
        out.append(
            PeerResult(
                tool=tool,
                seconds=result.nuisance_seconds + est.fit_seconds,
                ate=est.ate.estimate,
                ci_low=est.ate.ci_low,
                ci_high=est.ate.ci_high,
                tau_hat=np.asarray(est.tau_hat),
                gates=_score_gates(np.asarray(est.scores), data),
                tau_se=se if est.interval == "firm" else None,
            )
        )
    return out


def _econml_oob(model: Any, x: np.ndarray) -> np.ndarray:
    """Out-of-bag effects of a fitted ``CausalForestDML`` from its forest's own
    ``oob_predict`` (in-sample effect for a unit no tree left out)."""
    forest = model.model_final_
    oob = np.asarray(forest.oob_predict(x), dtype=np.float64).reshape(len(x), -1)[:, 0]
    missing = np.isnan(oob)
    if missing.any():
        oob[missing] = np.asarray(model.effect(x[missing]), dtype=np.float64).ravel()
    return oob


def _timed_econml(tool: str, build: Callable[[], Any], data: DesignData, oob: bool) -> PeerResult:
    started = time.perf_counter()
    model = build()
    model.fit(data.y, data.t, X=data.x, W=_w_or_none(data), groups=None)
    tau = _econml_oob(model, data.x) if oob else np.asarray(model.effect(data.x)).ravel()
    ate, lo, hi = _econml_ate(model, data.x)
    gates = _econml_gates(model, data)
    return PeerResult(tool, time.perf_counter() - started, ate, lo, hi, tau, gates)


def run_econml_defaults(data: DesignData, seed: int) -> list[PeerResult]:
    """Plain econml: ``CausalForestDML()`` and ``LinearDML()`` with their defaults."""
    from econml.dml import CausalForestDML, LinearDML

    return [
        _timed_econml(
            "econml_cf", lambda: CausalForestDML(n_jobs=1, random_state=seed), data, oob=False
        ),
        _timed_econml("econml_linear", lambda: LinearDML(random_state=seed), data, oob=False),
    ]


def econml_same_forest(data: DesignData, seed: int) -> Any:
    """An unfitted econml ``CausalForestDML`` with vaer's learners, cluster-grouped folds and
    forest numbers (module docstring: econml subsamples units, not clusters)."""
    from econml.dml import CausalForestDML

    params = CausalForestDMLParams()
    nuisance = NuisanceConfig()
    return CausalForestDML(
        model_y=make_regressor(nuisance, seed),
        model_t=make_regressor(nuisance, seed),
        cv=grouped_folds(data.clusters, params.cv, seed),
        n_estimators=params.n_estimators,
        min_samples_leaf=params.min_samples_leaf,
        max_depth=params.max_depth,
        max_samples=params.max_samples,
        max_features=params.max_features,
        criterion=params.criterion,
        subforest_size=params.ci_group_size,
        honest=True,
        n_jobs=1,
        random_state=seed,
    )


def run_econml_same(data: DesignData, seed: int) -> list[PeerResult]:
    """econml with vaer's learners, folds and forest numbers, each estimator fitting its
    own nuisances; the forest's effects are its out-of-bag ones."""
    from econml.dml import LinearDML

    params = CausalForestDMLParams()
    nuisance = NuisanceConfig()

    def linear() -> Any:
        return LinearDML(
            model_y=make_regressor(nuisance, seed),
            model_t=make_regressor(nuisance, seed),
            cv=grouped_folds(data.clusters, params.cv, seed),
            random_state=seed,
        )

    return [
        _timed_econml("econml_same_cf", lambda: econml_same_forest(data, seed), data, oob=True),
        _timed_econml("econml_same_linear", linear, data, oob=False),
    ]


def run_doubleml(data: DesignData, seed: int) -> PeerResult:
    """DoubleML's partially linear model: ATE, and GATEs where the design has groups."""
    import doubleml as dml

    # DoubleML draws its folds from numpy's global generator and takes no seed
    np.random.seed(seed)  # noqa: NPY002
    started = time.perf_counter()
    features = np.column_stack([data.x, data.w])
    names = [f"f{j}" for j in range(features.shape[1])]
    frame = pd.DataFrame(features, columns=names).assign(y=data.y, t=data.t)
    clustered = _has_clusters(data)
    if clustered:
        frame["cluster"] = data.clusters
        dml_data: Any = dml.DoubleMLClusterData(
            frame, y_col="y", d_cols="t", cluster_cols="cluster", x_cols=names
        )
    else:
        dml_data = dml.DoubleMLData(frame, y_col="y", d_cols="t", x_cols=names)
    nuisance = NuisanceConfig()
    model = dml.DoubleMLPLR(
        dml_data, make_regressor(nuisance, seed), make_regressor(nuisance, seed), n_folds=5
    )
    model.fit()
    ci = model.confint(level=0.95).to_numpy()[0]
    gates = None
    note = "" if clustered else "no clusters in this design: heteroskedasticity-robust SEs"
    if data.groups is not None:
        try:
            dummies = pd.get_dummies(pd.Series(data.groups)).astype(bool)
            robust = (
                {"cov_type": "cluster", "cov_kwds": {"groups": data.clusters}}
                if clustered
                else {"cov_type": "HC1"}
            )
            blp = model.gate(groups=dummies, **robust)
            gci = blp.confint(level=0.95)
            gates = pd.DataFrame(
                {
                    "estimate": np.asarray(blp.coef, dtype=np.float64),
                    "ci_low": gci.iloc[:, 0].to_numpy(dtype=np.float64),
                    "ci_high": gci.iloc[:, -1].to_numpy(dtype=np.float64),
                },
                index=dummies.columns,
            )
        except Exception as exc:  # a peer that cannot do something is reported, not fatal
            note = f"gate() failed: {type(exc).__name__}: {exc}"
    return PeerResult(
        "doubleml",
        time.perf_counter() - started,
        float(model.coef[0]),
        float(ci[0]),
        float(ci[1]),
        None,
        gates,
        note,
    )


def grf_available() -> bool:
    """Whether the grf peer environment is complete (``make bench`` builds it): its
    Python and skgrf's compiled grf extension are there."""
    site = GRF_PEER / "lib" / "python3.11" / "site-packages" / "skgrf"
    return GRF_PYTHON.is_file() and any(site.glob("grf.cpython-*.so"))


def run_grf(data: DesignData, seed: int, timeout: float = 3600.0) -> PeerResult:
    """grf's causal forest (skgrf) in the peer environment, as a subprocess.

    Raises
    ------
    RuntimeError
        If the peer environment is missing or the worker fails.
    """
    if not grf_available():
        raise RuntimeError(f"grf peer environment missing at {GRF_PYTHON.parent.parent}")
    with tempfile.TemporaryDirectory(prefix="vaer-grf-") as tmp:
        inputs, outputs = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        cluster = data.clusters if _has_clusters(data) else np.full(data.n, -1)
        np.savez(
            inputs,
            x=np.column_stack([data.x, data.w]),
            y=data.y,
            t=data.t,
            cluster=np.asarray(cluster, dtype=np.int64),
            seed=seed,
        )
        started = time.perf_counter()
        done = subprocess.run(
            [str(GRF_PYTHON), str(GRF_WORKER), str(inputs), str(outputs)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"grf worker failed: {done.stderr.strip()[-500:]}")
        out = np.load(outputs)
        tau = np.asarray(out["tau"], dtype=np.float64)
        fit_seconds = float(out["seconds"])
    return PeerResult(
        "grf",
        fit_seconds,
        float(np.mean(tau)),
        tau_hat=tau,
        note="ATE = mean of grf's effects (no interval from skgrf)",
        extra={"subprocess_seconds": wall},
    )


def run_oracle(data: DesignData, seed: int) -> PeerResult:
    """vaer's default cluster forest on the residuals of the true nuisance functions:
    cluster-honest out-of-bag effects and their SEs (each unit its own cluster where the
    design has none)."""
    started = time.perf_counter()
    moments = causal_moments(data.y - data.m, data.t - data.e)
    forest = forest_of(CausalForestDMLParams(), seed)
    forest.fit(data.x, moments, data.clusters)
    tau, variance = forest.oob_predict_and_var(data.x, data.clusters)
    return PeerResult(
        "oracle",
        time.perf_counter() - started,
        float(np.mean(tau)),
        tau_hat=tau,
        tau_se=np.sqrt(variance),
    )


TOOLS = [
    "vaer_cf",
    "vaer_cf_base",
    "vaer_cf_nobase",
    "vaer_linear",
    "econml_cf",
    "econml_linear",
    "econml_same_cf",
    "econml_same_linear",
    "doubleml",
    "grf",
    "oracle",
]


STEPS = ["vaer", "econml", "econml_same", "doubleml", "oracle", "grf"]
"""Groups of tools run together: ``vaer`` gives three tools, ``econml`` and
``econml_same`` two each."""

STEP_TOOLS = {
    "vaer": list(VAER_TOOLS),
    "econml": ["econml_cf", "econml_linear"],
    "econml_same": ["econml_same_cf", "econml_same_linear"],
    "doubleml": ["doubleml"],
    "oracle": ["oracle"],
    "grf": ["grf"],
}


def run_all(
    data: DesignData, seed: int, steps: list[str] | None = None
) -> tuple[list[PeerResult], dict[str, str]]:
    """The chosen tools (default: all of :data:`STEPS`) on one draw.

    A tool that fails is left out and its error returned.

    Returns
    -------
    results : list of PeerResult
    failures : dict
        Step -> error message.
    """
    runners: dict[str, Callable[[], list[PeerResult] | PeerResult]] = {
        "vaer": lambda: run_vaer(data, seed),
        "econml": lambda: run_econml_defaults(data, seed),
        "econml_same": lambda: run_econml_same(data, seed),
        "doubleml": lambda: run_doubleml(data, seed),
        "oracle": lambda: run_oracle(data, seed),
        "grf": lambda: run_grf(data, seed),
    }
    results: list[PeerResult] = []
    failures: dict[str, str] = {}
    for name in steps or STEPS:
        try:
            out = runners[name]()
        except Exception as exc:  # a failing peer is reported in RESULTS.md, not fatal
            failures[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
            continue
        results.extend(out if isinstance(out, list) else [out])
    return results, failures
