"""``run_experiment``: loads the data once, runs the configured stages in order
(:data:`vaer.stages.STAGES`), writes the tables and report and logs everything.

Every stage is ``stage(ctx) -> StageResult`` (:mod:`vaer.context`); the loop treats them
alike. Only the outputs every run has (the ATE table, the CATE histogram and the logged
CATE model) read the estimation result by type.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vaer.attribution import AttributionResult
from vaer.compute import Backend, Observed, check_tracking_for, get_backend
from vaer.config.loader import dump_config
from vaer.config.models import ExperimentConfig
from vaer.context import Progress, RunContext, StageResult, find_result, no_progress
from vaer.data.design import build_analysis_data
from vaer.data.loading import LoadedData
from vaer.did.stage import DidResult
from vaer.estimators.results import EstimationResult
from vaer.estimators.tune import TuneResult
from vaer.heterogeneity import HeterogeneityResult
from vaer.measures.study import load_study_data
from vaer.reporting.bundle import ReportBundle
from vaer.reporting.export import write_report
from vaer.reporting.figures import cate_histogram
from vaer.reporting.labels import ReportLabels
from vaer.robustness import RobustnessResult
from vaer.runlog import RunLog
from vaer.stages import STAGES
from vaer.tracking import (
    TrackedRun,
    flatten,
    peak_rss_mb,
    provenance,
    resolve_tracking_uri,
    tracked_run,
    untracked_run,
)
from vaer.tracking.headline import NOTE_TAG, run_headline

OnTask = Callable[[int, int], None]


@dataclass(frozen=True)
class RunResult:
    """Everything one run produced.

    Attributes
    ----------
    config : ExperimentConfig
    run_id, run_name : str
        MLflow run id and name (a random id when tracking is off).
    out_dir : Path
        Folder with ``tables/``, ``run.json`` and ``report.html``.
    report_path : Path or None
    data_summary : dict
    results : tuple of StageResult
        What each stage that ran returned, in run order (typed accessors below).
    truth : dict or None
        Every stage's accuracy against the known truth (synthetic data only).
    timings : dict
        Seconds per stage.
    model_uri : str or None
        The logged CATE model (``models:/...``), when tracked.
    labels : dict
        Every role column -> its display label (the column name when it has none).
    """

    config: ExperimentConfig
    run_id: str
    run_name: str
    out_dir: Path
    report_path: Path | None
    data_summary: dict[str, Any]
    results: tuple[StageResult, ...]
    truth: dict[str, float] | None
    timings: dict[str, float]
    model_uri: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def estimation(self) -> EstimationResult:
        """The estimation stage's result (every run has one)."""
        found = find_result(self.results, EstimationResult)
        if found is None:
            raise LookupError("this run has no estimation result")
        return found

    @property
    def tuning(self) -> TuneResult | None:
        """Tuning trials and choices (``tune.enabled``)."""
        return find_result(self.results, TuneResult)

    @property
    def heterogeneity(self) -> HeterogeneityResult | None:
        """GATEs, sorted GATES/CLAN, calibration/BLP, RATE and policy tree."""
        return find_result(self.results, HeterogeneityResult)

    @property
    def robustness(self) -> RobustnessResult | None:
        """Refuters and sensitivity analysis (``robustness.enabled``)."""
        return find_result(self.results, RobustnessResult)

    @property
    def did(self) -> DidResult | None:
        """The policy's staggered difference-in-differences (``did.enabled``)."""
        return find_result(self.results, DidResult)

    @property
    def attribution(self) -> AttributionResult | None:
        """SHAP channel attribution and mechanism tests (``attribution.enabled``)."""
        return find_result(self.results, AttributionResult)


class _Stopwatch:
    """Seconds per stage and the process's peak memory (MiB) at the end of each stage."""

    def __init__(self, progress: Progress) -> None:
        self.seconds: dict[str, float] = {}
        self.peak_mb: dict[str, float] = {}
        self._progress = progress

    def metrics(self) -> dict[str, float]:
        """``time.stage.<stage>``, ``memory.stage.<stage>.peak_rss_mb`` and the run's peak."""
        found = {f"time.stage.{k}": v for k, v in self.seconds.items()}
        found.update({f"memory.stage.{k}.peak_rss_mb": v for k, v in self.peak_mb.items()})
        found["time.total"] = sum(self.seconds.values())
        found["memory.peak_rss_mb"] = peak_rss_mb()
        return found

    @contextmanager
    def stage(self, name: str, message: str) -> Iterator[None]:
        self._progress(message)
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = time.perf_counter() - started
            self.peak_mb[name] = peak_rss_mb()


def _open_run(
    config: ExperimentConfig,
    run_name: str,
    origin: dict[str, str],
    tags: Mapping[str, str] | None,
    parent_run_id: str | None,
) -> AbstractContextManager[TrackedRun]:
    """The MLflow run (or an untracked stand-in) the whole experiment logs into, tagged
    with the seed, the code's provenance and ``tags``."""
    if not config.tracking.enabled:
        return untracked_run(run_name)
    run_tags = {
        "vaer.seed": str(config.seed),
        **{f"vaer.{k}": v for k, v in origin.items()},
        **dict(tags or {}),
    }
    return tracked_run(
        config.tracking.experiment or config.name, run_name,
        uri=config.tracking.uri, tags=run_tags, parent_run_id=parent_run_id,
    )  # fmt: skip


def _log_config(run: TrackedRun, config: ExperimentConfig, experiment_file: Path | None) -> None:
    """The resolved config as params and YAML, and the experiment file as given."""
    run.log_params(flatten(config.model_dump(mode="json")))
    run.log_text(dump_config(config), "config/resolved.yaml")
    if experiment_file is not None and experiment_file.is_file():
        run.log_text(experiment_file.read_text(encoding="utf-8"), f"config/{experiment_file.name}")


def _log_data(run: TrackedRun, config: ExperimentConfig, study: LoadedData) -> None:
    """The data set, its source and fingerprint, and its counts."""
    run.set_tags({"vaer.data_fingerprint": study.fingerprint, "vaer.data_source": study.source})
    run.log_dataset(
        study.frame,
        name=config.data.path.name if config.data.path else f"synthetic_{config.data.mode}",
        source=study.source,
        digest_tags={"fingerprint": study.fingerprint},
        targets=config.roles.outcome,
    )
    summary = study.summary(config.roles)
    numbers = {
        f"data.{k}": float(v)
        for k, v in summary.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    run.log_metrics(
        {**numbers, **{f"data.dropped.{k}": float(v) for k, v in study.dropped.items()}}
    )


def _truth_rows(metrics: dict[str, float], labels: list[str]) -> list[dict[str, Any]]:
    keys = ("ate_bias", "ate_covered", "cate_rmse", "cate_rmse_ratio")
    return [{"estimator": label, **{k: metrics[f"{label}.{k}"] for k in keys}} for label in labels]


def _write_report(
    ctx: RunContext,
    run: TrackedRun,
    out_dir: Path,
    truth: dict[str, float] | None,
    meta: dict[str, Any],
) -> tuple[ReportBundle, Path | None]:
    """Every stage's tables and the run's metadata under ``out_dir``, and the report
    rendered from what was written (so ``vaer report`` re-renders it)."""
    config = ctx.config
    labels = [r.label for r in ctx.result(EstimationResult).estimators]
    tables = dict(ctx.study.tables())
    for result in ctx.results:
        tables.update(result.tables())
    bundle = ReportBundle(
        tables=tables,
        meta={
            **meta,
            "experiment": config.tracking.experiment or config.name,
            "truth": truth,
            "run_id": run.run_id,
            "run_name": run.run_name,
            "seed": config.seed,
            "roles": config.roles.model_dump(mode="json"),
            "labels": ctx.study.role_labels(config.roles),
            "language": config.report.language,
            "data": ctx.study.summary(config.roles),
            "config_yaml": dump_config(config),
            "truth_rows": _truth_rows(truth, labels) if truth else None,
        },
        parquet=frozenset({"shap_values", "shap_data"}),
    )
    bundle.write(out_dir)
    formats = [f for f in config.report.formats if f != "csv"]
    written = write_report(ReportBundle.read(out_dir), out_dir, formats)
    return bundle, written.get("html")


def _log_headline(run: TrackedRun, bundle: ReportBundle) -> None:
    """The run's description (``mlflow.note.content``) and ``headline.*`` metrics, for the
    MLflow runs table; logged before the model, so a run failing there still has them."""
    headline = run_headline(bundle.tables)
    run.set_tags({NOTE_TAG: headline.description()})
    run.log_metrics(headline.metrics())


def _log_outputs(
    ctx: RunContext, run: TrackedRun, bundle: ReportBundle, out_dir: Path
) -> str | None:
    """Tables, figures, the report folder and the CATE model; returns the model's URI."""
    figures = out_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    labels = ReportLabels.from_meta(bundle.meta)
    (figures / "cate_histogram.svg").write_text(
        cate_histogram(bundle.tables["cate"], bundle.tables["ate"], labels), encoding="utf-8"
    )
    for name, table in bundle.tables.items():
        run.log_table(table, name)
    estimation = ctx.result(EstimationResult)
    modifiers = list(ctx.config.roles.modifiers)
    model_uri = run.log_cate_model(
        models={r.label: r.model for r in estimation.estimators},
        intervals={r.label: r.interval for r in estimation.estimators},
        encoder=ctx.data.modifier_encoder,
        example=ctx.study.frame[modifiers].head(5),
    )
    if model_uri is not None:
        run.set_tags({"vaer.model_uri": model_uri})
    run.log_artifacts(out_dir)
    return model_uri


def run_experiment(
    config: ExperimentConfig,
    *,
    experiment_file: Path | None = None,
    progress: Progress | None = None,
    parent_run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
    run_name: str | None = None,
    on_task: OnTask | None = None,
    backend: Backend | None = None,
    run_log: RunLog | None = None,
) -> RunResult:
    """Run one experiment end to end: load the data, run every enabled stage of
    :data:`vaer.stages.STAGES`, write the tables and report, log the run.

    Parameters
    ----------
    config : ExperimentConfig
        The validated experiment.
    experiment_file : Path, optional
        The YAML file as given, logged next to the resolved config.
    progress : callable, optional
        Called with a message at the start of each stage.
    parent_run_id : str, optional
        Log the run as a child of this MLflow run (a sweep's variant).
    tags : mapping, optional
        Extra tags of the run (e.g. the sweep variant).
    run_name : str, optional
        Defaults to ``<name>-<UTC time>``.
    on_task : callable, optional
        Called as ``on_task(finished, total)`` as the parallel tasks of the running step
        finish (cross-fitting folds, bootstrap chunks, refits, SHAP chunks), on any
        backend; ``(0, total)`` when a step starts.
    backend : vaer.compute.Backend, optional
        Where the run's parallel work goes; default: the one ``config.compute`` names. A
        sweep variant that is itself a cluster task runs its stages locally.
    run_log : vaer.runlog.RunLog, optional
        The log capturing library messages (``vaer run`` passes one): written to
        ``run.log`` in the run's folder once it is known, and logged with the artifacts.

    Returns
    -------
    RunResult

    Raises
    ------
    vaer.data.validation.DataValidationError, FileNotFoundError
        On bad data; the tracked run then ends FAILED with the message.
    ValueError
        If ``compute.backend`` is ``ray`` and the tracking URI is not a server (before
        anything starts).
    """
    if config.tracking.enabled:
        check_tracking_for(config.compute, resolve_tracking_uri(config.tracking.uri))
    say = progress or no_progress
    clock = _Stopwatch(say)
    started = datetime.now(UTC)
    run_name = run_name or f"{config.name}-{started:%Y%m%d-%H%M%S}"
    origin = provenance()
    with _open_run(config, run_name, origin, tags, parent_run_id) as run:
        _log_config(run, config, experiment_file)  # before the data: a failed run keeps it
        with clock.stage("data", "loading and validating data"):
            study = load_study_data(
                config.data, config.roles, config.measures, seed=config.seed, labels=config.labels
            )
            data = build_analysis_data(study.frame, config.roles)
        _log_data(run, config, study)
        backend = backend or get_backend(config.compute, n_units=data.n)
        ctx = RunContext(
            config, study, data, Observed(backend, on_task) if on_task else backend, say
        )
        truth: dict[str, float] | None = None if study.truth is None else {}
        for stage in STAGES:
            if not stage.enabled(config):
                continue
            with clock.stage(stage.name, stage.message):
                result = stage.run(ctx)
            ctx = ctx.with_result(result)
            run.log_metrics(result.metrics())
            if stage.child_run:
                run.log_child(stage.name, result.metrics(), result.tables())
            if stage.truth_check and truth is not None:
                truth.update(stage.truth_check(result, ctx))
        out_dir = Path(config.report.out.format(run_name=run.run_name, run_id=run.run_id))
        if run_log is not None:
            run_log.write_to(out_dir / "run.log")
        with clock.stage("report", "writing tables and report"):
            meta = {"created": f"{started:%Y-%m-%d %H:%M UTC}", "provenance": origin}
            bundle, report_path = _write_report(ctx, run, out_dir, truth, meta)
            _log_headline(run, bundle)
        with clock.stage("tracking", "logging tables, figures and the CATE model"):
            model_uri = _log_outputs(ctx, run, bundle, out_dir)
        run.log_metrics({**clock.metrics(), **{f"truth.{k}": v for k, v in (truth or {}).items()}})
    return RunResult(
        config=config,
        run_id=run.run_id,
        run_name=run.run_name,
        out_dir=out_dir,
        report_path=report_path,
        data_summary=study.summary(config.roles),
        results=ctx.results,
        truth=truth,
        timings=clock.seconds,
        model_uri=model_uri,
        labels=study.role_labels(config.roles),
    )
