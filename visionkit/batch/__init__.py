"""Batch inference over collections that may outgrow one machine: the same run on a laptop (local engine) or on a
Ray cluster (``--engine ray``), results in a versioned Parquet/JSONL schema (``schema.py``) read back as typed
results by ``read_results`` (or queried as a ``pyarrow.dataset`` by ``dataset``), on a local disk or any filesystem
pyarrow opens (``s3://``, ``gs://``). See README "Batch inference"."""

from .engines import BatchSummary, run_batch
from .read import dataset, read_errors, read_results
from .schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "BatchSummary", "dataset", "read_errors", "read_results", "run_batch"]
