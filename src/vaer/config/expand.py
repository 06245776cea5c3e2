"""Expanding a ``sweep:`` block into validated variant configs.

Each variant is the experiment's merged raw mapping (defaults, ``base`` files, the file,
``--set`` overrides) with the ``sweep`` block removed and the variant's values set at
their paths, then validated like any experiment. All variants are validated before any
of them runs; every problem is reported with the variant's number, its values and the
full key path.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from vaer.config.loader import ConfigError, load_raw, set_path, validate_config
from vaer.config.models import ExperimentConfig
from vaer.config.sweep import SweepConfig


@dataclass(frozen=True)
class Variant:
    """One point of a sweep.

    Attributes
    ----------
    index : int
        1-based position in the sweep.
    assignments : dict
        Config path -> value of this variant (``seed`` included when seeds are swept).
    config : ExperimentConfig
        The validated experiment of this variant (no ``sweep`` block).
    """

    index: int
    assignments: dict[str, Any]
    config: ExperimentConfig

    @property
    def label(self) -> str:
        """``path=value`` pairs, e.g. ``estimators.0.params.cv=2 seed=1``."""
        return " ".join(f"{k}={v}" for k, v in self.assignments.items())


@dataclass(frozen=True)
class SweepPlan:
    """A validated sweep: the base experiment and every variant.

    Attributes
    ----------
    base : ExperimentConfig
        The experiment as written, including its ``sweep`` block.
    variants : tuple of Variant
    """

    base: ExperimentConfig
    variants: tuple[Variant, ...]

    @property
    def sweep(self) -> SweepConfig:
        """The ``sweep`` block."""
        if self.base.sweep is None:  # pragma: no cover - guaranteed by expand_sweep
            raise ValueError("the base experiment has no `sweep` block")
        return self.base.sweep

    def to_frame(self) -> pd.DataFrame:
        """One row per variant: ``variant`` and one column per swept path."""
        return pd.DataFrame(
            [
                {"variant": v.index, **{k: str(x) for k, x in v.assignments.items()}}
                for v in self.variants
            ]
        )


def _combinations(sweep: SweepConfig) -> list[dict[str, Any]]:
    paths = list(sweep.grid)
    points = [
        dict(zip(paths, values, strict=True)) for values in itertools.product(*sweep.grid.values())
    ]
    if not sweep.seeds:
        return points
    return [{**point, "seed": seed} for point in points for seed in sweep.seeds]


def expand_sweep(raw: Mapping[str, Any], source: str | None = None) -> SweepPlan:
    """Validate an experiment with a ``sweep:`` block and every one of its variants.

    Parameters
    ----------
    raw : mapping
        The merged raw experiment (see :func:`vaer.config.loader.load_raw`).
    source : str, optional
        The file name, for messages.

    Returns
    -------
    SweepPlan

    Raises
    ------
    ConfigError
        If the experiment has no ``sweep`` block, or is invalid, or any variant is: every
        problem of every variant, as ``variant 3 (a.b=1 seed=2): a.b: problem``.
    """
    base = validate_config(raw, source=source)
    if base.sweep is None:
        raise ConfigError(
            ["sweep: this experiment has no `sweep:` block; add one, or use `vaer run`"],
            source=source,
        )
    problems: list[str] = []
    variants: list[Variant] = []
    for index, assignments in enumerate(_combinations(base.sweep), start=1):
        tree = copy.deepcopy(dict(raw))
        tree.pop("sweep", None)
        label = " ".join(f"{k}={v}" for k, v in assignments.items())
        try:
            for path, value in assignments.items():
                set_path(tree, path.split("."), copy.deepcopy(value))
            config = validate_config(tree)
        except ConfigError as exc:
            problems.extend(f"variant {index} ({label}): {problem}" for problem in exc.problems)
            continue
        variants.append(Variant(index=index, assignments=assignments, config=config))
    if problems:
        raise ConfigError(problems, source=source)
    return SweepPlan(base=base, variants=tuple(variants))


def load_sweep(path: Path | str, overrides: Iterable[str] = ()) -> SweepPlan:
    """Load an experiment file with a ``sweep:`` block and expand it.

    Raises
    ------
    ConfigError
        As :func:`expand_sweep`, or if the file cannot be read.
    """
    return expand_sweep(load_raw(path, overrides), source=str(path))
