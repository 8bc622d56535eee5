"""Glue from a trained run to the recommendation pipeline: ranking data, fitting the
retrievers and the fusion on the run's split, evaluation, persistence and ``recommend``."""
