"""The tracking store: where runs go, creating it safely, and retrying a busy SQLite file.

Store: ``tracking.uri`` from the config, else ``MLFLOW_TRACKING_URI``, else a SQLite
database ``mlruns/mlflow.db`` under the working directory, with artifacts under
``mlruns/artifacts/<experiment>`` (MLflow >= 3.13 refuses the plain ``./mlruns`` file
store). A remote server (``http://...``) is used as is; its artifacts go wherever the
server puts them (``--serve-artifacts``).

Concurrency. Several processes may log to one SQLite file at once (``vaer run`` in
parallel shells, or the variants of a sweep run as separate tasks). MLflow's SQLAlchemy
store opens SQLite with the driver's default 5 s busy timeout and rollback journal, and
its first use of a new file runs schema migrations that race when two processes start
together. So :func:`ensure_experiment` creates the database, switches it to write-ahead
logging (readers no longer block the writer) and creates the experiment while holding an
exclusive file lock, and every write goes through :func:`retry_busy`, which retries a
"database is locked" error with exponential backoff.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

DEFAULT_STORE_DIR = Path("mlruns")
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
"""The MLflow 3 UI's experiment kind: model-training runs, not GenAI traces (the UI's own
"Model training" choice writes the same value). MLflow 3.17's UI has workflow navigation
switched on and ignores the tag when it picks an experiment's first page: it follows the
browser's GenAI / Model training switch (default GenAI), or :data:`WORKFLOW_QUERY` in the
URL, which ``vaer ui`` puts in the links it prints."""
WORKFLOW_QUERY = "workflowType=machine_learning"
VIEW_KEY = "vaer-headline"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
VIEW_COLUMNS = (
    "attributes.`Description`",
    "metrics.`headline.ate`",
    "metrics.`headline.ate_ci_low`",
    "metrics.`headline.ate_ci_high`",
    "metrics.`headline.top_share`",
    "attributes.`Dataset`",
)
"""A saved view of the runs table with the headline columns. MLflow 3.17's default columns
are fixed in the UI (Source, Models, Dataset; the user's choice is kept in the browser);
a saved view (an experiment tag ``mlflow.sharedViewState.<key>``) is the one setting a
store can carry: it is listed under "Views" and opened by ``?viewStateShareKey=<key>``."""
BUSY_MESSAGES = ("database is locked", "database table is locked", "database is busy")

T = TypeVar("T")


def resolve_tracking_uri(configured: str | None) -> str:
    """The tracking URI: config, then ``MLFLOW_TRACKING_URI``, then the project's SQLite store.

    Parameters
    ----------
    configured : str or None
        ``tracking.uri`` of the experiment.

    Returns
    -------
    str
        A ``sqlite:///`` URI with an absolute path, or the configured/remote URI as given.
    """
    if configured:
        return configured
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    store = DEFAULT_STORE_DIR.resolve()
    return f"sqlite:///{store / 'mlflow.db'}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, or None for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///"))


def artifact_root(uri: str, experiment: str) -> str | None:
    """Artifact location for a new experiment on a local SQLite store (next to the db).

    Returns None for remote stores, which choose their own artifact location.
    """
    db = sqlite_path(uri)
    if db is None:
        return None
    return (db.parent / "artifacts" / experiment).resolve().as_uri()


def is_busy_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or its cause) is SQLite's "database is locked" kind of error."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if any(message in str(seen).lower() for message in BUSY_MESSAGES):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def retry_busy(
    call: Callable[..., T], *args: Any, attempts: int = 10, base_delay: float = 0.05, **kwargs: Any
) -> T:
    """Call ``call(*args, **kwargs)``, retrying while SQLite reports the database busy.

    Parameters
    ----------
    call : callable
    attempts : int
        Tries in all; the delay doubles from ``base_delay`` (with jitter) up to 2 s.

    Returns
    -------
    Whatever ``call`` returns.

    Raises
    ------
    ValueError
        If ``attempts`` < 1.
    Exception
        The last error, if every try failed, or at once any error that is not "busy".
    """
    if attempts < 1:
        raise ValueError(f"`attempts` must be an int >= 1; got {attempts}")
    for attempt in range(attempts):
        try:
            return call(*args, **kwargs)
        except Exception as exc:
            if attempt == attempts - 1 or not is_busy_error(exc):
                raise
            delay = min(2.0, base_delay * 2**attempt) * (0.5 + random.random())
            time.sleep(delay)
    raise RuntimeError("unreachable")  # pragma: no cover


@contextmanager
def _store_lock(db: Path) -> Iterator[None]:
    """An exclusive lock on ``<db>.lock`` (POSIX ``flock``; no lock where unavailable)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _use_wal(db: Path) -> None:
    """Switch a SQLite database to write-ahead logging (persistent; a no-op if already on)."""
    with sqlite3.connect(db, timeout=30) as connection:
        mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() != "wal":
            connection.execute("PRAGMA journal_mode=WAL")


def prepare_store(uri: str) -> None:
    """Create (and migrate) a SQLite store under an exclusive lock, in WAL mode.

    A no-op for other stores. Safe to call from several processes at once.
    """
    from mlflow.tracking import MlflowClient

    db = sqlite_path(uri)
    if db is None:
        return
    with _store_lock(db):
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)  # creates the schema
        _use_wal(db)


def ensure_experiment(uri: str, experiment: str) -> str:
    """Create the store and the experiment if needed; return the experiment id.

    Safe to call from several processes at once: on a SQLite store, creation happens
    under an exclusive file lock. Still, call it once before any parallel fan-out so
    that the workers find everything in place.

    Parameters
    ----------
    uri : str
        Tracking URI (see :func:`resolve_tracking_uri`).
    experiment : str
        Experiment name.

    Returns
    -------
    str
        The experiment id.

    Raises
    ------
    ValueError
        If the experiment exists but is deleted.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(uri)
    db = sqlite_path(uri)
    if db is None:
        return _get_or_create(MlflowClient(tracking_uri=uri), uri, experiment)
    prepare_store(uri)
    with _store_lock(db):
        return _get_or_create(MlflowClient(tracking_uri=uri), uri, experiment)


def server_command(
    uri: str, *, host: str = "127.0.0.1", port: int = 5000, workers: int = 1
) -> list[str]:
    """The ``mlflow server`` command line that serves a SQLite store and its artifacts.

    Artifacts of new experiments go to ``<store folder>/artifacts`` (served by the
    server); experiments vaer created point at their own folders there already.

    Raises
    ------
    ValueError
        If ``uri`` is not a ``sqlite:///`` store, or ``port``/``workers`` are out of range.
    """
    import sys

    db = sqlite_path(uri)
    if db is None:
        raise ValueError(
            f"`vaer ui` serves a local SQLite store; the tracking URI is {uri}: "
            "open that server in a browser instead"
        )
    if not 1 <= port <= 65535:
        raise ValueError(f"`port` must be an int in [1, 65535]; got {port}")
    if workers < 1:
        raise ValueError(f"`workers` must be an int >= 1; got {workers}")
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        uri,
        "--artifacts-destination",
        str((db.parent / "artifacts").resolve()),
        "--serve-artifacts",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def _get_or_create(client: Any, uri: str, experiment: str) -> str:
    found = retry_busy(client.get_experiment_by_name, experiment)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            raise ValueError(
                f"experiment '{experiment}' is deleted in {uri}; restore it in the MLflow UI "
                "or choose another `tracking.experiment`"
            )
        mark_model_training(client, found)
        return str(found.experiment_id)
    try:
        return str(
            retry_busy(
                client.create_experiment,
                experiment,
                artifact_location=artifact_root(uri, experiment),
                tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND, VIEW_TAG: headline_view()},
            )
        )
    except Exception:  # another process (or server client) created it first
        found = retry_busy(client.get_experiment_by_name, experiment)
        if found is None:
            raise
        mark_model_training(client, found)
        return str(found.experiment_id)


def mark_model_training(client: Any, experiment: Any) -> None:
    """Tag ``experiment`` as holding model-training runs (unless it already has a kind)
    and give it the saved view :data:`VIEW_KEY` of the headline columns (unless present).

    The MLflow 3 UI then opens it on its runs table instead of the GenAI overview. A kind
    chosen by the user (in the UI or by tag) and a view the user edited are kept.

    Parameters
    ----------
    client : mlflow.tracking.MlflowClient
    experiment : mlflow.entities.Experiment
    """
    tags = experiment.tags or {}
    if EXPERIMENT_KIND_TAG not in tags:
        retry_busy(
            client.set_experiment_tag,
            experiment.experiment_id,
            EXPERIMENT_KIND_TAG,
            EXPERIMENT_KIND,
        )
    if VIEW_TAG not in tags:
        retry_busy(client.set_experiment_tag, experiment.experiment_id, VIEW_TAG, headline_view())


def headline_view(now_ms: int | None = None) -> str:
    """The saved runs-table view with the headline columns, as MLflow 3.17's UI stores one.

    Parameters
    ----------
    now_ms : int, optional
        Creation time in ms since the epoch (default: now).

    Returns
    -------
    str
        JSON: ``{"name", "createdAt", "updatedAt", "state"}`` with ``state`` the view's
        JSON (``selectedColumns``, newest runs first).
    """
    import json

    stamp = int(time.time() * 1000) if now_ms is None else now_ms
    state = {
        "selectedColumns": list(VIEW_COLUMNS),
        "orderByKey": "attributes.start_time",
        "orderByAsc": False,
    }
    return json.dumps(
        {"name": "vaer: headline", "createdAt": stamp, "updatedAt": stamp,
         "state": json.dumps(state)}
    )  # fmt: skip


def experiment_pages(uri: str, base_url: str, limit: int = 20) -> list[tuple[str, str]]:
    """The runs page of each active experiment with runs in a store, newest first.

    Parameters
    ----------
    uri : str
        Tracking URI of the store.
    base_url : str
        Where the UI serves it, e.g. ``http://127.0.0.1:5000``.
    limit : int
        Experiments listed at most.

    Returns
    -------
    list of (str, str)
        Experiment name and the URL of its runs table, in the Model training workflow and
        (if the experiment has it) the headline view.
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    pages = []
    for experiment in client.search_experiments(max_results=limit, order_by=["creation_time DESC"]):
        if client.search_runs([experiment.experiment_id], max_results=1):
            query = f"?{WORKFLOW_QUERY}"
            query += f"&viewStateShareKey={VIEW_KEY}" if VIEW_TAG in experiment.tags else ""
            pages.append(
                (
                    experiment.name,
                    f"{base_url}/#/experiments/{experiment.experiment_id}/runs{query}",
                )
            )
    return pages
