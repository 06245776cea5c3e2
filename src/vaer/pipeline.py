"""``run_experiment``: chains the stages of one experiment, and nothing else.

config -> data -> design -> estimation -> truth check -> tables and report -> tracking.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from vaer.attribution import AttributionResult, attribution_truth_metrics, run_attribution
from vaer.compute import Backend, Observed, check_tracking_for, get_backend
from vaer.config.loader import dump_config
from vaer.config.models import ExperimentConfig
from vaer.data.design import FeatureEncoder, build_analysis_data
from vaer.estimators.fit import fit_estimators
from vaer.estimators.results import EstimationResult
from vaer.estimators.truth_metrics import truth_metrics
from vaer.estimators.tune import TuneResult, tune_estimation
from vaer.heterogeneity import HeterogeneityResult, analyze_heterogeneity, gate_truth_metrics
from vaer.measures.study import load_study_data
from vaer.reporting.bundle import ReportBundle
from vaer.reporting.export import write_report
from vaer.reporting.figures import cate_histogram
from vaer.robustness import Rebuild, RobustnessResult, run_robustness
from vaer.robustness.panel import panel_rebuild
from vaer.tracking import (
    flatten,
    peak_rss_mb,
    provenance,
    resolve_tracking_uri,
    tracked_run,
    untracked_run,
)

Progress = Callable[[str], None]
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
    estimation : EstimationResult
    truth : dict or None
        Accuracy against the known truth (synthetic data only).
    timings : dict
        Seconds per stage.
    heterogeneity : HeterogeneityResult or None
        GATEs, sorted GATES/CLAN, calibration/BLP, RATE and policy tree (unless disabled).
    robustness : RobustnessResult or None
        Refuters and sensitivity analysis (when ``robustness.enabled``).
    attribution : AttributionResult or None
        SHAP channel attribution and mechanism tests (``attribution.enabled``).
    model_uri : str or None
        The logged CATE model (``models:/...``), when tracked.
    """

    config: ExperimentConfig
    run_id: str
    run_name: str
    out_dir: Path
    report_path: Path | None
    data_summary: dict[str, Any]
    estimation: EstimationResult
    truth: dict[str, float] | None
    timings: dict[str, float]
    heterogeneity: HeterogeneityResult | None = None
    robustness: RobustnessResult | None = None
    attribution: AttributionResult | None = None
    model_uri: str | None = None
    tuning: TuneResult | None = None


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


def _headline_metrics(estimation: EstimationResult) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for result in estimation.estimators:
        for key in ("estimate", "se", "ci_low", "ci_high"):
            metrics[f"ate.{result.label}.{key}"] = getattr(result.ate, key)
        metrics[f"time.fit.{result.label}"] = result.fit_seconds
    metrics["time.fit.nuisances"] = estimation.nuisance_seconds
    return metrics


def _panel_rebuild(config: ExperimentConfig) -> Rebuild | None:
    """The analysis table rebuilt for other windows/measures (panel-mode refuters)."""
    wanted = (
        config.robustness.placebo_shock.enabled or config.robustness.alternative_measures.enabled
    )
    if config.data.mode != "panel" or not wanted:
        return None
    return panel_rebuild(
        config.data, config.roles, config.measures,
        calm=config.robustness.placebo_shock.window, seed=config.seed,
    )  # fmt: skip


def _truth_rows(metrics: dict[str, float], labels: list[str]) -> list[dict[str, Any]]:
    keys = ("ate_bias", "ate_covered", "cate_rmse", "cate_rmse_ratio")
    return [{"estimator": label, **{k: metrics[f"{label}.{k}"] for k in keys}} for label in labels]


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
) -> RunResult:
    """Run one experiment end to end.

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
    say = progress or (lambda _message: None)
    clock = _Stopwatch(say)
    started = datetime.now(UTC)
    run_name = run_name or f"{config.name}-{started:%Y%m%d-%H%M%S}"
    origin = provenance()
    run_tags = {
        "vaer.seed": str(config.seed),
        **{f"vaer.{k}": v for k, v in origin.items()},
        **dict(tags or {}),
    }
    experiment = config.tracking.experiment or config.name
    context = (
        tracked_run(
            experiment,
            run_name,
            uri=config.tracking.uri,
            tags=run_tags,
            parent_run_id=parent_run_id,
        )
        if config.tracking.enabled
        else untracked_run(run_name)
    )
    with context as run:
        config_yaml = dump_config(config)
        run.log_params(flatten(config.model_dump(mode="json")))
        run.log_text(config_yaml, "config/resolved.yaml")
        if experiment_file is not None and experiment_file.is_file():
            run.log_text(
                experiment_file.read_text(encoding="utf-8"), f"config/{experiment_file.name}"
            )

        with clock.stage("data", "loading and validating data"):
            loaded = load_study_data(config.data, config.roles, config.measures, seed=config.seed)
            data = build_analysis_data(loaded.frame, config.roles)
        if backend is None:
            backend = get_backend(config.compute, n_units=data.n)
        if on_task is not None:
            backend = Observed(backend, on_task)
        summary = loaded.summary(config.roles)
        run.set_tags(
            {"vaer.data_fingerprint": loaded.fingerprint, "vaer.data_source": loaded.source}
        )
        run.log_dataset(
            loaded.frame,
            name=config.data.path.name if config.data.path else f"synthetic_{config.data.mode}",
            source=loaded.source,
            digest_tags={"fingerprint": loaded.fingerprint},
            targets=config.roles.outcome,
        )
        run.log_metrics(
            {
                **{
                    f"data.{k}": float(v)
                    for k, v in summary.items()
                    if isinstance(v, int | float) and not isinstance(v, bool)
                },
                **{f"data.dropped.{k}": float(v) for k, v in loaded.dropped.items()},
            }
        )

        tuning, nuisance, specs = None, config.nuisance, list(config.estimators)
        if config.tune.enabled:
            with clock.stage("tune", "tuning nuisances and forests on cluster-grouped splits"):
                tuning = tune_estimation(
                    data, specs, nuisance, config.tune,
                    random_state=config.seed, progress=say, backend=backend,
                )  # fmt: skip
            nuisance, specs = tuning.nuisance, list(tuning.specs)
            run.log_metrics(tuning.metrics())
            run.log_child("tune", tuning.metrics(), {"tuning": tuning.to_frame()})
        with clock.stage("estimation", "estimating effects"):
            estimation = fit_estimators(
                data, specs, nuisance, random_state=config.seed, progress=say, backend=backend
            )
        truth = truth_metrics(estimation, loaded.truth) if loaded.truth is not None else None
        heterogeneity = None
        if config.heterogeneity.enabled:
            with clock.stage("heterogeneity", "analysing heterogeneity across firms"):
                heterogeneity = analyze_heterogeneity(
                    estimation, data, config.heterogeneity,
                    random_state=config.seed, progress=say, backend=backend,
                )  # fmt: skip
            if truth is not None and loaded.truth is not None:
                truth.update(gate_truth_metrics(heterogeneity, loaded.truth, data.units))
        robustness = None
        if config.robustness.enabled:
            with clock.stage("robustness", "refuting and sensitivity analysis"):
                robustness = run_robustness(
                    data,
                    estimation,
                    specs,
                    nuisance,
                    config.robustness,
                    random_state=config.seed,
                    rebuild=_panel_rebuild(config),
                    backend=backend,
                    progress=say,
                )

        attribution = None
        if config.attribution.enabled:
            with clock.stage("attribution", "attributing effects to channels and mechanisms"):
                attribution = run_attribution(
                    data,
                    estimation,
                    config.attribution,
                    config.roles,
                    config.nuisance,
                    loaded.frame,
                    random_state=config.seed,
                    progress=say,
                    backend=backend,
                )
            run.log_metrics(attribution.metrics())
            if loaded.truth is not None:
                checked = attribution_truth_metrics(attribution, loaded.truth)
                run.log_metrics({f"truth.{k}": v for k, v in checked.items()})

        out_dir = Path(config.report.out.format(run_name=run.run_name, run_id=run.run_id))
        with clock.stage("report", "writing tables and report"):
            meta = {
                "run_id": run.run_id,
                "run_name": run.run_name,
                "experiment": experiment,
                "created": f"{started:%Y-%m-%d %H:%M UTC}",
                "seed": config.seed,
                "roles": config.roles.model_dump(mode="json"),
                "data": summary,
                "provenance": origin,
                "config_yaml": config_yaml,
                "truth": truth,
                "truth_rows": _truth_rows(truth, [r.label for r in estimation.estimators])
                if truth
                else None,
            }
            bundle = ReportBundle(
                tables={
                    "ate": estimation.to_frame(),
                    "intervals": estimation.intervals_frame(),
                    "cate": estimation.cate_frame(),
                    **loaded.tables(),
                    **(heterogeneity.tables() if heterogeneity is not None else {}),
                    **(attribution.tables() if attribution else {}),
                },
                meta=meta,
                parquet=frozenset({"shap_values", "shap_data"}),
            )
            if robustness is not None:
                bundle.tables["robustness"] = robustness.to_frame()
                if robustness.sensitivity is not None:
                    bundle.tables["sensitivity"] = robustness.sensitivity.to_frame()
            if tuning is not None:
                bundle.tables["tuning"] = tuning.to_frame()
            if estimation.t_hat is not None:
                bundle.tables["treatment"] = pd.DataFrame(
                    {"unit": data.units, "treatment": data.t, "t_hat": estimation.t_hat}
                )
            bundle.write(out_dir)  # render from what was written: `vaer report` re-renders it
            formats = [f for f in config.report.formats if f != "csv"]
            written = write_report(ReportBundle.read(out_dir), out_dir, formats)
            report_path = written.get("html")

        with clock.stage("tracking", "logging tables, figures and the CATE model"):
            figures = out_dir / "figures"
            figures.mkdir(parents=True, exist_ok=True)
            (figures / "cate_histogram.svg").write_text(
                cate_histogram(bundle.tables["cate"], bundle.tables["ate"]), encoding="utf-8"
            )
            for name, table in bundle.tables.items():
                run.log_table(table, name)
            model_uri = run.log_cate_model(
                models={r.label: r.model for r in estimation.estimators},
                intervals={r.label: r.interval for r in estimation.estimators},
                encoder=FeatureEncoder.fit(loaded.frame, config.roles.modifiers),
                example=loaded.frame[list(config.roles.modifiers)].head(5),
            )
            if model_uri is not None:
                run.set_tags({"vaer.model_uri": model_uri})
            run.log_artifacts(out_dir)
        run.log_metrics({**_headline_metrics(estimation), **clock.metrics()})
        if heterogeneity is not None:
            run.log_metrics(heterogeneity.metrics())
        if truth is not None:
            run.log_metrics({f"truth.{k}": v for k, v in truth.items()})
        if robustness is not None:
            run.log_metrics(robustness.metrics())
    return RunResult(
        config=config,
        run_id=run.run_id,
        run_name=run.run_name,
        out_dir=out_dir,
        report_path=report_path,
        data_summary=summary,
        estimation=estimation,
        truth=truth,
        timings=clock.seconds,
        heterogeneity=heterogeneity,
        robustness=robustness,
        attribution=attribution,
        model_uri=model_uri,
        tuning=tuning,
    )
