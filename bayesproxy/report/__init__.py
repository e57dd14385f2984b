"""Shareable reports on a fit: one self-contained HTML page, or Markdown with PNGs beside it.

Examples
--------
>>> from bayesproxy.report import build_report
>>> build_report(forecaster, path="report.html")  # doctest: +SKIP
"""

from bayesproxy.report.build import build_report
from bayesproxy.report.content import ReportContent, convergence_verdict, gather

__all__ = ["ReportContent", "build_report", "convergence_verdict", "gather"]
