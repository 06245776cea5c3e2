"""The MLflow adapter: the only module of vaer that imports ``mlflow``.

Store: ``tracking.uri`` from the config, else ``MLFLOW_TRACKING_URI``, else a SQLite
database ``mlruns/mlflow.db`` under the working directory, with artifacts under
``mlruns/artifacts/`` (MLflow >= 3.13 refuses the plain ``./mlruns`` file store).
"""

from __future__ import annotations

import json
import os
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_STORE_DIR = Path("mlruns")


def resolve_tracking_uri(configured: str | None) -> str:
    """The tracking URI: config, then ``MLFLOW_TRACKING_URI``, then the project's SQLite store."""
    if configured:
        return configured
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    store = DEFAULT_STORE_DIR.resolve()
    return f"sqlite:///{store / 'mlflow.db'}"


def _artifact_root(uri: str, experiment: str) -> str | None:
    """Artifact location for a new experiment on a local SQLite store (next to the db)."""
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri.removeprefix("sqlite:///"))
    return (db.parent / "artifacts" / experiment).resolve().as_uri()


def ensure_experiment(uri: str, experiment: str) -> str:
    """Create the store and the experiment if needed; return the experiment id.

    Call this before any parallel work: SQLite schema migrations race otherwise.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return str(found.experiment_id)
    try:
        return str(
            client.create_experiment(experiment, artifact_location=_artifact_root(uri, experiment))
        )
    except Exception:  # another process created it first
        found = client.get_experiment_by_name(experiment)
        if found is None:
            raise
        return str(found.experiment_id)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mapping -> ``{"a.b.c": "value"}`` with lists of scalars as JSON strings."""
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


@dataclass
class TrackedRun:
    """Handle on an active MLflow run; methods log to it."""

    run_id: str
    run_name: str
    experiment_id: str
    uri: str

    def log_params(self, params: Mapping[str, str]) -> None:
        import mlflow

        items = {k[:250]: v[:6000] for k, v in params.items()}
        keys = list(items)
        for start in range(0, len(keys), 100):
            mlflow.log_params({k: items[k] for k in keys[start : start + 100]})

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        import math

        import mlflow

        clean = {
            k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))
        }
        if clean:
            mlflow.log_metrics(clean)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        import mlflow

        mlflow.set_tags({k: str(v)[:5000] for k, v in tags.items()})

    def log_artifacts(self, folder: Path, artifact_path: str | None = None) -> None:
        import mlflow

        mlflow.log_artifacts(str(folder), artifact_path=artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        import mlflow

        mlflow.log_text(text, artifact_file)


@contextmanager
def tracked_run(
    experiment: str, run_name: str, *, uri: str | None = None, tags: Mapping[str, str] | None = None
) -> Iterator[TrackedRun]:
    """Start an MLflow run and end it FINISHED, FAILED (exception) or KILLED (Ctrl-C).

    The error is recorded as the tags ``error`` and ``error_type`` and as the artifact
    ``error.txt`` before the run ends, so no run is left RUNNING.
    """
    import mlflow

    resolved = resolve_tracking_uri(uri)
    experiment_id = ensure_experiment(resolved, experiment)
    active = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=dict(tags or {}))
    handle = TrackedRun(
        run_id=active.info.run_id,
        run_name=active.info.run_name or run_name,
        experiment_id=experiment_id,
        uri=resolved,
    )
    try:
        yield handle
    except KeyboardInterrupt as exc:
        _record_error(exc, "KILLED")
        raise
    except BaseException as exc:
        _record_error(exc, "FAILED")
        raise
    else:
        mlflow.end_run("FINISHED")


def _record_error(exc: BaseException, status: str) -> None:
    import mlflow

    try:
        reason = str(exc) or type(exc).__name__
        mlflow.set_tags({"error": reason[:5000], "error_type": type(exc).__name__})
        mlflow.log_text("".join(traceback.format_exception(exc)), "error.txt")
    finally:
        mlflow.end_run(status)


class LocalRun(TrackedRun):
    """A run that is not tracked (``tracking.enabled: false``): same interface, logs nothing."""

    def log_params(self, params: Mapping[str, str]) -> None:
        return None

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        return None

    def set_tags(self, tags: Mapping[str, str]) -> None:
        return None

    def log_artifacts(self, folder: Path, artifact_path: str | None = None) -> None:
        return None

    def log_text(self, text: str, artifact_file: str) -> None:
        return None


@contextmanager
def untracked_run(run_name: str) -> Iterator[TrackedRun]:
    """A :class:`LocalRun` with a random id, for runs with tracking switched off."""
    import uuid

    yield LocalRun(run_id=uuid.uuid4().hex, run_name=run_name, experiment_id="", uri="")
