"""Running a sweep: one MLflow parent run, one child run per variant, a summary table.

The unit of work is :func:`run_variant` on a :class:`VariantTask`: a picklable record
holding the variant's validated config and the parent's run id. It logs its own child
run, linked to the parent by ``parent_run_id`` (the ``mlflow.parentRunId`` tag), and
relies on no in-process state of the parent, so a compute backend can run each task in
another process or on another machine against the same tracking store. Variants run one
after another in this process (:func:`sequential`), or one task per variant on a compute
backend (:func:`on_backend`: a Ray cluster), where each variant's own stages run inside
its task, locally (one level of parallelism: no tasks inside tasks).

The parent run holds the sweep's config (``config/resolved.yaml``; its params are only
the ``sweep.*`` settings, so it does not pose as a variant in comparisons), the variant
list and, once the variants are done, the summary read back from the store
(``tables/sweep_summary.csv`` and the MLflow table ``tables/sweep_summary.json``): one
row per child with its headline metrics and the swept values, plus ``sweep.*`` metrics
(counts; mean and standard deviation of each estimator's ATE across the variants). The
parent ends FAILED if any variant failed, KILLED on Ctrl-C, FINISHED otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from vaer.compute import Backend, LocalBackend, check_tracking_for, get_backend
from vaer.config.expand import SweepPlan
from vaer.config.loader import dump_config
from vaer.config.models import ExperimentConfig
from vaer.context import Progress, no_progress
from vaer.pipeline import run_experiment
from vaer.tracking import parent_run, provenance, resolve_tracking_uri, untracked_run
from vaer.tracking.compare import sweep_summary
from vaer.tracking.headline import NOTE_TAG, sweep_description


class SweepFailed(RuntimeError):
    """Some variants of a sweep failed; the others ran and the summary was logged.

    Attributes
    ----------
    result : SweepResult
        The sweep as far as it went.
    """

    def __init__(self, message: str, result: SweepResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class VariantTask:
    """Everything a worker needs to run one variant (picklable).

    Attributes
    ----------
    index : int
        1-based position in the sweep.
    label : str
        ``path=value`` pairs of the variant.
    config : ExperimentConfig
        Its validated experiment.
    run_name : str
        Name of its child run.
    parent_run_id : str or None
        The sweep's parent run (None when tracking is off).
    experiment_file : Path or None
        The file as given, logged with every child.
    """

    index: int
    label: str
    config: ExperimentConfig
    run_name: str
    parent_run_id: str | None = None
    experiment_file: Path | None = None


@dataclass(frozen=True)
class VariantOutcome:
    """What became of one variant: ``status`` FINISHED or FAILED, and why it failed."""

    index: int
    label: str
    status: str
    run_id: str | None
    seconds: float
    error: str | None = None


Runner = Callable[[Sequence[VariantTask], Progress], Iterator[VariantOutcome]]


def run_variant(
    task: VariantTask,
    progress: Progress | None = None,
    *,
    backend: Backend | None = None,
    tags: Mapping[str, str] | None = None,
) -> VariantOutcome:
    """Run one variant as a child run of ``task.parent_run_id``.

    An exception inside the variant ends its run FAILED (with the reason) and is returned
    as a FAILED outcome; Ctrl-C is not caught. Progress messages are prefixed with the
    variant's number (``v03: ...``). ``backend`` overrides where the variant's stages run
    (default: its ``compute:`` section); ``tags`` are added to its run.
    """
    say = progress or (no_progress)
    started = time.perf_counter()

    def tell(message: str) -> None:
        say(f"v{task.index:02d}: {message}")

    tell(f"starting ({task.label})")
    run_tags = {
        "vaer.sweep.index": str(task.index),
        "vaer.sweep.label": task.label,
        **dict(tags or {}),
    }
    try:
        result = run_experiment(
            task.config,
            experiment_file=task.experiment_file,
            progress=tell,
            parent_run_id=task.parent_run_id,
            tags=run_tags,
            run_name=task.run_name,
            backend=backend,
        )
    except Exception as exc:
        return VariantOutcome(
            index=task.index,
            label=task.label,
            status="FAILED",
            run_id=None,
            seconds=time.perf_counter() - started,
            error=f"{type(exc).__name__}: {exc}",
        )
    return VariantOutcome(
        index=task.index,
        label=task.label,
        status="FINISHED",
        run_id=result.run_id,
        seconds=time.perf_counter() - started,
    )


def sequential(tasks: Sequence[VariantTask], progress: Progress) -> Iterator[VariantOutcome]:
    """Run the tasks one after another in this process."""
    for task in tasks:
        yield run_variant(task, progress)


@dataclass(frozen=True)
class _VariantOnCluster:
    """A cluster task: one variant, its stages run locally inside the task."""

    backend_name: str

    def __call__(self, task: VariantTask) -> VariantOutcome:
        return run_variant(
            task, backend=LocalBackend(1), tags={"vaer.sweep.backend": self.backend_name}
        )


def _absolute(task: VariantTask, root: Path) -> VariantTask:
    """Paths of the task resolved against the driver's directory (workers have their own)."""
    config = task.config
    data = config.data
    if data.path is not None and not data.path.is_absolute():
        data = data.model_copy(update={"path": root / data.path})
    report = config.report
    if not Path(report.out).is_absolute():
        report = report.model_copy(update={"out": str(root / report.out)})
    file = task.experiment_file
    return replace(
        task,
        config=config.model_copy(update={"data": data, "report": report}),
        experiment_file=None if file is None else (root / file).resolve(),
    )


def on_backend(backend: Backend) -> Runner:
    """A runner that sends each variant to ``backend`` as one task.

    Outcomes are yielded as tasks finish. Each task logs its own child run (so the
    tracking store must be a server that the workers reach) with the tag
    ``vaer.sweep.backend``; relative paths (``data.path``, ``report.out``, the experiment
    file) are made absolute against this process's directory first.
    """

    def runner(tasks: Sequence[VariantTask], progress: Progress) -> Iterator[VariantOutcome]:
        progress(f"{len(tasks)} variants sent to the {backend.name} backend")
        root = Path.cwd()
        shipped = [_absolute(task, root) for task in tasks]
        for _, outcome in backend.as_completed(_VariantOnCluster(backend.name), shipped):
            yield outcome

    return runner


@dataclass(frozen=True)
class SweepResult:
    """A finished sweep.

    Attributes
    ----------
    parent_run_id : str
    run_name : str
    outcomes : tuple of VariantOutcome
    summary : DataFrame
        One row per child run (from the store), headline metrics and swept params.
    out_dir : Path
        Folder with ``tables/variants.csv`` and ``tables/sweep_summary.csv``.
    """

    parent_run_id: str
    run_name: str
    outcomes: tuple[VariantOutcome, ...]
    summary: pd.DataFrame
    out_dir: Path

    @property
    def failed(self) -> list[VariantOutcome]:
        """The variants that did not finish."""
        return [o for o in self.outcomes if o.status != "FINISHED"]


def _aggregates(summary: pd.DataFrame) -> dict[str, float]:
    """Counts, and mean and SD across finished variants of each ``ate.<label>.estimate``."""
    found: dict[str, float] = {}
    if summary.empty:
        return found
    finished = summary[summary["status"] == "FINISHED"]
    for column in summary.columns:
        if column.startswith("ate.") and column.endswith(".estimate"):
            values = pd.to_numeric(finished[column], errors="coerce").dropna()
            if len(values):
                found[f"sweep.{column}.mean"] = float(values.mean())
            if len(values) > 1:
                found[f"sweep.{column}.sd"] = float(values.std(ddof=1))
    return found


def run_sweep(
    plan: SweepPlan,
    *,
    experiment_file: Path | None = None,
    runner: Runner | None = None,
    on_done: Callable[[VariantOutcome], None] | None = None,
    progress: Progress | None = None,
) -> SweepResult:
    """Run every variant of ``plan`` under one parent run and log the summary on it.

    Parameters
    ----------
    plan : SweepPlan
        From :func:`vaer.config.expand.load_sweep` (all variants already validated).
    experiment_file : Path, optional
        Logged on the parent and on every child.
    runner : callable, optional
        ``runner(tasks, progress)`` yielding one outcome per task (in any order). Default:
        one task per variant on the cluster when ``compute.backend`` is ``ray``
        (:func:`on_backend`), else one after another in this process.
    on_done : callable, optional
        Called with each outcome as it arrives.
    progress : callable, optional
        Messages from inside the variants, prefixed ``vNN:``.

    Returns
    -------
    SweepResult

    Raises
    ------
    SweepFailed
        After the summary is logged, if any variant failed (the parent ends FAILED).
    ValueError
        Before anything runs, if the sweep is on Ray and does not log to a server.
    """
    base = plan.base
    if base.tracking.enabled:
        check_tracking_for(base.compute, resolve_tracking_uri(base.tracking.uri))
    if runner is None:
        on_cluster = base.compute.backend == "ray"
        runner = on_backend(get_backend(base.compute)) if on_cluster else sequential
    say = progress or (no_progress)
    started = datetime.now(UTC)
    name = f"{base.name}-sweep-{started:%Y%m%d-%H%M%S}"
    experiment = base.tracking.experiment or base.name
    origin = provenance()
    tags = {
        "vaer.sweep": "parent",
        "vaer.sweep.variants": str(len(plan.variants)),
        **{f"vaer.{k}": v for k, v in origin.items()},
    }
    context = (
        parent_run(experiment, name, uri=base.tracking.uri, tags=tags)
        if base.tracking.enabled
        else untracked_run(name)
    )
    with context as parent:
        parent.log_params(
            {
                **{f"sweep.grid.{k}": repr(v) for k, v in plan.sweep.grid.items()},
                "sweep.seeds": repr(plan.sweep.seeds),
                "sweep.on_error": plan.sweep.on_error,
                "sweep.variants": str(len(plan.variants)),
            }
        )
        parent.log_text(dump_config(base), "config/resolved.yaml")
        if experiment_file is not None and experiment_file.is_file():
            parent.log_text(
                experiment_file.read_text(encoding="utf-8"), f"config/{experiment_file.name}"
            )
        variants = plan.to_frame()
        parent.log_table(variants, "variants")
        tasks = [
            VariantTask(
                index=v.index,
                label=v.label,
                config=v.config,
                run_name=f"{name}-v{v.index:02d}",
                parent_run_id=parent.run_id if base.tracking.enabled else None,
                experiment_file=experiment_file,
            )
            for v in plan.variants
        ]
        outcomes: list[VariantOutcome] = []
        for outcome in runner(tasks, say):
            outcomes.append(outcome)
            if on_done is not None:
                on_done(outcome)
            if outcome.status != "FINISHED" and plan.sweep.on_error == "stop":
                break
        summary = (
            sweep_summary(parent.uri, experiment, parent.run_id)
            if base.tracking.enabled
            else pd.DataFrame([vars(o) for o in outcomes])
        )
        out_dir = Path(base.report.out.format(run_name=name, run_id=parent.run_id))
        (out_dir / "tables").mkdir(parents=True, exist_ok=True)
        variants.to_csv(out_dir / "tables" / "variants.csv", index=False)
        summary.to_csv(out_dir / "tables" / "sweep_summary.csv", index=False, float_format="%.10g")
        parent.log_artifacts(out_dir)
        parent.log_table(summary, "sweep_summary")
        result = SweepResult(
            parent_run_id=parent.run_id,
            run_name=name,
            outcomes=tuple(outcomes),
            summary=summary,
            out_dir=out_dir,
        )
        failed = result.failed
        aggregates = _aggregates(summary)
        parent.log_metrics(
            {
                "sweep.variants": len(plan.variants),
                "sweep.finished": len(outcomes) - len(failed),
                "sweep.failed": len(failed),
                "sweep.skipped": len(plan.variants) - len(outcomes),
                **aggregates,
            }
        )
        parent.set_tags({NOTE_TAG: sweep_description(len(plan.variants), len(failed), aggregates)})
        if failed:
            details = "; ".join(f"variant {o.index} ({o.label}): {o.error}" for o in failed)
            raise SweepFailed(
                f"{len(failed)} of {len(plan.variants)} variants failed: {details}", result
            )
    return result
