"""The ``sweep:`` section: a grid over config paths, plus seeds.

.. code-block:: yaml

    sweep:
      grid:                                   # any config path -> the values to try
        estimators.0.params.min_samples_leaf: [5, 20]
        data.synthetic.heterogeneity: [0.5, 1.0]
      seeds: [1, 2, 3]                        # each grid point once per seed
      on_error: continue                      # or stop: skip the remaining variants

The variants are the Cartesian product of the grid values (in the order written) and
the seeds; each is the experiment with those values set, as with ``--set``. Every variant
is validated before any runs (:func:`vaer.config.expand.expand_sweep`). ``vaer sweep``
runs them as one MLflow parent run with a child run per variant; ``vaer run`` refuses a
file with a ``sweep:`` block (use ``--set sweep=null`` to run the base experiment once).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from vaer.config.section import Section

_PATH = re.compile(r"^[A-Za-z_]\w*(\.\w+)*$")
_FORBIDDEN_ROOTS = {
    "seed": "vary the seed with `sweep.seeds`",
    "sweep": "a sweep cannot vary itself",
    "name": "every variant belongs to the experiment's name; vary something else",
    "tracking": "every variant must log to the same store and experiment as its parent",
    "base": "`base` files are merged before the sweep; vary the values themselves",
    "compute": "the sweep's backend runs every variant; set `compute` in the base experiment",
}


class SweepConfig(Section):
    """A grid of config values and seeds to run as variants of one experiment.

    Attributes
    ----------
    grid : dict
        Dotted config path (``estimators.0.params.cv``) -> non-empty list of values.
    seeds : list of int
        Seeds (``seed``) to run every grid point with; empty keeps the experiment's seed.
    on_error : {"continue", "stop"}
        After a variant fails: run the others anyway, or stop the sweep.
    max_variants : int
        Guard against an accidentally huge grid.
    """

    grid: dict[str, list[Any]] = {}
    seeds: list[int] = []
    on_error: Literal["continue", "stop"] = "continue"
    max_variants: int = Field(100, ge=1)

    @field_validator("grid")
    @classmethod
    def _check_grid(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for path, values in grid.items():
            if not _PATH.match(path):
                raise ValueError(
                    f"grid key '{path}' must be a dotted config path like 'estimators.0.params.cv'"
                )
            root = path.split(".")[0]
            if root in _FORBIDDEN_ROOTS:
                raise ValueError(f"grid key '{path}' is not allowed: {_FORBIDDEN_ROOTS[root]}")
            if not values:
                raise ValueError(f"grid key '{path}' needs at least one value; got []")
            seen: list[Any] = []
            for value in values:
                if value in seen:
                    raise ValueError(f"grid key '{path}' lists {value!r} twice")
                seen.append(value)
        return grid

    @field_validator("seeds")
    @classmethod
    def _check_seeds(cls, seeds: list[int]) -> list[int]:
        negative = [s for s in seeds if s < 0]
        if negative:
            raise ValueError(f"seeds must be ints >= 0; got {negative}")
        duplicated = sorted({s for s in seeds if seeds.count(s) > 1})
        if duplicated:
            raise ValueError(f"seeds must be distinct; {duplicated} appear twice")
        return seeds

    @model_validator(mode="after")
    def _check_size(self) -> SweepConfig:
        if not self.grid and not self.seeds:
            raise ValueError("a sweep needs a `grid` or `seeds` (or both)")
        if self.n_variants > self.max_variants:
            raise ValueError(
                f"the sweep has {self.n_variants} variants, more than `max_variants` = "
                f"{self.max_variants}; shrink the grid or raise `sweep.max_variants`"
            )
        return self

    @property
    def n_variants(self) -> int:
        """Number of variants: product of the grid sizes times the number of seeds."""
        count = max(len(self.seeds), 1)
        for values in self.grid.values():
            count *= len(values)
        return count
