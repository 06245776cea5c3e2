"""Forest variances and intervals computed a block of rows at a time.

econml's generalized random forests compute the bootstrap-of-little-bags variance by
holding every subforest's prediction for every row at once: one ``effect_inference``
call on 200k rows of a 400-tree forest allocated 1.85 GiB, and 0.46 GiB in 50k-row
blocks, no slower. That one call set the peak of a 1M-row run (11.0 GiB; 3.3 GiB in
blocks). Every per-unit variance or interval of a forest goes through :func:`by_rows`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

#: Rows per block.
ROWS = 50_000

T = TypeVar("T")


def by_rows(function: Callable[[np.ndarray], T], x: np.ndarray, rows: int | None = None) -> list[T]:
    """``function`` on consecutive blocks of at most ``rows`` rows of ``x``, in order.

    Parameters
    ----------
    function : callable
        Takes an array of shape (m, p) with m <= ``rows``.
    x : ndarray of shape (n, p)
    rows : int, optional
        Block size; default :data:`ROWS` (read at call time).

    Returns
    -------
    list
        One result per block; an empty list when ``n == 0``.

    Raises
    ------
    ValueError
        If ``rows < 1``.
    """
    size = ROWS if rows is None else rows
    if not isinstance(size, int | np.integer) or size < 1:
        raise ValueError(f"`rows` must be an int >= 1; got {size!r}")
    return [function(x[start : start + size]) for start in range(0, len(x), size)]
