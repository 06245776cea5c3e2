"""The ``vaer`` command line: run, sweep, compare and validate experiments; the MLflow UI.

Bad input (config, data) exits with status 2 and the message; nothing is fitted.
Ctrl-C (SIGINT) and SIGTERM stop a run; its MLflow run ends KILLED with the reason.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from vaer.console import (
    console,
    out,
    print_ate,
    print_did,
    print_frame,
    print_heterogeneity,
    task_bar,
)
from vaer.interrupts import Interrupts
from vaer.runlog import RunLog

if TYPE_CHECKING:
    from vaer.config.models import ExperimentConfig

app = typer.Typer(
    name="vaer",
    help="Virtual agglomeration -> export resilience: causal ML experiments tracked in MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ExperimentArg = Annotated[Path, typer.Argument(help="Experiment YAML file.", show_default=False)]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config value: key.path=value (repeatable)."),
]


def _fail(message: str) -> NoReturn:
    console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    raise typer.Exit(code=2)


def _load(experiment: Path, overrides: list[str] | None) -> ExperimentConfig:
    from vaer.config import ConfigError, load_experiment

    try:
        return load_experiment(experiment, overrides or [])
    except ConfigError as exc:
        _fail(str(exc))


@app.command()
def run(experiment: ExperimentArg, set_: SetOpt = None) -> None:
    """Run an experiment: data -> estimates -> tables, report and an MLflow run."""
    from vaer.data.validation import DataValidationError
    from vaer.pipeline import run_experiment

    config = _load(experiment, set_)
    if config.sweep is not None:
        _fail(
            f"{experiment} has a `sweep:` block ({config.sweep.n_variants} variants): run them "
            f"with `vaer sweep {experiment}`, or run the base experiment once with "
            f"`vaer run {experiment} --set sweep=null`"
        )
    started = time.perf_counter()
    bar = task_bar()
    run_log = RunLog()
    # library messages (MLflow, alembic, warnings) go to the run's run.log, not here
    quiet = run_log.capturing(import_first=["mlflow"] if config.tracking.enabled else [])
    logger = logging.getLogger("vaer.run")
    try:
        with Interrupts().installed() as interrupts, quiet, bar:
            step = bar.add_task("starting", total=None)

            def progress(message: str) -> None:
                interrupts.check()
                elapsed = time.perf_counter() - started
                logger.info(message)
                bar.console.log(f"{message}  [dim]({elapsed:.0f}s)[/]")
                bar.update(step, description=message)

            def on_task(finished: int, total: int) -> None:
                interrupts.check()
                bar.update(step, completed=finished, total=total)

            result = run_experiment(
                config,
                experiment_file=experiment,
                progress=progress,
                on_task=on_task,
                run_log=run_log,
            )
    except (DataValidationError, FileNotFoundError, ValueError, ImportError) as exc:
        _fail(str(exc))
    labels = result.labels
    roles = config.roles
    print_ate(
        result.estimation,
        labels.get(roles.outcome, roles.outcome),
        labels.get(roles.treatment, roles.treatment),
    )
    if result.heterogeneity is not None:
        print_heterogeneity(result.heterogeneity, labels)
    if result.did is not None:
        print_did(result.did)
    if result.truth:
        out.print(f"true ATE (synthetic data): {result.truth['true_ate']:.4f}")
    out.print(f"MLflow run id: {result.run_id}")
    if result.report_path is not None:
        out.print(f"report: {result.report_path}")
    if run_log.path is not None:
        out.print(f"log: {run_log.path}")
    out.print(f"wall time: {time.perf_counter() - started:.1f}s")


@app.command()
def validate(experiment: ExperimentArg, set_: SetOpt = None) -> None:
    """Check an experiment's config and data without fitting anything."""
    from vaer.config.loader import config_sources
    from vaer.data.validation import DataValidationError
    from vaer.measures.study import load_study_data

    config = _load(experiment, set_)
    sources = config_sources(experiment, set_ or [])
    out.print("config merged from (later overrides earlier):")
    width = max(len(source.role) for source in sources)
    for source in sources:
        out.print(f"  {source.role:<{width}}  {source.location}", highlight=False)
    if config.sweep is not None:
        plan = _load_sweep(experiment, set_)
        out.print(f"ok: sweep of {len(plan.variants)} valid variants")
    try:
        loaded = load_study_data(
            config.data, config.roles, config.measures, seed=config.seed, labels=config.labels
        )
    except (DataValidationError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    summary = loaded.summary(config.roles)
    out.print(
        f"ok: {config.name}: {summary['rows']} rows, {summary['units']} units, "
        f"{summary['clusters']} clusters, {len(config.estimators)} estimators ({summary['source']})"
    )


@app.command()
def simulate(
    out_file: Annotated[
        Path,
        typer.Option("--out", help="File to write the synthetic data to (.parquet, .csv or .dta)."),
    ],
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="A `data.panel` (or, with --mode table, `data.synthetic`) parameter: "
            "key=value (repeatable).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the generator.")] = 0,
    mode: Annotated[
        str,
        typer.Option(
            "--mode", help="panel: the firm-year panel; table: the one-row-per-firm table."
        ),
    ] = "panel",
) -> None:
    """Write the built-in synthetic firm panel (see vaer.data.synthetic), or with
    --mode table the synthetic firm table (vaer.data.synthetic_table), to a file."""
    from pydantic import ValidationError

    from vaer.config.loader import parse_override
    from vaer.config.models import SyntheticTableConfig
    from vaer.config.panel import SyntheticPanelConfig
    from vaer.data.synthetic import make_synthetic_panel
    from vaer.data.synthetic_table import make_synthetic_table

    if mode not in ("panel", "table"):
        _fail(f"--mode must be panel or table; got {mode!r}")
    section = "data.panel" if mode == "panel" else "data.synthetic"
    params = {}
    for text in set_ or []:
        try:
            path, value = parse_override(text)
        except ValueError as exc:
            _fail(str(exc))
        params[".".join(path).removeprefix(f"{section}.")] = value
    model = SyntheticPanelConfig if mode == "panel" else SyntheticTableConfig
    try:
        config = model(**params)
    except ValidationError as exc:
        _fail(
            "; ".join(f"{section}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        )
    started = time.perf_counter()
    if isinstance(config, SyntheticPanelConfig):
        frame = make_synthetic_panel(config, random_state=seed).frame
        what = f"{len(frame)} firm-years of {config.n_firms} firms"
    else:
        frame = make_synthetic_table(config, random_state=seed).frame
        what = f"a table of {len(frame)} firms"
    generated = time.perf_counter() - started
    out_file.parent.mkdir(parents=True, exist_ok=True)
    suffix = out_file.suffix.lower()
    if suffix == ".csv":
        frame.to_csv(out_file, index=False)
    elif suffix == ".dta":
        frame.to_stata(out_file, write_index=False)
    else:
        frame.to_parquet(out_file, index=False)
    out.print(
        f"wrote {what} to {out_file} "
        f"(generated in {generated:.1f}s, total {time.perf_counter() - started:.1f}s)"
    )


@app.command()
def init(
    data: Annotated[
        Path, typer.Argument(help="Data file: .csv, .parquet or Stata .dta.", show_default=False)
    ],
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Experiment file to write (default: <data>.yaml)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the output file.")] = False,
) -> None:
    """Write a first experiment for a data file: roles guessed from its columns, each marked."""
    from vaer.data.guess import guess_roles
    from vaer.data.readers import read_frame
    from vaer.scaffold import experiment_text, study_name

    target = output or Path(f"{data.stem}.yaml")
    if target.exists() and not force:
        _fail(f"{target} exists; choose another file with -o, or overwrite it with --force")
    try:
        frame = read_frame(data)
        guesses = guess_roles(frame)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(experiment_text(str(data), guesses, name=study_name(data)), encoding="utf-8")
    out.print(
        f"wrote {target}: {guesses.mode} mode, {len(guesses.modifiers) + len(guesses.firm_types)} "
        f"modifiers, {len(guesses.firm_types)} firm types; confirm every '# guessed' line, "
        f"then: vaer validate {target}"
    )


def _load_sweep(experiment: Path, overrides: list[str] | None) -> Any:
    from vaer.config import ConfigError, load_sweep

    try:
        return load_sweep(experiment, overrides or [])
    except ConfigError as exc:
        _fail(str(exc))


@app.command()
def sweep(
    experiment: ExperimentArg,
    set_: SetOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and list the variants; run nothing.")
    ] = False,
) -> None:
    """Run every variant of an experiment's `sweep:` block: one parent MLflow run, a child each.

    All variants are validated before any runs. The parent run holds a summary table of
    the children's headline metrics (also printed here). Exit status 1 if a variant failed.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from vaer.sweep import SweepFailed, run_sweep

    plan = _load_sweep(experiment, set_)
    print_frame(plan.to_frame(), f"{len(plan.variants)} variants of {plan.base.name}")
    if dry_run:
        return
    bar = Progress(
        TextColumn("[bold]sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
    )
    failed: SweepFailed | None = None
    run_log = RunLog()  # library messages of every variant go to the sweep's sweep.log
    quiet = run_log.capturing(import_first=["mlflow"])
    with Interrupts().installed() as interrupts, quiet, bar:
        task = bar.add_task("starting", total=len(plan.variants))

        def step_message(message: str) -> None:
            interrupts.check()
            bar.update(task, description=message)

        def done(outcome: Any) -> None:
            interrupts.check()
            mark = "[green]ok[/]" if outcome.status == "FINISHED" else "[red]FAILED[/]"
            bar.console.print(
                f"v{outcome.index:02d} {mark} {outcome.label} ({outcome.seconds:.0f}s)"
                + (f": {outcome.error}" if outcome.error else "")
            )
            bar.advance(task)

        try:
            result = run_sweep(
                plan,
                experiment_file=experiment,
                on_done=done,
                progress=step_message,
            )
        except SweepFailed as exc:
            failed = exc
            result = exc.result
        except (ValueError, ImportError) as exc:
            _fail(str(exc))
        run_log.write_to(result.out_dir / "sweep.log")
    summary = result.summary
    if not summary.empty:
        from vaer.tracking.compare import comparison_table

        table = comparison_table(summary)
        print_frame(table.drop(columns=["variant"]), f"sweep {result.run_name}")
    out.print(f"MLflow parent run id: {result.parent_run_id}")
    out.print(f"summary: {result.out_dir / 'tables' / 'sweep_summary.csv'}")
    out.print(f"log: {result.out_dir / 'sweep.log'}")
    if failed is not None:
        console.print(f"[bold red]error:[/] {failed}")
        raise typer.Exit(code=1)


@app.command()
def compare(
    experiment: Annotated[
        list[str] | None,
        typer.Option("--experiment", "-e", help="Experiment name (repeatable; default: all)."),
    ] = None,
    filter_: Annotated[
        str,
        typer.Option(
            "--filter",
            "-f",
            help="MLflow filter, e.g. \"tags.mlflow.parentRunId = '<id>'\" or "
            "'metrics.\"truth.linear_dml.cate_rmse\" < 0.3'.",
        ),
    ] = "",
    metrics: Annotated[
        list[str] | None,
        typer.Option(
            "--metrics",
            "-m",
            help="Metric name or glob (repeatable or comma-separated); "
            "default: ATE estimate and SE, truth bias and CATE RMSE, total time.",
        ),
    ] = None,
    sweep_id: Annotated[
        str | None, typer.Option("--sweep", help="Only the children of this sweep's parent run.")
    ] = None,
    all_params: Annotated[
        bool, typer.Option("--all-params", help="Show every param, not only varied ones.")
    ] = False,
    max_runs: Annotated[int, typer.Option("--max-runs", help="At most this many runs.")] = 50,
    csv: Annotated[
        Path | None, typer.Option("--csv", help="Also write the table to this CSV file.")
    ] = None,
    uri: Annotated[
        str | None, typer.Option("--uri", help="Tracking URI (default: the project's store).")
    ] = None,
) -> None:
    """Compare tracked runs: one row per run, chosen metrics and the params that differ."""
    from vaer.tracking import resolve_tracking_uri
    from vaer.tracking.compare import DEFAULT_METRICS, comparison_table, runs_frame

    resolved = resolve_tracking_uri(uri)
    clauses = [
        c
        for c in (filter_.strip(), f"tags.mlflow.parentRunId = '{sweep_id}'" if sweep_id else "")
        if c
    ]
    patterns = [p.strip() for m in (metrics or []) for p in m.split(",") if p.strip()]
    try:
        frame = runs_frame(
            resolved,
            experiments=experiment,
            filter_string=" and ".join(clauses),
            max_results=max_runs,
        )
        table = comparison_table(frame, patterns or DEFAULT_METRICS, all_params=all_params)
    except ValueError as exc:
        _fail(str(exc))
    if table.empty:
        out.print(f"no runs found in {resolved}")
        return
    varied = any(str(c).startswith("param:") for c in table.columns)
    hidden = ["parent_run_id", *(["variant"] if varied else [])]
    shown = table.drop(columns=[c for c in hidden if c in table.columns])
    print_frame(shown, f"{len(table)} runs ({resolved})")
    if csv is not None:
        csv.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(csv, index=False)
        out.print(f"written: {csv}")


@app.command()
def ui(
    port: Annotated[int, typer.Option("--port", "-p", help="Port on 127.0.0.1.")] = 5000,
    uri: Annotated[
        str | None, typer.Option("--uri", help="Tracking URI (default: the project's store).")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", help="Server worker processes.")] = 1,
) -> None:
    """Start the MLflow UI for the project's store on http://127.0.0.1:PORT.

    Ctrl-C, SIGTERM or SIGHUP stops the server with every process it started.
    """
    from vaer.tracking import resolve_tracking_uri
    from vaer.tracking.server import serve_foreground
    from vaer.tracking.store import experiment_pages, prepare_store, server_command

    resolved = resolve_tracking_uri(uri)
    try:
        command = server_command(resolved, port=port, workers=workers)
    except ValueError as exc:
        _fail(str(exc))
    prepare_store(resolved)
    base = f"http://127.0.0.1:{port}"
    console.print(f"MLflow UI for {resolved} at {base} (Ctrl-C stops it)", highlight=False)
    for name, page in experiment_pages(resolved, base):
        console.print(f"  {name}: {page}", highlight=False, soft_wrap=True)
    code, stopped_by = serve_foreground(command)
    if stopped_by is not None:
        console.print(f"MLflow UI stopped ({stopped_by.name})", highlight=False)
        raise typer.Exit(code=0)
    raise typer.Exit(code=code)


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="MLflow run id of a finished run.")],
    format_: Annotated[
        str, typer.Option("--format", help="Comma-separated: html, pdf, latex, xlsx, csv.")
    ] = "html,latex,xlsx",
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default reports/<run id>).")
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri", help="MLflow store (default MLFLOW_TRACKING_URI or ./mlruns)."
        ),
    ] = None,
    language: Annotated[
        str | None,
        typer.Option(
            "--language", help="The report's words: en or zh (default: the run's report.language)."
        ),
    ] = None,
) -> None:
    """Re-render a finished run's report from its MLflow artifacts alone (no refitting).
    What the libraries log or warn goes to ``report.log`` in the output folder, as a run's
    goes to its ``run.log``."""
    import dataclasses
    import shutil
    import tempfile

    from vaer.reporting import ReportBundle
    from vaer.reporting.export import parse_formats, write_report
    from vaer.reporting.words import Words
    from vaer.tracking.artifacts import download_run_bundle

    try:
        formats = parse_formats(format_)
        if language is not None:
            Words(language)
    except ValueError as exc:
        _fail(str(exc).replace("`report.language`", "`--language`"))
    folder = out_dir or Path("reports") / run_id
    report_log = RunLog()
    with (
        tempfile.TemporaryDirectory(prefix="vaer-report-") as tmp,
        report_log.capturing(import_first=["mlflow"]),
    ):
        try:
            download_run_bundle(run_id, Path(tmp), uri=tracking_uri)
            bundle = ReportBundle.read(Path(tmp))
            if language is not None:
                bundle = dataclasses.replace(bundle, meta={**bundle.meta, "language": language})
            written = write_report(bundle, folder, [f for f in formats if f != "csv"])
        except (ValueError, FileNotFoundError, ImportError) as exc:
            _fail(str(exc))
        if "csv" in formats:
            shutil.copytree(Path(tmp), folder, dirs_exist_ok=True)
            written["csv"] = folder / "tables"
        report_log.write_to(folder / "report.log")
    written["log"] = folder / "report.log"
    for name, path in written.items():
        out.print(f"{name}: {path}")


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    app(prog_name="vaer")


if __name__ == "__main__":
    main()
