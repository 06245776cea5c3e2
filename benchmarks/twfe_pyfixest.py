r"""What pyfixest (the TWFE backend of ``did.estimators: [twfe, event_study]``) costs.

Measures, in one fresh Python process each (``--part``):

``import``
    wall time of ``import pyfixest; pyfixest.feols`` (pyfixest loads its estimation code
    lazily, on first attribute access) after vaer's own imports (pandas, scipy, matplotlib
    already loaded, as in a ``vaer run``), and the max RSS it adds.
``fit``
    :func:`vaer.did.twfe.twfe` (firm and year fixed effects, city-clustered) and
    :func:`vaer.did.sunab.sun_abraham` on a balanced panel from
    :func:`vaer.did.simulate.simulate_staggered` with ``--firms`` firms (default 100,000)
    over 10 years (1.0 million firm-years), 150 cities: wall time of each and the
    process's max RSS.

Usage::

    PYTHONPATH=src python benchmarks/twfe_pyfixest.py --part import
    PYTHONPATH=src python benchmarks/twfe_pyfixest.py --part fit --firms 100000
"""

from __future__ import annotations

import argparse
import resource
import time


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("import", "fit"), required=True)
    parser.add_argument("--firms", type=int, default=100_000)
    args = parser.parse_args()
    import matplotlib.pyplot  # noqa: F401
    import pandas  # noqa: F401
    import scipy.stats  # noqa: F401

    import vaer.did  # noqa: F401

    before, start = _rss_mib(), time.perf_counter()
    import pyfixest

    pyfixest.feols  # noqa: B018 - loads the estimation code
    print(f"import pyfixest + feols: {time.perf_counter() - start:.2f} s, max RSS "
          f"{before:.0f} -> {_rss_mib():.0f} MiB")  # fmt: skip
    if args.part == "import":
        return
    from vaer.did import PanelColumns
    from vaer.did.simulate import simulate_staggered
    from vaer.did.sunab import sun_abraham
    from vaer.did.twfe import twfe

    frame, _ = simulate_staggered(args.firms, 150, random_state=0)
    print(f"panel: {len(frame):,} firm-years, max RSS {_rss_mib():.0f} MiB")
    columns = PanelColumns(unit="firm", period="year", cohort="cohort", cluster="city", outcome="y")
    start = time.perf_counter()
    result = twfe(frame, columns)
    print(f"twfe: {time.perf_counter() - start:.2f} s (coef {result.estimate:.4f}, se "
          f"{result.se:.4f}), max RSS {_rss_mib():.0f} MiB")  # fmt: skip
    start = time.perf_counter()
    study = sun_abraham(frame, columns)
    print(f"sun_abraham: {time.perf_counter() - start:.2f} s ({len(study.keys)} event times), "
          f"max RSS {_rss_mib():.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
