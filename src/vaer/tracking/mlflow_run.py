"""The MLflow run handle: everything vaer logs goes through :class:`TrackedRun`.

Every call names its run explicitly (``MlflowClient`` with the run id), so a run can be
logged to from any process that knows its id: a sweep's parent run is never the
"active" run, and a variant started in another process (a later compute backend) links
itself to the parent by ``parent_run_id`` alone. Only :func:`mlflow.pyfunc.log_model`
needs the fluent active run, which :func:`tracked_run` provides in its own process.

A run ends FINISHED, FAILED (an exception) or KILLED (Ctrl-C / SIGINT, or SIGTERM turned
into an interrupt by the CLI); the reason is kept as the tags ``error`` and
``error_type`` and the traceback as the artifact ``error.txt``. No run is left RUNNING.
"""

from __future__ import annotations

import json
import math
import re
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vaer.tracking.store import ensure_experiment, resolve_tracking_uri, retry_busy

MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 5000
PARAM_BATCH = 100
METRIC_BATCH = 1000
MAX_TABLE_ROWS = 100_000
INTERRUPTED = "interrupted (SIGINT / Ctrl-C)"

_BAD_KEY_CHARS = re.compile(r"[^\w.\- ]")


def metric_key(name: str) -> str:
    """A valid MLflow metric/param name: characters other than letters, digits, ``_ . - ``
    and space become ``_`` (``gate.size=large`` -> ``gate.size_large``), at most 250 long."""
    cleaned = _BAD_KEY_CHARS.sub("_", str(name)).strip() or "_"
    return cleaned[:MAX_KEY]


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mapping -> ``{"a.b.c": "value"}`` with lists of scalars as JSON strings.

    Lists of mappings (e.g. ``estimators``) are flattened by index: ``estimators.0.kind``.
    """
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list) and any(isinstance(v, Mapping) for v in value):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    flat.update(flatten(item, f"{name}.{index}."))
                else:
                    flat[f"{name}.{index}"] = str(item)
        elif isinstance(value, list):
            flat[name] = json.dumps(value, default=str)
        else:
            flat[name] = str(value)
    return flat


def finite_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Keep the values that are finite numbers, under valid metric names."""
    clean: dict[str, float] = {}
    for key, value in metrics.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            clean[metric_key(key)] = number
    return clean


@dataclass
class TrackedRun:
    """Handle on one MLflow run; every method logs to that run by id.

    Attributes
    ----------
    run_id, run_name, experiment_id, uri : str
    parent_run_id : str or None
        The sweep's parent run, for a variant.
    """

    run_id: str
    run_name: str
    experiment_id: str
    uri: str
    parent_run_id: str | None = None
    _client: Any = field(default=None, init=False, repr=False, compare=False)

    @property
    def client(self) -> Any:
        """An ``MlflowClient`` on this run's store."""
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log parameters (values cut to 6000 characters), 100 per request."""
        from mlflow.entities import Param

        items = [
            Param(metric_key(k), str(v)[:MAX_PARAM_VALUE])
            for k, v in {metric_key(k): v for k, v in params.items()}.items()
        ]
        for start in range(0, len(items), PARAM_BATCH):
            retry_busy(
                self.client.log_batch, self.run_id, params=items[start : start + PARAM_BATCH]
            )

    def log_metrics(self, metrics: Mapping[str, Any], step: int = 0) -> None:
        """Log every finite number in ``metrics``; None, NaN, inf and non-numbers are skipped."""
        from mlflow.entities import Metric

        clean = finite_metrics(metrics)
        now = int(time.time() * 1000)
        items = [Metric(k, v, now, step) for k, v in clean.items()]
        for start in range(0, len(items), METRIC_BATCH):
            retry_busy(
                self.client.log_batch, self.run_id, metrics=items[start : start + METRIC_BATCH]
            )

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags (values cut to 5000 characters)."""
        from mlflow.entities import RunTag

        items = [RunTag(k, str(v)[:MAX_TAG_VALUE]) for k, v in tags.items()]
        for start in range(0, len(items), PARAM_BATCH):
            retry_busy(self.client.log_batch, self.run_id, tags=items[start : start + PARAM_BATCH])

    def log_artifacts(self, folder: Path, artifact_path: str | None = None) -> None:
        """Upload every file under ``folder``."""
        retry_busy(self.client.log_artifacts, self.run_id, str(folder), artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        """Store ``text`` as the artifact ``artifact_file``."""
        retry_busy(self.client.log_text, self.run_id, text, artifact_file)

    def log_table(self, frame: pd.DataFrame, name: str) -> bool:
        """Log ``frame`` as the MLflow table ``tables/<name>.json`` (shown in the UI).

        Tables longer than 100,000 rows are skipped (their CSV is still an artifact).

        Returns
        -------
        bool
            Whether the table was logged.
        """
        if len(frame) > MAX_TABLE_ROWS:
            return False
        data = frame.reset_index(drop=True)
        data.columns = [str(c) for c in data.columns]
        retry_busy(
            self.client.log_table, self.run_id, data=data, artifact_file=f"tables/{name}.json"
        )
        return True

    def log_dataset(
        self,
        frame: pd.DataFrame,
        *,
        name: str,
        source: str,
        digest_tags: Mapping[str, str],
        targets: str | None = None,
        context: str = "analysis",
    ) -> None:
        """Record the input table as an MLflow dataset (schema, row count, digest).

        Parameters
        ----------
        frame : DataFrame
            The analysis table as read (one row per unit).
        name : str
            Dataset name shown in the UI.
        source : str
            A file path, or a description of a generator.
        digest_tags : mapping
            Extra facts kept with a generated (non-file) source, e.g. its fingerprint.
        targets : str, optional
            The outcome column.
        context : str
            The dataset's role in the run.
        """
        from mlflow.data.code_dataset_source import CodeDatasetSource
        from mlflow.data.pandas_dataset import from_pandas
        from mlflow.entities import DatasetInput, InputTag

        path = Path(source)
        origin: Any = (
            str(path.resolve())
            if path.is_file()
            else CodeDatasetSource(tags={"generator": source, **digest_tags})
        )
        dataset = from_pandas(frame, source=origin, name=name, targets=targets)
        entity = DatasetInput(
            dataset=dataset._to_mlflow_entity(),
            tags=[InputTag(key="mlflow.data.context", value=context)],
        )
        retry_busy(self.client.log_inputs, self.run_id, datasets=[entity])

    def log_cate_model(self, **kwargs: Any) -> str | None:
        """Log the run's CATE models as an MLflow pyfunc model; return its URI.

        Keyword arguments go to :func:`vaer.tracking.cate_model.log_cate_model`.

        Raises
        ------
        RuntimeError
            If this run is not the active MLflow run of this process.
        """
        import mlflow

        from vaer.tracking.cate_model import log_cate_model

        active = mlflow.active_run()
        if active is None or active.info.run_id != self.run_id:
            raise RuntimeError(
                f"the model of run {self.run_id} must be logged in the process that runs it"
            )
        return log_cate_model(**kwargs)

    def terminate(self, status: str) -> None:
        """Mark the run ended with ``status`` (FINISHED, FAILED or KILLED)."""
        retry_busy(self.client.set_terminated, self.run_id, status)

    def log_child(
        self, name: str, metrics: Mapping[str, Any], tables: Mapping[str, pd.DataFrame]
    ) -> str | None:
        """Log a finished nested step (e.g. tuning) as a child run of this run.

        Parameters
        ----------
        name : str
            The child run's name, also its ``vaer.step`` tag.
        metrics : mapping
            Metrics of the step.
        tables : mapping
            Tables of the step, logged as CSV artifacts and MLflow tables.

        Returns
        -------
        str
            The child run's id.
        """
        created = retry_busy(
            self.client.create_run,
            self.experiment_id,
            run_name=f"{self.run_name}/{name}",
            tags={"mlflow.parentRunId": self.run_id, "vaer.step": name},
        )
        child = TrackedRun(
            run_id=created.info.run_id,
            run_name=created.info.run_name,
            experiment_id=self.experiment_id,
            uri=self.uri,
            parent_run_id=self.run_id,
        )
        child.log_metrics(metrics)
        for table_name, frame in tables.items():
            retry_busy(
                self.client.log_text,
                child.run_id,
                frame.to_csv(index=False),
                f"tables/{table_name}.csv",
            )
            child.log_table(frame, table_name)
        child.terminate("FINISHED")
        return child.run_id


def record_error(run: TrackedRun, exc: BaseException) -> str:
    """Tag ``run`` with why it stopped, store the traceback, end it; return the status.

    KeyboardInterrupt ends the run KILLED; any other exception FAILED.
    """
    status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
    reason = str(exc) or (INTERRUPTED if status == "KILLED" else type(exc).__name__)
    try:
        run.set_tags({"error": reason, "error_type": type(exc).__name__})
        run.log_text("".join(traceback.format_exception(exc)), "error.txt")
    finally:
        run.terminate(status)
    return status


@contextmanager
def tracked_run(
    experiment: str,
    run_name: str,
    *,
    uri: str | None = None,
    tags: Mapping[str, str] | None = None,
    parent_run_id: str | None = None,
) -> Iterator[TrackedRun]:
    """Start an MLflow run and end it FINISHED, FAILED (exception) or KILLED (Ctrl-C).

    Parameters
    ----------
    experiment : str
        Experiment name (created if needed).
    run_name : str
    uri : str, optional
        Tracking URI; see :func:`vaer.tracking.store.resolve_tracking_uri`.
    tags : mapping, optional
    parent_run_id : str, optional
        Link the run as a child of this run (``mlflow.parentRunId``), e.g. a sweep's
        parent; works from any process, with or without an active run.

    Yields
    ------
    TrackedRun
        The run, active in this process for the duration of the block.
    """
    import mlflow

    resolved = resolve_tracking_uri(uri)
    experiment_id = ensure_experiment(resolved, experiment)
    if parent_run_id is not None:
        active = mlflow.active_run()
        if active is not None and active.info.run_id != parent_run_id:
            raise RuntimeError(
                f"run {active.info.run_id} is active; end it before starting a child of "
                f"{parent_run_id}"
            )
    started = retry_busy(
        mlflow.start_run,
        experiment_id=experiment_id,
        run_name=run_name,
        tags=dict(tags or {}),
        nested=parent_run_id is not None or mlflow.active_run() is not None,
        parent_run_id=parent_run_id,
        log_system_metrics=False,
    )
    handle = TrackedRun(
        run_id=started.info.run_id,
        run_name=started.info.run_name or run_name,
        experiment_id=experiment_id,
        uri=resolved,
        parent_run_id=parent_run_id,
    )
    try:
        yield handle
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        try:
            record_error(handle, exc)
        finally:
            _pop_active(status)
        raise
    else:
        try:
            handle.terminate("FINISHED")
        finally:
            _pop_active("FINISHED")


def _pop_active(status: str) -> None:
    import mlflow

    if mlflow.active_run() is not None:
        retry_busy(mlflow.end_run, status)


@contextmanager
def parent_run(
    experiment: str,
    run_name: str,
    *,
    uri: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> Iterator[TrackedRun]:
    """A run that groups others (a sweep): created by id, never the active run.

    Children link to it with ``tracked_run(..., parent_run_id=parent.run_id)`` from this
    or any other process. It ends like :func:`tracked_run`: FINISHED, FAILED or KILLED.
    """
    from mlflow.tracking import MlflowClient
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

    resolved = resolve_tracking_uri(uri)
    experiment_id = ensure_experiment(resolved, experiment)
    client = MlflowClient(tracking_uri=resolved)
    created = retry_busy(
        client.create_run,
        experiment_id,
        tags={MLFLOW_RUN_NAME: run_name, **dict(tags or {})},
        run_name=run_name,
    )
    handle = TrackedRun(
        run_id=created.info.run_id,
        run_name=created.info.run_name or run_name,
        experiment_id=experiment_id,
        uri=resolved,
    )
    try:
        yield handle
    except BaseException as exc:
        record_error(handle, exc)
        raise
    else:
        handle.terminate("FINISHED")


class LocalRun(TrackedRun):
    """A run that is not tracked (``tracking.enabled: false``): same interface, logs nothing."""

    def log_params(self, params: Mapping[str, Any]) -> None:
        return None

    def log_metrics(self, metrics: Mapping[str, Any], step: int = 0) -> None:
        return None

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        return None

    def log_artifacts(self, folder: Path, artifact_path: str | None = None) -> None:
        return None

    def log_text(self, text: str, artifact_file: str) -> None:
        return None

    def log_table(self, frame: pd.DataFrame, name: str) -> bool:
        return False

    def log_dataset(self, frame: pd.DataFrame, **kwargs: Any) -> None:
        return None

    def log_cate_model(self, **kwargs: Any) -> str | None:
        return None

    def terminate(self, status: str) -> None:
        return None

    def log_child(
        self, name: str, metrics: Mapping[str, Any], tables: Mapping[str, pd.DataFrame]
    ) -> str | None:
        return None


@contextmanager
def untracked_run(run_name: str) -> Iterator[TrackedRun]:
    """A :class:`LocalRun` with a random id, for runs with tracking switched off."""
    import uuid

    yield LocalRun(run_id=uuid.uuid4().hex, run_name=run_name, experiment_id="", uri="")
