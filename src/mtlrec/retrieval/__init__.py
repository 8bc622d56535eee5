"""Candidate generation: approximate and exact nearest-neighbour search over item vectors."""

from __future__ import annotations

from mtlrec.retrieval.faiss_index import INDEX_KINDS, ItemIndex

__all__ = ["INDEX_KINDS", "ItemIndex"]
