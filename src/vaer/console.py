"""What the command line shows: the task bar of a running step and result tables (Rich).

``console`` (stderr) carries progress and errors, ``out`` (stdout) the results.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from vaer.did.stage import DidResult
    from vaer.estimators.results import EstimationResult
    from vaer.heterogeneity import HeterogeneityResult

console = Console(stderr=True, log_path=False)
out = Console(soft_wrap=True)


def task_bar() -> Any:
    """A progress bar of the running step's tasks (folds, bootstrap chunks, refits, ...)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("tasks"),
        TimeElapsedColumn(),
        console=console,
    )


def print_ate(estimation: EstimationResult, outcome: str, treatment: str = "the treatment") -> None:
    """The average effect of every estimator, with its SE, 95% CI and SE type (the title
    names the treatment and outcome by their display labels)."""
    table = Table(title=f"Average effect of {treatment} on {outcome}")
    for column in ("estimator", "estimate", "se", "95% CI", "se type"):
        table.add_column(column)
    for row in (est.ate for est in estimation.estimators):
        table.add_row(
            row.estimator,
            f"{row.estimate:.4f}",
            f"{row.se:.4f}",
            f"[{row.ci_low:.4f}, {row.ci_high:.4f}]",
            row.se_type,
        )
    out.print(table)


def _p_text(value: float) -> str:
    """A p-value for the console; NaN is a p-value vaer withholds
    (``heterogeneity.ranking_tests``: the ranking tests are not size-controlled)."""
    return "withheld" if value != value else f"{value:.3g}"


def print_heterogeneity(
    heterogeneity: HeterogeneityResult, labels: dict[str, str] | None = None
) -> None:
    """The headline heterogeneity tests: Wald equality per firm type (named by its display
    label in ``labels``), AUTOC, calibration."""
    names = labels or {}
    table = Table(title="Heterogeneity across firms")
    for column in ("estimator", "test", "statistic", "p-value"):
        table.add_column(column)
    for item in heterogeneity.estimators:
        equality = item.gates.tests_frame().query("test == 'equality'")
        for row in equality.to_dict("records"):
            table.add_row(
                item.estimator,
                f"GATEs equal across {names.get(row['dimension'], row['dimension'])} "
                f"(Wald, {row['df']} df)",
                f"{row['statistic']:.2f}",
                _p_text(row["p_value"]),
            )
        autoc = item.rate.target("AUTOC")
        table.add_row(
            item.estimator, "AUTOC > 0", f"{autoc['estimate']:.4f}", _p_text(autoc["p_value"])
        )
        if item.calibration is not None:
            term = item.calibration.term("differential_forest_prediction")
            table.add_row(
                item.estimator,
                "calibration: differential prediction > 0",
                f"{term['estimate']:.3f}",
                _p_text(term["p_value"]),
            )
    out.print(table)


def print_frame(frame: Any, title: str, *, digits: int = 4) -> None:
    """Print a DataFrame as a rich table at its natural width (headers break after dots)."""
    from rich.measure import Measurement

    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column).replace(".", ".\n").replace(":", ":\n"), overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*[_cell(value, digits) for value in row])
    natural = Measurement.get(out, out.options.update(width=10_000), table).maximum
    wide = Console(soft_wrap=True, width=max(natural, out.width), file=out.file)
    wide.print(table)


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:.{digits}g}"
    text = str(value)
    return text[:8] if len(text) == 32 and text.isalnum() else text


def print_did(did: DidResult) -> None:
    """The staggered DiD's aggregations (overall rows) and its pre-trend test."""
    table = Table(title=f"Effect of the policy on {did.outcome} (staggered DiD, clustered SEs)")
    for column in ("aggregation", "ATT", "se", "95% CI"):
        table.add_column(column)
    for name, result in did.aggregates.items():
        row = result.to_frame().iloc[-1]
        table.add_row(
            name,
            f"{row['estimate']:.4f}",
            f"{row['se']:.4f}",
            f"[{row['ci_low']:.4f}, {row['ci_high']:.4f}]",
        )
    if did.twfe is not None:
        low, high = did.twfe.ci
        shown = not did.regressions_withheld
        table.add_row(
            "TWFE (firm + year FE)", f"{did.twfe.estimate:.4f}",
            f"{did.twfe.se:.4f}" if shown else "withheld",
            f"[{low:.4f}, {high:.4f}]" if shown else "withheld",
        )  # fmt: skip
    out.print(table)
    if did.bacon is not None:
        out.print(
            f"Goodman-Bacon: {did.bacon.forbidden_weight:.1%} of the TWFE weight is on "
            "later-vs-earlier comparisons (already-treated firms as controls)"
        )
    if did.pretrend is not None:
        test = did.pretrend
        p_value = float("nan") if did.withheld else test.p_value
        out.print(
            f"pre-trend test (event times {', '.join(str(int(e)) for e in test.event_times)}): "
            f"{test.describe()}, p = {_p_text(p_value)}"
        )
    if did.withheld:
        out.print(f"intervals of single cells and event times, bands, pre-trend p: {did.withheld}")
    if did.band_withheld:
        out.print(f"ATT(g,t) {did.band_withheld}")
    if did.regressions_withheld and (did.twfe is not None or did.event_study is not None):
        out.print(did.regressions_withheld)
    for note in did.notes:
        out.print(note)
