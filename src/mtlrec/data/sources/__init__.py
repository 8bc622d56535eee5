"""Data sources: one module per dataset family, each registering into ``SOURCES``/``FORMATS``.

Importing this package imports every source module, so the registries are complete.
"""

from mtlrec.data.sources import amazon, census, movielens, retailrocket, tabular
from mtlrec.data.sources.base import FORMATS, SOURCES, Source, numbered_lines, open_binary

__all__ = [
    "FORMATS",
    "SOURCES",
    "Source",
    "amazon",
    "census",
    "movielens",
    "numbered_lines",
    "open_binary",
    "retailrocket",
    "tabular",
]
