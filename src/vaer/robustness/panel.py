"""The panel-mode :data:`~vaer.robustness.rebuild.Rebuild`: the analysis table rebuilt from
the run's firm-year panel for a calm window or with other measures.

A variant is either ``calm`` (the placebo-shock window) or a ``key=value`` override of the
run's ``measures:`` section, e.g. ``growth=dhs``, ``outcome=composite``,
``va_index=entropy``. The rebuilds reuse the panel the run loaded.
"""

from __future__ import annotations

from typing import Any

from vaer.config.models import Roles
from vaer.config.panel import MeasuresConfig, ShockWindow
from vaer.data.design import AnalysisData, build_analysis_data
from vaer.data.loading import LoadedPanel
from vaer.data.validation import validate_table
from vaer.measures.table import build_analysis_table
from vaer.robustness.rebuild import Rebuild

CALM = "calm"


def measures_variant(measures: MeasuresConfig, variant: str) -> MeasuresConfig:
    """``measures`` with the ``key=value`` override ``variant`` applied.

    Raises
    ------
    ValueError
        If ``variant`` is not ``key=value``, names no ``measures`` key, or gives a value
        the key does not take.
    """
    key, sep, value = variant.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key or not value:
        raise ValueError(
            f"an alternative measure must be `key=value` over `measures:` (e.g. growth=dhs); "
            f"got '{variant}'"
        )
    fields = sorted(MeasuresConfig.model_fields)
    if key not in fields or key == "shock":
        raise ValueError(
            f"alternative measure '{variant}': '{key}' is not a measures key to vary; "
            f"use one of {[f for f in fields if f != 'shock']}"
        )
    raw: dict[str, Any] = {**measures.model_dump(), key: value}
    try:
        return MeasuresConfig.model_validate(raw)
    except Exception as exc:  # pydantic's message names the allowed values
        raise ValueError(f"alternative measure '{variant}': {exc}") from None


def panel_rebuild(
    panel: LoadedPanel,
    roles: Roles,
    measures: MeasuresConfig,
    *,
    calm: ShockWindow,
    min_firms_per_type: int = 20,
    max_levels: int = 50,
) -> Rebuild:
    """A :data:`Rebuild` over the run's firm-year panel (already loaded, never reloaded).

    Parameters
    ----------
    panel : LoadedPanel
        The run's panel (:attr:`vaer.data.loading.LoadedData.source_panel`).
    roles, measures
        The run's sections.
    calm : ShockWindow
        The years of the placebo-shock window (variant ``calm``).
    min_firms_per_type, max_levels : int
        As ``data.min_firms_per_type`` and ``data.max_levels``: the rebuilt table is
        validated like the run's.
    """

    def rebuild(variant: str) -> AnalysisData:
        if variant == CALM:
            chosen = measures.model_copy(update={"shock": calm})
        else:
            chosen = measures_variant(measures, variant)
        table = build_analysis_table(panel.frame, roles, chosen)
        validate_table(
            table.frame,
            roles,
            min_firms_per_type=min_firms_per_type,
            max_levels=max_levels,
            source=f"the analysis table for '{variant}' built from {panel.source}",
        )
        return build_analysis_data(table.frame, roles)

    return rebuild
