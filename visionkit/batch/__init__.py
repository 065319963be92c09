"""Batch inference over collections that may outgrow one machine: the same run on a laptop (local engine) or on a
Ray cluster (``--engine ray``), results in a versioned Parquet/JSONL schema (``schema.py``) read back as typed
results by ``read_results``. See README "Batch inference"."""

from .engines import BatchSummary, run_batch
from .read import read_errors, read_results
from .schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "BatchSummary", "read_errors", "read_results", "run_batch"]
