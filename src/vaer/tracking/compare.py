"""Runs of a store as a table: for ``vaer compare`` and a sweep's summary.

One row per run with its identity (``run_id``, ``run_name``, ``experiment``, ``status``,
``start``, ``parent_run_id``, ``variant``), then metric columns, then the params that
differ between the rows shown (what was varied), named ``param:<name>``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from vaer.tracking.store import prepare_store, retry_busy

ID_COLUMNS = ["run_id", "run_name", "experiment", "status", "start", "parent_run_id", "variant"]
DEFAULT_METRICS = (
    "ate.*.estimate",
    "ate.*.se",
    "truth.*.ate_bias",
    "truth.*.cate_rmse",
    "time.total",
)
SUMMARY_METRICS = (
    "ate.*",
    "truth.*",
    "gate.*",
    "gate_test.*",
    "calibration.*",
    "test.*",
    "rate.*",
    "channel.*",
    "data.rows",
    "time.total",
    "memory.peak_rss_mb",
)
PARAM_PREFIX = "param:"


def _experiment_ids(client: Any, names: Sequence[str] | None, uri: str) -> dict[str, str]:
    experiments = retry_busy(client.search_experiments)
    by_name = {e.name: str(e.experiment_id) for e in experiments}
    if not names:
        return {i: n for n, i in by_name.items()}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(
            f"no experiment named {missing} in {uri}; have: {', '.join(sorted(by_name)) or 'none'}"
        )
    return {by_name[n]: n for n in names}


def runs_frame(
    uri: str,
    *,
    experiments: Sequence[str] | None = None,
    filter_string: str = "",
    max_results: int = 1000,
) -> pd.DataFrame:
    """Runs of ``experiments`` (all when None) matching an MLflow filter, newest first.

    Parameters
    ----------
    uri : str
        Tracking URI.
    experiments : sequence of str, optional
        Experiment names.
    filter_string : str
        MLflow search syntax, e.g. ``metrics."truth.linear_dml.ate_bias" < 0.05`` or
        ``tags.mlflow.parentRunId = '<id>'``.
    max_results : int
        At most this many runs.

    Returns
    -------
    DataFrame
        :data:`ID_COLUMNS`, then every metric (``metric name`` columns) and every param
        (``param:<name>``); empty (with the id columns) when nothing matches.

    Raises
    ------
    ValueError
        If an experiment does not exist, the filter is not valid MLflow syntax, or
        ``max_results`` < 1.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if max_results < 1:
        raise ValueError(f"`max_results` must be an int >= 1; got {max_results}")
    prepare_store(uri)  # a store being created by a run is read only once it is complete
    client = MlflowClient(tracking_uri=uri)
    ids = _experiment_ids(client, experiments, uri)
    if not ids:
        return pd.DataFrame(columns=ID_COLUMNS)
    try:
        runs = retry_busy(
            client.search_runs,
            list(ids),
            filter_string=filter_string,
            max_results=max_results,
            order_by=["attributes.start_time DESC"],
        )
    except MlflowException as exc:
        raise ValueError(f"invalid --filter '{filter_string}': {exc.message}") from exc
    rows: list[dict[str, Any]] = []
    for run in runs:
        tags = run.data.tags
        row: dict[str, Any] = {
            "run_id": run.info.run_id,
            "run_name": run.info.run_name,
            "experiment": ids.get(str(run.info.experiment_id), ""),
            "status": run.info.status,
            "start": datetime.fromtimestamp(run.info.start_time / 1000, UTC).strftime(
                "%Y-%m-%d %H:%M:%S"
            ),
            "parent_run_id": tags.get("mlflow.parentRunId", ""),
            "variant": tags.get("vaer.sweep.label", ""),
        }
        row.update(run.data.metrics)
        row.update({f"{PARAM_PREFIX}{k}": v for k, v in run.data.params.items()})
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=ID_COLUMNS)
    metrics = sorted(c for c in frame.columns if c not in ID_COLUMNS and not c.startswith("param:"))
    params = sorted(c for c in frame.columns if c.startswith(PARAM_PREFIX))
    return frame[ID_COLUMNS + metrics + params]


def metric_columns(frame: pd.DataFrame, patterns: Sequence[str]) -> list[str]:
    """Metric columns of ``frame`` matching any glob pattern, in pattern order then name."""
    candidates = [c for c in frame.columns if c not in ID_COLUMNS and not c.startswith("param:")]
    chosen: list[str] = []
    for pattern in patterns:
        chosen.extend(
            c for c in sorted(candidates) if fnmatch.fnmatchcase(c, pattern) and c not in chosen
        )
    return chosen


def varied_params(frame: pd.DataFrame) -> list[str]:
    """Param columns whose value is not the same in every row (what was varied).

    A sweep parent's own ``sweep.*`` params are left out.
    """
    params = [
        c
        for c in frame.columns
        if c.startswith(PARAM_PREFIX) and c.removeprefix(PARAM_PREFIX).split(".")[0] != "sweep"
    ]
    if len(frame) < 2:
        return []
    return [c for c in params if frame[c].astype(str).nunique(dropna=False) > 1]


def comparison_table(
    frame: pd.DataFrame, metrics: Sequence[str] = DEFAULT_METRICS, *, all_params: bool = False
) -> pd.DataFrame:
    """Select what ``vaer compare`` shows: identity, matching metrics and varied params.

    Parameters
    ----------
    frame : DataFrame
        From :func:`runs_frame`.
    metrics : sequence of str
        Glob patterns over metric names (``ate.*.estimate``).
    all_params : bool
        Show every param, not only those that vary.

    Raises
    ------
    ValueError
        If runs exist but no metric matches any pattern.
    """
    if frame.empty:
        return frame
    chosen = metric_columns(frame, metrics)
    if not chosen:
        available = metric_columns(frame, ["*"])
        raise ValueError(
            f"no metric matches {list(metrics)}; metrics of these runs include: "
            f"{', '.join(available[:20])}"
        )
    params = [c for c in frame.columns if c.startswith(PARAM_PREFIX)] if all_params else []
    params = params or varied_params(frame)
    identity = [c for c in ID_COLUMNS if c in frame.columns and frame[c].astype(str).ne("").any()]
    return frame[identity + chosen + params].reset_index(drop=True)


def sweep_summary(uri: str, experiment: str, parent_run_id: str) -> pd.DataFrame:
    """The children of a sweep's parent run: one row each, headline metrics and varied params.

    Read back from the store, so it covers variants logged by any process.
    """
    frame = runs_frame(
        uri, experiments=[experiment], filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'"
    )
    if frame.empty:
        return frame
    frame = frame.sort_values("run_name", kind="stable")
    chosen = metric_columns(frame, SUMMARY_METRICS)
    identity = ["run_id", "run_name", "status", "variant"]
    return frame[identity + chosen + varied_params(frame)].reset_index(drop=True)
