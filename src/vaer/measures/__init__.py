"""Measures: resilience outcomes and VA exposure from firm-year export panels.

Growth (DHS, log), expected growth (national, industry leave-one-out), resistance,
recovery, Martin's ratio, survival, composite, winsorising, the city VA index (location
quotient, entropy weights, PCA) and :func:`build_analysis_table`, which turns a panel into
one row per firm for one shock window (DESIGN.md section 5).
"""

from vaer.measures.table import DROP_REASONS, AnalysisTable, build_analysis_table

__all__ = ["DROP_REASONS", "AnalysisTable", "build_analysis_table"]
