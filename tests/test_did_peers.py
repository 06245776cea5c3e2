"""vaer.did against R ``did``'s mpdta example and moderndid 0.2 (the Python port of R
``did``, a test-only dependency) on the same data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vaer.did import CellOptions, PanelColumns, aggregate, att_gt

MPDTA = PanelColumns(
    unit="countyreal", period="year", cohort="first.treat", cluster="countyreal", outcome="lemp"
)
"""mpdta's roles (one county per cluster)."""
R_DID = {"simple": -0.0400, "dynamic": -0.0772}
"""R ``did``'s documented overall ATTs on mpdta (dr, never-treated controls, no
covariates), to four decimals."""


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    from moderndid.core.data import load_mpdta

    return load_mpdta().to_pandas()


def test_mpdta_matches_r_did_and_moderndid(mpdta: pd.DataFrame) -> None:
    from moderndid import aggte
    from moderndid import att_gt as md_att_gt

    ours = att_gt(mpdta, MPDTA, options=CellOptions(inference="asymptotic"))
    peer = md_att_gt(
        mpdta, yname="lemp", tname="year", idname="countyreal", gname="first.treat", boot=False
    )
    np.testing.assert_allclose(ours.att, np.asarray(peer.att_gt), atol=1e-9)
    n = mpdta["countyreal"].nunique()
    small_sample = np.sqrt(n / (n - 1))  # vaer's G / (G - 1) with one county per cluster
    np.testing.assert_allclose(ours.se, np.asarray(peer.se_gt) * small_sample, rtol=1e-6)
    for kind, published in R_DID.items():
        agg = aggregate(ours, kind)
        theirs = aggte(peer, type=kind, boot=False)
        assert agg.overall_estimate == pytest.approx(theirs.overall_att, abs=1e-9)
        assert agg.overall_se == pytest.approx(theirs.overall_se * small_sample, rel=1e-6)
        assert abs(agg.overall_estimate - published) < 5e-5, (kind, agg.overall_estimate)
    assert aggregate(ours, "simple").overall_se == pytest.approx(0.012, abs=0.001)
    # the small-cluster mode: same estimates; with one county per cluster its leverage
    # factor is at most (1 - 1/20)^(-1/2) = 1.026 (the 2004 cohort has 20 counties)
    small = att_gt(mpdta, MPDTA)
    np.testing.assert_allclose(small.att, ours.att, atol=1e-12)
    np.testing.assert_allclose(small.se, ours.se, rtol=0.03)
    simple = aggregate(small, "simple")
    assert simple.overall_estimate == pytest.approx(-0.0400, abs=5e-5)
    assert simple.overall_se == pytest.approx(0.012, abs=0.001)
