"""Data sources: one module per dataset family, each registering into ``SOURCES``/``FORMATS``."""

from mtlrec.data.sources.base import FORMATS, SOURCES, Source, numbered_lines, open_text

__all__ = ["FORMATS", "SOURCES", "Source", "numbered_lines", "open_text"]
