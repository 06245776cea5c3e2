"""Reports from result tables: HTML (and CSV tables via the bundle). Computes no estimates."""

from vaer.reporting.bundle import ReportBundle
from vaer.reporting.html import render_html, write_html

__all__ = ["ReportBundle", "render_html", "write_html"]
