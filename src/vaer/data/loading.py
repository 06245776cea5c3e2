"""The data stage: read or generate the analysis table (or the firm-year panel), validate
it, describe it.

Panel mode reads or generates the panel here (:func:`load_panel`); the measures that turn
it into the analysis table sit one layer up, in :func:`vaer.measures.study.load_study_data`,
which is what the pipeline calls for either mode.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd
from pydantic import BaseModel

from vaer.config.labels import LabelsConfig
from vaer.config.models import DataConfig, Roles
from vaer.data.labels import VARIABLE_LABELS, apply_value_labels, display_labels
from vaer.data.panel_validation import validate_panel
from vaer.data.readers import file_fingerprint, read_frame
from vaer.data.synthetic import SyntheticPanel, make_synthetic_panel
from vaer.data.synthetic_table import make_synthetic_table
from vaer.data.truth import Truth
from vaer.data.validation import DataValidationError, validate_table


@dataclass(frozen=True)
class LoadedData:
    """A validated analysis table and where it came from.

    Attributes
    ----------
    frame : DataFrame
        One row per unit.
    source : str
        The file path, or a description of the generator.
    fingerprint : str
        Hash of the input file's bytes, or of the generator's config and seed.
    truth : Truth or None
        Known effects, when the data are synthetic.
    dropped : dict
        Panel mode: firms of the panel left out of the table, by reason.
    panel : dict or None
        Panel mode: panel rows and firms, the shock window and the measures used.
    source_panel : LoadedPanel or None
        Panel mode: the firm-year panel the table was built from, kept so that stages
        rebuilding the table (placebo shock, alternative measures) do not load it again.
    labels : dict
        Column -> display label, for the columns given one (a Stata file's variable
        labels, overridden by the config's ``labels:``); see :meth:`label`.
    """

    frame: pd.DataFrame
    source: str
    fingerprint: str
    truth: Truth | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    panel: dict[str, Any] | None = None
    source_panel: LoadedPanel | None = field(default=None, compare=False, repr=False)
    labels: dict[str, str] = field(default_factory=dict)

    def label(self, column: str) -> str:
        """The display label of ``column`` (its name when it has none)."""
        return self.labels.get(column, column)

    def role_labels(self, roles: Roles) -> dict[str, str]:
        """Every column a role names -> its display label (the name when it has none)."""
        return {column: self.label(column) for column in roles.columns()}

    def summary(self, roles: Roles) -> dict[str, Any]:
        """Counts for the report and the run's tags (in panel mode also the panel's size,
        the shock window, the measures and the firms dropped by reason)."""
        extra: dict[str, Any] = {}
        if self.panel is not None:
            extra = {**self.panel, "dropped": dict(self.dropped)}
        return {
            "source": self.source,
            "fingerprint": self.fingerprint,
            "rows": len(self.frame),
            "units": int(self.frame[roles.unit].nunique()),
            "clusters": int(self.frame[roles.cluster].nunique())
            if roles.cluster
            else len(self.frame),
            "synthetic": self.truth is not None,
            **extra,
        }

    def tables(self) -> dict[str, pd.DataFrame]:
        """Tables for the report: in panel mode ``sample`` (firms kept and dropped by
        reason, with their share of the panel's firms); nothing in table mode."""
        if self.panel is None:
            return {}
        firms = max(int(self.panel["panel_firms"]), 1)
        rows = [("kept", len(self.frame)), *self.dropped.items()]
        frame = pd.DataFrame(rows, columns=["reason", "firms"])
        frame["share"] = frame["firms"] / firms
        return {"sample": frame}


def _generator_fingerprint(generator: str, seed: int, parameters: BaseModel) -> str:
    """Hash of a built-in generator's name, seed and parameters (the data's fingerprint)."""
    spec = json.dumps(
        {"generator": generator, "seed": seed, **parameters.model_dump()}, sort_keys=True
    )
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


def _read_input(config: DataConfig) -> tuple[pd.DataFrame, str, str]:
    """Frame, source description and fingerprint of the file ``data.path`` names."""
    if config.path is None:
        raise ValueError("`data.path` is required when `data.source` is 'file'")
    frame = read_frame(config.path, encoding=config.encoding)
    return frame, str(config.path), file_fingerprint(config.path)


def _labelled(
    frame: pd.DataFrame, labels: LabelsConfig | None, source: str
) -> tuple[pd.DataFrame, dict[str, str]]:
    """``frame`` with the config's value labels applied, and the display labels of its
    columns (the file's variable labels overridden by the config's).

    Raises
    ------
    DataValidationError
        If a column with value labels is missing or holds a value without a label.
    """
    file_labels = dict(frame.attrs.get(VARIABLE_LABELS, {}))
    if labels is None:
        return frame, file_labels
    frame, problems = apply_value_labels(frame, labels.value_labels())
    if problems:
        raise DataValidationError(problems, source=source)
    columns = [str(c) for c in frame.columns]
    merged = display_labels(columns, file_labels, labels.display())
    return frame, {c: label for c, label in merged.items() if label != c}


def load_data(
    config: DataConfig, roles: Roles, *, seed: int, labels: LabelsConfig | None = None
) -> LoadedData:
    """Read or generate the table named by ``config`` and validate it against ``roles``.

    ``labels`` (the config's ``labels:``) gives display labels and value labels
    (applied before validation, so a value-labelled column is a categorical firm type).

    Raises
    ------
    FileNotFoundError
        If ``data.path`` does not exist.
    vaer.data.validation.DataValidationError
        If the table does not fit the roles.
    ValueError
        If ``data.mode`` is 'panel' (use :func:`vaer.measures.study.load_study_data`).
    """
    if config.mode == "panel":
        raise ValueError(
            "`data.mode: panel` builds the table with the measures: call "
            "vaer.measures.study.load_study_data (as the pipeline does)"
        )
    if config.source == "synthetic":
        table = make_synthetic_table(config.synthetic, random_state=seed)
        loaded = LoadedData(
            frame=table.frame,
            source=f"built-in synthetic firm table (seed {seed}, {config.synthetic.n_units} firms)",
            fingerprint=_generator_fingerprint("synthetic_table", seed, config.synthetic),
            truth=table.truth,
        )
    else:
        loaded = LoadedData(*_read_input(config))
    frame, shown = _labelled(loaded.frame, labels, loaded.source)
    loaded = replace(loaded, frame=frame, labels=shown)
    validate_table(
        loaded.frame,
        roles,
        min_firms_per_type=config.min_firms_per_type,
        max_levels=config.max_levels,
        source=loaded.source,
    )
    return loaded


@dataclass(frozen=True)
class LoadedPanel:
    """A validated firm-year panel and where it came from.

    Attributes
    ----------
    frame : DataFrame
        Firm-year rows.
    source, fingerprint : str
        As in :class:`LoadedData`.
    synthetic : SyntheticPanel or None
        The generator's output (with its truth per shock window) for synthetic data.
    labels : dict
        As in :class:`LoadedData`.
    """

    frame: pd.DataFrame
    source: str
    fingerprint: str
    synthetic: SyntheticPanel | None = None
    labels: dict[str, str] = field(default_factory=dict)


def load_panel(
    config: DataConfig, roles: Roles, *, seed: int, labels: LabelsConfig | None = None
) -> LoadedPanel:
    """Read or generate the firm-year panel named by ``config`` and validate it.

    Parameters
    ----------
    config : DataConfig
        ``source: synthetic`` draws :func:`vaer.data.synthetic.make_synthetic_panel` with
        ``data.panel`` and ``seed``; ``source: file`` reads ``data.path``.
    roles : Roles
    seed : int
    labels : LabelsConfig, optional
        Display and value labels, as for :func:`load_data`.

    Raises
    ------
    FileNotFoundError
        If ``data.path`` does not exist.
    vaer.data.validation.DataValidationError
        If the panel does not fit the roles (:func:`validate_panel`).
    """
    if config.source == "synthetic":
        panel = make_synthetic_panel(config.panel, random_state=seed)
        loaded = LoadedPanel(
            frame=panel.frame,
            source=f"built-in synthetic firm panel (seed {seed}, {config.panel.n_firms} firms)",
            fingerprint=_generator_fingerprint("synthetic_panel", seed, config.panel),
            synthetic=panel,
        )
    else:
        loaded = LoadedPanel(*_read_input(config))
    frame, shown = _labelled(loaded.frame, labels, loaded.source)
    loaded = replace(loaded, frame=frame, labels=shown)
    validate_panel(
        loaded.frame,
        roles,
        min_firms_per_type=config.min_firms_per_type,
        max_levels=config.max_levels,
        source=loaded.source,
    )
    return loaded
