"""Expected (benchmark) growth over a shock window: national or industry shift-share.

Resistance and recovery are a firm's growth minus what it would have grown had it moved
with the benchmark (Martin et al. 2016): the nation as a whole, or its industry without
the firm itself (leave-one-out, so a firm is not compared with itself).

References
----------
Martin, R., Sunley, P., Gardiner, B. and Tyler, P. (2016). How regions react to
recessions: resilience and the role of economic structure. *Regional Studies* 50(4).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vaer.measures.growth import growth


def national_expected(x0: np.ndarray, x1: np.ndarray, kind: str) -> float:
    """Growth of aggregate exports, ``growth(sum x0, sum x1)``, the same for every firm.

    Parameters
    ----------
    x0, x1 : array of shape (n,)
        Base and end levels of the benchmark firms.
    kind : {'dhs', 'log'}
    """
    return float(growth(np.array([np.sum(x0)]), np.array([np.sum(x1)]), kind)[0])


def industry_expected(
    x0: np.ndarray, x1: np.ndarray, industry: np.ndarray, kind: str
) -> np.ndarray:
    """Leave-one-out industry growth: ``growth(S0_k - x0_i, S1_k - x1_i)`` for firm i in k.

    ``S0_k``, ``S1_k`` are the industry's total base and end exports. NaN where the firm is
    alone in its industry (no benchmark) or the rest of the industry exported nothing.

    Parameters
    ----------
    x0, x1 : array of shape (n,)
    industry : array of shape (n,)
        Industry label per firm.
    kind : {'dhs', 'log'}

    Returns
    -------
    ndarray of shape (n,)
    """
    x0 = np.asarray(x0, dtype=np.float64)
    x1 = np.asarray(x1, dtype=np.float64)
    groups = pd.Series(industry)
    s0 = pd.Series(x0).groupby(groups).transform("sum").to_numpy()
    s1 = pd.Series(x1).groupby(groups).transform("sum").to_numpy()
    size = groups.groupby(groups).transform("size").to_numpy()
    out = growth(s0 - x0, s1 - x1, kind)
    return np.where(size > 1, out, np.nan)
