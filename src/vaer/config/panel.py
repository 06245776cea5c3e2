"""Config of panel mode: the synthetic firm-panel generator and the resilience measures.

``data.panel`` holds the parameters of :func:`vaer.data.synthetic.make_synthetic_panel`;
``measures`` says how :func:`vaer.measures.table.build_analysis_table` turns a firm-year
panel into one row per firm for one shock window (DESIGN.md section 5).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from vaer.config.section import Section

SHOCK_WINDOWS: dict[str, dict[str, list[int]]] = {
    "gfc2009": {"pre": [2006, 2007], "trough": [2009], "recovery": [2010, 2011]},
    "tradewar2019": {"pre": [2016, 2017], "trough": [2019], "recovery": [2021, 2022]},
    "covid2020": {"pre": [2017, 2018], "trough": [2020], "recovery": [2021, 2022]},
}
"""The named shock windows: pre-period years (their mean export level is the base, the
last one is the pre-shock year at which treatment and features are measured), trough
years and recovery years. The COVID window's pre-period stops at 2018 so that it does not
contain the 2019 trade-war trough."""


class SyntheticPanelConfig(Section):
    """Parameters of the built-in synthetic firm panel.

    See :func:`vaer.data.synthetic.make_synthetic_panel` for the formulas each enters.
    """

    n_firms: int = Field(20000, ge=200)
    n_cities: int = Field(150, ge=10)
    n_industries: int = Field(30, ge=2)
    start_year: int = Field(2005, ge=1990, le=2005)
    end_year: int = Field(2022, ge=2022, le=2040)
    ate: float = 0.5
    heterogeneity: float = Field(1.0, ge=0.0)
    confounding: float = Field(1.0, ge=0.0)
    unobserved_confounding: float = Field(0.0, ge=0.0)
    instrument_strength: float = Field(1.0, ge=0.0)
    noise: float = Field(0.5, gt=0.0)
    cluster_effect: float = Field(0.3, ge=0.0)
    industry_effect: float = Field(0.2, ge=0.0)
    recovery_ratio: float = 0.6
    entry_share: float = Field(0.35, ge=0.0, lt=1.0)
    exit_rate: float = Field(0.03, ge=0.0, lt=0.5)
    zero_rate: float = Field(0.02, ge=0.0, lt=0.5)
    missing_rate: float = Field(0.03, ge=0.0, lt=0.5)
    pilot_effect: float = Field(
        0.0, description="effect of the city pilot on log exports in its adoption year"
    )
    pilot_dynamics: float = Field(
        0.1, ge=-1.0, description="growth of the pilot effect per year since adoption"
    )
    pilot_heterogeneity: float = Field(
        1.0, ge=0.0, description="scale of the pilot effect's variation across firm types"
    )
    pretrend: float = Field(
        0.0,
        description="slope of a log-export trend specific to pilot cities (breaks parallel trends)",
    )


class ShockWindow(Section):
    """A shock window given by its years (all within the panel)."""

    pre: list[int] = Field(min_length=1)
    trough: list[int] = Field(min_length=1)
    recovery: list[int] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> ShockWindow:
        if max(self.pre) >= min(self.trough):
            raise ValueError(
                f"pre-period years {self.pre} must all come before the trough years {self.trough}"
            )
        if max(self.trough) >= min(self.recovery):
            raise ValueError(
                f"trough years {self.trough} must all come before the recovery years "
                f"{self.recovery}"
            )
        return self

    @property
    def base_year(self) -> int:
        """The pre-shock year: treatment, controls and modifiers are measured here."""
        return max(self.pre)


class MeasuresConfig(Section):
    """How panel mode builds outcome, treatment and features (DESIGN.md section 5).

    ``shock`` is a window name (``gfc2009``, ``tradewar2019``, ``covid2020``) or explicit
    years. ``winsorize`` gives the lower and upper quantiles the outcome is clipped to
    (``null`` = no clipping, the default, so the synthetic panel's truth stays exact).
    ``binarize`` turns the VA index into a 0/1 treatment with vaer's one rule, 1 strictly
    above the cut (the median or the 2/3 quantile; a firm at the cut is 0): before
    2026-12-02 ``top_tercile`` put a firm at the cut in the top group, which with a
    city-level VA index moved a whole city.
    """

    shock: Literal["gfc2009", "tradewar2019", "covid2020"] | ShockWindow = "covid2020"
    outcome: Literal["resistance", "recovery", "ratio", "survival", "composite"] = "resistance"
    growth: Literal["log", "dhs"] = "log"
    expected: Literal["national", "industry"] = "national"
    va_index: Literal["lq", "entropy", "pca"] = "lq"
    binarize: Literal["none", "median", "top_tercile"] = "none"
    winsorize: tuple[float, float] | None = None

    @field_validator("winsorize")
    @classmethod
    def _quantiles(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not 0.0 <= value[0] < value[1] <= 1.0:
            raise ValueError(
                f"must be two quantiles 0 <= low < high <= 1, e.g. [0.01, 0.99]; got {list(value)}"
            )
        return value

    @property
    def window(self) -> ShockWindow:
        """The shock window's years."""
        if isinstance(self.shock, ShockWindow):
            return self.shock
        return ShockWindow(**SHOCK_WINDOWS[self.shock])

    @property
    def window_name(self) -> str:
        """The window's name, or ``custom<trough year>``."""
        if isinstance(self.shock, str):
            return self.shock
        return f"custom{min(self.shock.trough)}"
