"""Virtual-agglomeration index of cities from their digital components, and binarisation.

Three constructions from city-level components measured at the pre-shock year:

- location quotient of the first component (ICT-service employment share):
  ``LQ_c = s_c / mean_c(s_c)`` (every city weighted equally);
- entropy-weight composite: min-max normalise each component over cities to
  ``z_cj`` in [0, 1], ``p_cj = z_cj / sum_c z_cj``, entropy
  ``e_j = -sum_c p_cj ln p_cj / ln C``, weights ``w_j = (1 - e_j) / sum_j (1 - e_j)``,
  index ``sum_j w_j z_cj``;
- PCA: scores on the first principal component of the centred min-max-normalised
  components, signed so that the loadings sum to a positive number.

References
----------
OECD and JRC (2008). *Handbook on Constructing Composite Indicators: Methodology and
User Guide*. OECD Publishing (normalisation, weighting by PCA).
Shannon, C. E. (1948). A mathematical theory of communication. *Bell System Technical
Journal* 27 (the entropy behind entropy weights).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def location_quotient(share: pd.Series) -> pd.Series:
    """``share / mean(share)`` over the cities given.

    Raises
    ------
    ValueError
        If the mean share is not positive.
    """
    mean = float(share.mean())
    if not mean > 0:
        raise ValueError(f"the location quotient needs a positive mean share; got {mean}")
    return share / mean


def minmax(components: pd.DataFrame) -> pd.DataFrame:
    """Each column rescaled to [0, 1] over the rows (a constant column becomes 0)."""
    low, high = components.min(), components.max()
    span = (high - low).where(high > low, 1.0)
    return (components - low) / span


def entropy_index(components: pd.DataFrame) -> pd.Series:
    """Entropy-weight composite of min-max-normalised components (module docstring).

    Raises
    ------
    ValueError
        If there are fewer than two cities.
    """
    if len(components) < 2:
        raise ValueError(f"the entropy index needs at least 2 cities; got {len(components)}")
    z = minmax(components)
    totals = z.sum().where(z.sum() > 0, 1.0)
    p = z / totals
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    entropy = -plogp.sum(axis=0) / np.log(len(components))
    divergence = 1.0 - entropy
    weights = (
        divergence / divergence.sum()
        if divergence.sum() > 0
        else np.full(z.shape[1], 1.0 / z.shape[1])
    )
    return pd.Series(z.to_numpy() @ weights, index=components.index)


def pca_index(components: pd.DataFrame) -> pd.Series:
    """First-principal-component scores of the centred min-max-normalised components."""
    z = minmax(components).to_numpy()
    centred = z - z.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    loading = vt[0]
    if loading.sum() < 0:
        loading = -loading
    return pd.Series(centred @ loading, index=components.index)


def city_index(components: pd.DataFrame, method: str) -> pd.Series:
    """The VA index of each city (rows of ``components``) by ``method``.

    Parameters
    ----------
    components : DataFrame of shape (cities, k)
        City-level components at the pre-shock year; the first is the ICT-service
        employment share used by the location quotient.
    method : {'lq', 'entropy', 'pca'}

    Raises
    ------
    ValueError
        For an unknown method.
    """
    if method == "lq":
        return location_quotient(components.iloc[:, 0])
    if method == "entropy":
        return entropy_index(components)
    if method == "pca":
        return pca_index(components)
    raise ValueError(f"`va_index` must be 'lq', 'entropy' or 'pca'; got {method!r}")


BINARY_CUTS = {"median": 0.5, "top_tercile": 2 / 3}
"""The binarisation rules and the quantile each cuts at."""


def binarise(t: np.ndarray, rule: str) -> tuple[np.ndarray, float]:
    """A binary treatment from a continuous one: ``1`` strictly above the cut.

    The one rule of vaer (``measures.binarize`` and estimators' ``binarise``): ``median``
    is 1 above the sample median, ``top_tercile`` 1 above the 2/3 quantile; a unit at the
    cut is 0.

    Parameters
    ----------
    t : ndarray of shape (n,)
    rule : {"median", "top_tercile"}

    Returns
    -------
    d : ndarray of shape (n,) of 0/1 floats
    threshold : float

    Raises
    ------
    ValueError
        On an unknown rule or when one arm would be empty.
    """
    if rule not in BINARY_CUTS:
        raise ValueError(f"unknown binarisation rule '{rule}'; allowed: {sorted(BINARY_CUTS)}")
    t = np.asarray(t, dtype=np.float64)
    threshold = float(np.quantile(t, BINARY_CUTS[rule]))
    d = (t > threshold).astype(np.float64)
    if d.min() == d.max():
        raise ValueError(
            f"binarising the treatment at its {rule} ({threshold:.4g}) leaves one arm empty; "
            "the treatment has too few distinct values to binarise"
        )
    return d, threshold
