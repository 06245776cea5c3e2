"""The panel-mode :data:`~vaer.robustness.rebuild.Rebuild`: the analysis table rebuilt from
the run's firm-year panel for a calm window or with other measures.

A variant is either ``calm`` (the placebo-shock window) or a ``key=value`` override of the
run's ``measures:`` section, e.g. ``growth=dhs``, ``outcome=composite``,
``va_index=entropy``. The panel is loaded once, on the first call.
"""

from __future__ import annotations

from typing import Any

from vaer.config.models import DataConfig, Roles
from vaer.config.panel import MeasuresConfig, ShockWindow
from vaer.data.design import AnalysisData, build_analysis_data
from vaer.data.loading import load_panel
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
    data: DataConfig,
    roles: Roles,
    measures: MeasuresConfig,
    *,
    calm: ShockWindow,
    seed: int,
) -> Rebuild:
    """A :data:`Rebuild` over the run's panel.

    Parameters
    ----------
    data, roles, measures
        The run's sections (``data.mode`` must be ``panel``).
    calm : ShockWindow
        The years of the placebo-shock window (variant ``calm``).
    seed : int
        The run's seed (the synthetic panel is drawn with it, as in the run).

    Raises
    ------
    ValueError
        If ``data.mode`` is not ``panel``.
    """
    if data.mode != "panel":
        raise ValueError(f"rebuilding the analysis table needs `data.mode: panel`; got {data.mode}")
    cache: dict[str, Any] = {}

    def rebuild(variant: str) -> AnalysisData:
        if "panel" not in cache:
            cache["panel"] = load_panel(data, roles, seed=seed)
        panel = cache["panel"]
        if variant == CALM:
            chosen = measures.model_copy(update={"shock": calm})
        else:
            chosen = measures_variant(measures, variant)
        table = build_analysis_table(panel.frame, roles, chosen)
        validate_table(
            table.frame,
            roles,
            min_firms_per_type=data.min_firms_per_type,
            source=f"the analysis table for '{variant}' built from {panel.source}",
        )
        return build_analysis_data(table.frame, roles)

    return rebuild
