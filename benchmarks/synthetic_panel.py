"""Time the synthetic firm panel: generation, Parquet writing and the analysis tables.

Usage: ``python benchmarks/synthetic_panel.py [--firms 100000] [--seed 1]``. Writes the
``synthetic_panel`` section of ``benchmarks/RESULTS.md`` and logs to MLflow.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import log_benchmark, update_results_section
from vaer.config.models import Roles
from vaer.config.panel import SHOCK_WINDOWS, MeasuresConfig, SyntheticPanelConfig
from vaer.data.panel_validation import validate_panel
from vaer.data.synthetic import PANEL_ROLES, make_synthetic_panel
from vaer.measures import build_analysis_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--firms", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    roles = Roles(**PANEL_ROLES)  # type: ignore[arg-type]

    started = time.perf_counter()
    panel = make_synthetic_panel(SyntheticPanelConfig(n_firms=args.firms), random_state=args.seed)
    generate = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        panel.frame.to_parquet(Path(folder) / "panel.parquet", index=False)
        write = time.perf_counter() - started
    started = time.perf_counter()
    validate_panel(panel.frame, roles)
    validate = time.perf_counter() - started
    metrics = {
        "firm_years": float(len(panel.frame)),
        "time.generate": generate,
        "time.write_parquet": write,
        "time.validate": validate,
    }
    lines = [
        f"Synthetic firm panel, {args.firms} firms, seed {args.seed}: "
        f"{len(panel.frame)} firm-years.",
        "",
        "| step | seconds | rows |",
        "|---|---|---|",
        f"| generate | {generate:.1f} | {len(panel.frame)} |",
        f"| write Parquet | {write:.1f} | |",
        f"| validate (pandera) | {validate:.1f} | |",
    ]
    for shock in SHOCK_WINDOWS:
        started = time.perf_counter()
        table = build_analysis_table(panel.frame, roles, MeasuresConfig(shock=shock))
        seconds = time.perf_counter() - started
        metrics[f"time.table.{shock}"] = seconds
        metrics[f"rows.table.{shock}"] = float(len(table.frame))
        dropped = ", ".join(f"{k} {v}" for k, v in table.dropped.items())
        lines.append(
            f"| analysis table {shock} | {seconds:.1f} | {len(table.frame)} (dropped: {dropped}) |"
        )
    update_results_section("synthetic_panel", "## Synthetic firm panel\n\n" + "\n".join(lines))
    log_benchmark("synthetic_panel", metrics, {"firms": args.firms, "seed": args.seed})
    print("\n".join(lines))


if __name__ == "__main__":
    main()
