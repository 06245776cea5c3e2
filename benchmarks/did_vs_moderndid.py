"""vaer.did against moderndid (the maintained Python port of R `did`) on one simulated panel.

Runs in a scratch environment that has moderndid (it is not a vaer dependency)::

    python -m venv /tmp/mdid && /tmp/mdid/bin/pip install "moderndid==0.2.0"
    PYTHONPATH=src /tmp/mdid/bin/python benchmarks/did_vs_moderndid.py

(moderndid 0.3+ requires Python >= 3.12; vaer runs on 3.11.) vaer.did needs only numpy,
scipy and pandas, so both run in that environment.

Design: ``vaer.did.simulate.simulate_staggered(n_units=3000, n_clusters=80, seed 7)``:
balanced, 10 years, cohorts 2014/2015/2016 + never treated, covariates x1, x2 (also a
second, unbalanced-free not-yet-treated run). Compared: every ATT(g, t), the dynamic
aggregation (by event time and overall, also with min_e/max_e and balance_e) and the
simple/group/calendar aggregations, also with anticipation=1; and
their analytic standard errors. moderndid's analytic SEs do not cluster (as R `did`'s),
so vaer is run with one cluster per firm there; its SE then differs from moderndid's by
the small-sample factor sqrt(n / (n - 1)) only, which the script divides out. Prints
max absolute differences.
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
from moderndid import aggte
from moderndid import att_gt as md_att_gt

from vaer.did import CellOptions, PanelColumns
from vaer.did.aggregate import aggregate
from vaer.did.att_gt import att_gt
from vaer.did.simulate import simulate_staggered


def compare(
    method: str, control: str, base: str, frame, n: int, anticipation: int = 0
) -> dict[str, float]:
    md = md_att_gt(
        frame,
        yname="y",
        tname="year",
        idname="firm",
        gname="cohort",
        xformla="~ x1 + x2",
        est_method=method,
        control_group={"never": "nevertreated", "notyet": "notyettreated"}[control],
        base_period=base,
        anticipation=anticipation,
        boot=False,
    )
    ours = att_gt(
        frame,
        PanelColumns(unit="firm", period="year", cohort="cohort", cluster="firm", outcome="y"),
        covariates=["x1", "x2"],
        method=method,
        options=CellOptions(control_group=control, base_period=base, anticipation=anticipation),
    )
    factor = np.sqrt(n / (n - 1))
    md_cells = {
        (int(g), int(t)): (a, s)
        for g, t, a, s in zip(md.groups, md.times, md.att_gt, md.se_gt, strict=True)
    }
    d_att, d_se = 0.0, 0.0
    for g, t, a, s in zip(ours.group, ours.time, ours.att, ours.se, strict=True):
        ma, ms = md_cells[(int(g), int(t))]
        d_att = max(d_att, abs(a - ma))
        if np.isfinite(s) and np.isfinite(ms) and ms > 0:
            d_se = max(d_se, abs(s / factor / ms - 1.0))
    out = {"cells": len(ours.att), "max|d att_gt|": d_att, "max rel d se_gt": d_se}
    variants = [(k, {}) for k in ("dynamic", "simple", "group", "calendar")]
    variants += [("dynamic", {"min_e": -3, "max_e": 2}), ("dynamic", {"balance_e": 2})]
    for kind, window in variants:
        mda = aggte(md, type=kind, boot=False, **window)
        agg = aggregate(ours, kind, **window)
        if window:
            kind = f"{kind}{window}"
        out[f"{kind}: |d overall|"] = abs(agg.overall_estimate - mda.overall_att)
        out[f"{kind}: rel d overall se"] = abs(agg.overall_se / factor / mda.overall_se - 1.0)
        if kind != "simple":
            md_keys = np.asarray(mda.event_times)
            md_est = dict(zip(md_keys.astype(int), np.asarray(mda.att_by_event), strict=True))
            md_se = dict(zip(md_keys.astype(int), np.asarray(mda.se_by_event), strict=True))
            de, ds = 0.0, 0.0
            for k, est, se in zip(agg.keys, agg.estimate, agg.se, strict=True):
                de = max(de, abs(est - md_est[int(k)]))
                if np.isfinite(se) and md_se[int(k)] > 0:
                    ds = max(ds, abs(se / factor / md_se[int(k)] - 1.0))
            same = set(md_keys.astype(int).tolist()) == set(agg.keys.tolist())
            out[f"{kind}: same keys (1 = yes)"] = float(same)
            out[f"{kind}: max|d by key|"] = de
            out[f"{kind}: max rel d se by key"] = ds
    return out


def main() -> None:
    warnings.filterwarnings("ignore", message="Used bootstrap procedure")
    warnings.filterwarnings("ignore", message="anticipation = 1")
    warnings.filterwarnings("ignore", message="The Wald pre-test is not reported")
    frame, _ = simulate_staggered(3000, 80, random_state=7)
    n = frame["firm"].nunique()
    print(f"panel: {len(frame)} rows, {n} firms, 80 cities; python {sys.version.split()[0]}")
    for method in ("dr", "ipw", "reg"):
        for control, base in (("never", "varying"), ("notyet", "varying"), ("never", "universal")):
            start = time.perf_counter()
            out = compare(method, control, base, frame, n)
            took = time.perf_counter() - start
            print(f"\n== method={method} control={control} base={base} ({took:.1f} s)")
            for key, value in out.items():
                print(f"  {key:50s} {value:.3g}")
    for method in ("dr", "reg"):
        out = compare(method, "notyet", "varying", frame, n, anticipation=1)
        print(f"\n== method={method} control=notyet base=varying anticipation=1")
        for key, value in out.items():
            print(f"  {key:50s} {value:.3g}")
    clustered(frame)
    mpdta()


def clustered(frame) -> None:
    """City-clustered SEs: vaer's analytic ones beside moderndid's clustered bootstrap."""
    md = md_att_gt(
        frame,
        yname="y",
        tname="year",
        idname="firm",
        gname="cohort",
        xformla="~ x1 + x2",
        boot=True,
        biters=5000,
        clustervars=["city"],
        random_state=0,
    )
    ours = att_gt(
        frame,
        PanelColumns(unit="firm", period="year", cohort="cohort", cluster="city", outcome="y"),
        covariates=["x1", "x2"],
    )
    ratio = ours.se / np.asarray(md.se_gt)
    print("\n== city-clustered SEs, method=dr, never-treated (moderndid: bootstrap, 5000 draws)")
    print(
        f"  ATT(g,t): vaer analytic / moderndid bootstrap: median {np.median(ratio):.3f}, "
        f"range {ratio.min():.3f}-{ratio.max():.3f}"
    )
    dyn_md = aggte(md, type="dynamic")
    dyn = aggregate(ours, "dynamic")
    print(f"  dynamic overall SE: vaer {dyn.overall_se:.4f}, moderndid {dyn_md.overall_se:.4f}")
    unclustered = aggregate(
        att_gt(
            frame,
            PanelColumns(unit="firm", period="year", cohort="cohort", cluster="firm", outcome="y"),
            covariates=["x1", "x2"],
        ),
        "dynamic",
    )
    print(f"  (vaer with one cluster per firm: {unclustered.overall_se:.4f})")


def mpdta() -> None:
    """The mpdta example of R `did` (shipped in moderndid's wheel): vaer beside the peers.

    R `did`'s documented numbers (never-treated controls, dr, no covariates): simple
    ATT -0.0400 (SE about 0.012), dynamic overall -0.0772. SEs here are analytic with one
    cluster per county (R's default SEs are bootstrap ones, so they differ slightly).
    """
    from moderndid.core.data import load_mpdta

    frame = load_mpdta().to_pandas()
    roles = PanelColumns(
        unit="countyreal", period="year", cohort="first.treat", cluster="countyreal",
        outcome="lemp",
    )  # fmt: skip
    ours = att_gt(frame, roles)
    md = md_att_gt(
        frame, yname="lemp", tname="year", idname="countyreal", gname="first.treat", boot=False
    )
    print("\n== mpdta (500 counties, 2003-2007), dr, never treated, no covariates")
    print(f"  max |d ATT(g,t)| vs moderndid: {np.max(np.abs(ours.att - md.att_gt)):.2g}")
    for kind, r_value in (("simple", -0.0400), ("dynamic", -0.0772)):
        agg = aggregate(ours, kind)
        peer = aggte(md, type=kind, boot=False)
        print(
            f"  {kind:8s} vaer {agg.overall_estimate:.4f} (SE {agg.overall_se:.4f})  "
            f"moderndid {peer.overall_att:.4f} (SE {peer.overall_se:.4f})  R did {r_value:.4f}"
        )


if __name__ == "__main__":
    main()
