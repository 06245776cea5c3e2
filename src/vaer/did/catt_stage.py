"""The did stage's CATT model (``did.catt: true``): per-firm effects, tests, channels,
mechanism tests.

On the did stage's sample (its outcome, cohorts, cities and ``did.covariates``), restricted
to the firms observed in every year (the per-firm post-period average needs all of them;
the others are counted in a note), :mod:`vaer.did.pseudo` forms each firm's DR-DiD score,
:mod:`vaer.did.catt` fits the cluster-honest CATT forest and runs its calibration test,
RATE and SHAP channels (the channels of ``roles.mechanisms`` whose proxies are all
``did.covariates``), and :mod:`vaer.did.mechanisms` estimates the DiD effect on each
mediator (``did.mediators``, or else the mechanism proxies that are numeric columns of the
panel, as yearly outcomes). Tables: ``did_catt`` (per firm), ``did_catt_tests``,
``did_channels`` (a forest's share intervals withheld unless
``attribution.smoothed_share_intervals``, as in the attribution stage), ``did_mechanisms``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vaer.attribution.share_intervals import (
    WITHHELD,
    label_share_intervals,
    share_interval_label,
)
from vaer.config.did import DidConfig
from vaer.context import RunContext
from vaer.did.catt import CattChannels, CattModel, CattTests, catt_channels, catt_tests, fit_catt
from vaer.did.mechanisms import did_mechanisms
from vaer.did.pseudo import post_period_scores
from vaer.did.run_spec import SAMPLE_COLUMNS, cell_options


@dataclass(frozen=True)
class DidCattResult:
    """The CATT model of the did stage and what was built on it.

    Attributes
    ----------
    model : CattModel
    tests : CattTests or None
        None when the tests could not run (the reason in ``notes``).
    channels : CattChannels or None
        None without mechanism channels among the covariates.
    mechanisms : pandas.DataFrame
        ``did_mechanisms`` rows (empty without mediators).
    n_left_out : int
        Firms of the did sample left out because not observed in every year.
    notes : tuple of str
    seconds : float
        Wall time of the CATT model, its tests, channels and mechanism tests.
    share_intervals : str
        What the channel-share intervals cover, or why they are withheld
        (:func:`vaer.attribution.share_intervals.share_interval_label` of a forest:
        withheld unless ``attribution.smoothed_share_intervals``).
    """

    model: CattModel
    tests: CattTests | None
    channels: CattChannels | None
    mechanisms: pd.DataFrame = field(default_factory=pd.DataFrame)
    n_left_out: int = 0
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    share_intervals: str = WITHHELD

    def tables(self, outcome: str) -> dict[str, pd.DataFrame]:
        """``did_catt``, ``did_catt_tests``, ``did_channels``, ``did_mechanisms`` (those
        computed), each with an ``outcome`` column (the mechanisms': the mediator's)."""
        out = {"did_catt": self.model.to_frame().assign(outcome=outcome)}
        if self.tests is not None:
            out["did_catt_tests"] = self.tests.to_frame().assign(outcome=outcome)
        if self.channels is not None:
            shares = label_share_intervals(self.channels.to_frame(), self.share_intervals)
            out["did_channels"] = shares.assign(outcome=outcome)
        if not self.mechanisms.empty:
            out["did_mechanisms"] = self.mechanisms
        return out

    def metrics(self) -> dict[str, float]:
        """``did_catt.*``: the ATT the scores average to, the spread of the CATT, the
        tests' estimates and p-values, channel shares; ``did_mechanism.<mediator>.*``."""
        tau = self.model.tau_hat
        out = {
            "did_catt.att": self.model.pseudo.att,
            "did_catt.tau_hat_mean": float(np.mean(tau)),
            "did_catt.tau_hat_sd": float(np.std(tau)),
            "did_catt.firms": float(len(tau)),
            "did_catt.firms_left_out": float(self.n_left_out),
            "time.did.catt": self.seconds,
        }
        if self.tests is not None:
            out.update(self.tests.metrics())
        if self.channels is not None:
            shares = self.channels.metrics()
            if self.share_intervals == WITHHELD:  # no metric for an interval not printed
                shares = {k: v for k, v in shares.items() if not k.endswith(("ci_low", "ci_high"))}
            out.update(shares)
        for row in self.mechanisms.to_dict("records"):
            prefix = f"did_mechanism.{row['mediator']}"
            out[f"{prefix}.att"] = float(row["att"])
            out[f"{prefix}.se"] = float(row["se"])
            out[f"{prefix}.p_value"] = float(row["p_value"])
        return out


def balanced_firms(sample: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The rows of the firms observed in every year of ``sample``, and how many firms
    were left out."""
    years = sample["year"].nunique()
    counts = sample.groupby("unit")["year"].nunique()
    full = counts.index[counts == years]
    return sample[sample["unit"].isin(full)].reset_index(drop=True), int(len(counts) - len(full))


def _mediators(ctx: RunContext, frame: pd.DataFrame, config: DidConfig) -> list[str]:
    """``did.mediators``, or else the mechanism proxies that are numeric panel columns."""
    if config.mediators:
        return list(config.mediators)
    proxies = [p for ps in ctx.config.roles.mechanisms.values() for p in ps]
    numeric = [p for p in dict.fromkeys(proxies) if p in frame]
    return [p for p in numeric if pd.api.types.is_numeric_dtype(frame[p])]


def did_catt(
    ctx: RunContext, sample: pd.DataFrame, frame: pd.DataFrame, config: DidConfig
) -> DidCattResult | None:
    """The CATT model on the did stage's ``sample`` (unit, year, cohort, cluster, y,
    covariates) with mediators read from the panel ``frame``; None when ``did.catt`` is off.

    Raises
    ------
    ValueError
        If no firm is observed in every year, or as :func:`vaer.did.pseudo.post_period_scores`
        and :func:`vaer.did.catt.fit_catt` (e.g. fewer than 12 cities).
    """
    if not config.catt:
        return None
    started = time.perf_counter()
    balanced, left_out = balanced_firms(sample)
    if balanced.empty:
        raise ValueError(
            "did.catt: no firm is observed in every year of the DiD sample; narrow "
            "did.first_year / did.last_year"
        )
    notes: list[str] = []
    if left_out:
        notes.append(
            f"CATT on the balanced subpanel: {balanced['unit'].nunique():,} firms observed "
            f"in every year; {left_out:,} firms left out"
        )
    ctx.progress(f"DiD: CATT forest on {balanced['unit'].nunique():,} firms")
    pseudo = post_period_scores(
        balanced, SAMPLE_COLUMNS, covariates=list(config.covariates),
        anticipation=config.anticipation,
    )  # fmt: skip
    model = fit_catt(pseudo, random_state=ctx.seed)
    tests: CattTests | None = None
    try:
        tests = catt_tests(
            model, n_bootstrap=ctx.config.heterogeneity.n_bootstrap, random_state=ctx.seed
        )
    except ValueError as exc:
        notes.append(f"no CATT calibration test or RATE: {exc}")
    mechanisms = {
        channel: proxies
        for channel, proxies in ctx.config.roles.mechanisms.items()
        if proxies and set(proxies) <= set(config.covariates)
    }
    skipped = sorted(set(ctx.config.roles.mechanisms) - set(mechanisms))
    if skipped:
        notes.append(f"CATT channels {skipped} left out: their proxies are not all did.covariates")
    channels = None
    if mechanisms:
        ctx.progress(f"DiD: SHAP channels of the CATT ({', '.join(mechanisms)})")
        attribution = ctx.config.attribution
        channels = catt_channels(
            model, mechanisms, n_units=attribution.n_units,
            n_background=attribution.n_background,
            surrogate_options=attribution.surrogate.model_dump(),
            ci_level=attribution.ci_level, random_state=ctx.seed,
        )  # fmt: skip
    mechanism_rows = _mechanism_tests(ctx, sample, frame, config, notes)
    seconds = time.perf_counter() - started
    method = channels.explanation.method if channels is not None else "tree_surrogate"
    label = share_interval_label(method, ctx.config.attribution.smoothed_share_intervals)
    return DidCattResult(
        model, tests, channels, mechanism_rows, left_out, tuple(notes), seconds, label
    )


def _mechanism_tests(
    ctx: RunContext, sample: pd.DataFrame, frame: pd.DataFrame, config: DidConfig,
    notes: list[str],
) -> pd.DataFrame:  # fmt: skip
    """``did_mechanisms``: cs_did with each mediator as the outcome, on the did sample's
    firm-years where the mediator is observed (the others counted in ``notes``)."""
    mediators = _mediators(ctx, frame, config)
    if not mediators:
        return pd.DataFrame()
    roles = ctx.config.roles
    absent = [m for m in mediators if m not in frame]
    if absent:
        raise ValueError(f"did.mediators {absent} are not columns of the panel")
    ctx.progress(f"DiD: mechanism tests on {', '.join(mediators)}")
    values = frame[[roles.unit, roles.time, *mediators]].rename(
        columns={roles.unit: "unit", roles.time: "year"}
    )
    base = sample.drop(columns=[m for m in mediators if m in sample])  # yearly values below
    data = base.merge(values, on=["unit", "year"], how="left", validate="one_to_one")
    rows = []
    for mediator in mediators:
        observed = data[np.isfinite(pd.to_numeric(data[mediator], errors="coerce"))]
        missing = len(data) - len(observed)
        if missing:
            notes.append(
                f"mechanism test of {mediator}: {missing:,} firm-years without it left out"
            )
        try:
            rows.append(
                did_mechanisms(
                    observed, [mediator], SAMPLE_COLUMNS,
                    covariates=list(config.covariates) or None, options=cell_options(config),
                )
            )  # fmt: skip
        except ValueError as exc:
            notes.append(str(exc))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
