"""The ``vaer`` command line: run and validate experiments.

Bad input (config, data) exits with status 2 and the message; nothing is fitted.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from vaer.config.models import ExperimentConfig
    from vaer.heterogeneity import HeterogeneityResult

app = typer.Typer(
    name="vaer",
    help="Virtual agglomeration -> export resilience: causal ML experiments tracked in MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
out = Console(soft_wrap=True)

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
    started = time.perf_counter()
    try:
        with console.status("starting", spinner="dots") as status:

            def progress(message: str) -> None:
                elapsed = time.perf_counter() - started
                console.log(f"{message}  [dim]({elapsed:.0f}s)[/]")
                status.update(message)

            result = run_experiment(config, experiment_file=experiment, progress=progress)
    except (DataValidationError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    table = Table(title=f"Average effect of VA on {config.roles.outcome}")
    for column in ("estimator", "estimate", "se", "95% CI", "se type"):
        table.add_column(column)
    for row in (a for est in result.estimation.estimators for a in (est.ate, est.ate_econml)):
        table.add_row(
            row.estimator,
            f"{row.estimate:.4f}",
            f"{row.se:.4f}",
            f"[{row.ci_low:.4f}, {row.ci_high:.4f}]",
            row.se_type,
        )
    out.print(table)
    if result.heterogeneity is not None:
        _print_heterogeneity(result.heterogeneity)
    if result.truth:
        out.print(f"true ATE (synthetic data): {result.truth['true_ate']:.4f}")
    out.print(f"MLflow run id: {result.run_id}")
    if result.report_path is not None:
        out.print(f"report: {result.report_path}")
    out.print(f"wall time: {time.perf_counter() - started:.1f}s")


def _print_heterogeneity(heterogeneity: HeterogeneityResult) -> None:
    """The headline heterogeneity tests: Wald equality per firm type, AUTOC, calibration."""
    table = Table(title="Heterogeneity across firms")
    for column in ("estimator", "test", "statistic", "p-value"):
        table.add_column(column)
    for item in heterogeneity.estimators:
        equality = item.gates.tests_frame().query("test == 'equality'")
        for row in equality.to_dict("records"):
            table.add_row(
                item.estimator,
                f"GATEs equal across {row['dimension']} (Wald, {row['df']} df)",
                f"{row['statistic']:.2f}",
                f"{row['p_value']:.3g}",
            )
        autoc = item.rate.target("AUTOC")
        table.add_row(
            item.estimator, "AUTOC > 0", f"{autoc['estimate']:.4f}", f"{autoc['p_value']:.3g}"
        )
        if item.calibration is not None:
            term = item.calibration.term("differential_forest_prediction")
            table.add_row(
                item.estimator,
                "calibration: differential prediction > 0",
                f"{term['estimate']:.3f}",
                f"{term['p_value']:.3g}",
            )
    out.print(table)


@app.command()
def validate(experiment: ExperimentArg, set_: SetOpt = None) -> None:
    """Check an experiment's config and data without fitting anything."""
    from vaer.data.validation import DataValidationError
    from vaer.measures.study import load_study_data

    config = _load(experiment, set_)
    try:
        loaded = load_study_data(config.data, config.roles, config.measures, seed=config.seed)
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
        Path, typer.Option("--out", help="Parquet file to write the synthetic firm panel to.")
    ],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="A `data.panel` parameter: key=value (repeatable)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the generator.")] = 0,
) -> None:
    """Write the built-in synthetic firm panel (see vaer.data.synthetic) to a Parquet file."""
    from pydantic import ValidationError

    from vaer.config.loader import parse_override
    from vaer.config.panel import SyntheticPanelConfig
    from vaer.data.synthetic import make_synthetic_panel

    params = {}
    for text in set_ or []:
        try:
            path, value = parse_override(text)
        except ValueError as exc:
            _fail(str(exc))
        params[".".join(path).removeprefix("data.panel.")] = value
    try:
        config = SyntheticPanelConfig(**params)
    except ValidationError as exc:
        _fail(
            "; ".join(
                f"data.panel.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
        )
    started = time.perf_counter()
    panel = make_synthetic_panel(config, random_state=seed)
    generated = time.perf_counter() - started
    out_file.parent.mkdir(parents=True, exist_ok=True)
    panel.frame.to_parquet(out_file, index=False)
    out.print(
        f"wrote {len(panel.frame)} firm-years of {config.n_firms} firms to {out_file} "
        f"(generated in {generated:.1f}s, total {time.perf_counter() - started:.1f}s)"
    )


def main() -> None:
    """Console-script entry point."""
    app(prog_name="vaer")


if __name__ == "__main__":
    main()
