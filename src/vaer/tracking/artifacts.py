"""Reading a finished run's report bundle back from its MLflow artifacts (no refitting)."""

from __future__ import annotations

from pathlib import Path

from vaer.tracking.mlflow_run import resolve_tracking_uri

BUNDLE_ARTIFACTS = ("run.json", "tables")


def download_run_bundle(run_id: str, dest: Path, *, uri: str | None = None) -> Path:
    """Download ``run.json`` and ``tables/`` of run ``run_id`` into ``dest``.

    Parameters
    ----------
    run_id : str
        The MLflow run id (as printed by ``vaer run``).
    dest : Path
        Folder to download into (created if needed).
    uri : str, optional
        Tracking URI; default as in :func:`vaer.tracking.resolve_tracking_uri`.

    Returns
    -------
    Path
        ``dest``, now a bundle folder readable by ``ReportBundle.read``.

    Raises
    ------
    ValueError
        If the store has no run ``run_id``, or the run did not finish.
    FileNotFoundError
        If the run has no ``run.json`` artifact (not a vaer run, or logged before it ended).
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    resolved = resolve_tracking_uri(uri)
    client = MlflowClient(tracking_uri=resolved)
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        raise ValueError(f"no run with id '{run_id}' in the tracking store {resolved}") from exc
    if run.info.status != "FINISHED":
        raise ValueError(
            f"run '{run_id}' is {run.info.status}, not FINISHED: only finished runs have a report"
        )
    names = {item.path for item in client.list_artifacts(run_id)}
    if "run.json" not in names:
        raise FileNotFoundError(
            f"run '{run_id}' has no run.json artifact: not a vaer run with a report bundle"
        )
    dest.mkdir(parents=True, exist_ok=True)
    for name in BUNDLE_ARTIFACTS:
        if name in names:
            client.download_artifacts(run_id, name, str(dest))
    return dest
