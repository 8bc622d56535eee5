"""The experiment report (``mtlrec report``): run folders and benchmark results -> one
self-contained HTML page and its Markdown twin.

- :mod:`~mtlrec.report.collect` reads run folders and benchmark JSON into typed records,
- :mod:`~mtlrec.report.overview`, ``training``, ``compare``, ``ranking``, ``peers`` build the
  sections (:mod:`~mtlrec.report.document` is their shared model),
- :mod:`~mtlrec.report.plots` draws the figures (matplotlib, Agg, PNG),
- :mod:`~mtlrec.report.html` and :mod:`~mtlrec.report.markdown` render the document.
"""

from mtlrec.report.build import build_document, write_report
from mtlrec.report.collect import NotARunError, ReportInputError, load_run, load_runs

__all__ = [
    "NotARunError",
    "ReportInputError",
    "build_document",
    "load_run",
    "load_runs",
    "write_report",
]
