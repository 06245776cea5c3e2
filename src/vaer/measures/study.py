"""The data stage for either input mode: the validated analysis table of a study.

Table mode reads or generates the table (:func:`vaer.data.loading.load_data`). Panel mode
reads or generates the firm-year panel (:func:`vaer.data.loading.load_panel`), builds the
analysis table of the chosen shock window (:func:`build_analysis_table`), validates it
like a table, and for the synthetic panel attaches the truth of that window over the
table's firms.
"""

from __future__ import annotations

from vaer.config.labels import LabelsConfig
from vaer.config.models import DataConfig, Roles
from vaer.config.panel import MeasuresConfig
from vaer.data.loading import LoadedData, load_data, load_panel
from vaer.data.validation import validate_table
from vaer.measures.table import build_analysis_table


def load_study_data(
    config: DataConfig,
    roles: Roles,
    measures: MeasuresConfig | None = None,
    *,
    seed: int,
    labels: LabelsConfig | None = None,
) -> LoadedData:
    """The validated analysis table of a study, with its truth on synthetic data.

    Parameters
    ----------
    config : DataConfig
    roles : Roles
    measures : MeasuresConfig, optional
        How panel mode builds the table; defaults if omitted. Ignored in table mode.
    seed : int
        Seed of the synthetic generators.
    labels : LabelsConfig, optional
        The config's ``labels:`` (display and value labels; :mod:`vaer.data.labels`).

    Returns
    -------
    LoadedData
        In panel mode ``dropped`` counts the panel's firms left out by reason and
        ``panel`` describes the panel, the window and the measures.

    Raises
    ------
    FileNotFoundError
        If ``data.path`` does not exist.
    vaer.data.validation.DataValidationError
        If the panel or the table does not fit the roles.
    ValueError
        If the measures cannot be built (e.g. the window's years are not in the panel).
    """
    if config.mode == "table":
        return load_data(config, roles, seed=seed, labels=labels)
    chosen = measures or MeasuresConfig()
    panel = load_panel(config, roles, seed=seed, labels=labels)
    table = build_analysis_table(panel.frame, roles, chosen)
    validate_table(
        table.frame,
        roles,
        min_firms_per_type=config.min_firms_per_type,
        max_levels=config.max_levels,
        source=f"the analysis table built from {panel.source}",
    )
    truth = None
    exact = False
    synthetic = panel.synthetic
    if synthetic is not None and table.window_name in synthetic.windows:
        weights = table.outcome_weights
        exact = synthetic.truth_is_exact(
            table.window_name, chosen, va_firm=roles.va_firm, weights=weights
        )
        truth = synthetic.truth(
            table.window_name,
            table.frame[roles.unit].to_numpy(),
            weights=weights if weights is not None else (1.0, 0.0),
        )
    return LoadedData(
        frame=table.frame,
        source=panel.source,
        fingerprint=panel.fingerprint,
        truth=truth,
        dropped=table.dropped,
        panel={
            "panel_rows": len(panel.frame),
            "panel_firms": table.panel_firms,
            "shock": table.window_name,
            "window": table.window.model_dump(),
            "measures": chosen.model_dump(mode="json"),
            "winsorized": table.winsorized,
            "truth_exact": exact if truth is not None else None,
        },
        source_panel=panel,
        labels=dict(panel.labels),
    )
