"""The batch results schema, version 2: three tables under the output folder (local or a URI such as
``s3://bucket/results``), Hive-partitioned by task and model, one file per block per table::

    OUT/_batch.json                                 {"schema_version": 2, "format": "parquet"}
    OUT/frames/task=detect/model=yolov5n/part-<hash>.parquet
    OUT/objects/task=detect/model=yolov5n/part-<hash>.parquet
    OUT/errors/task=detect/model=yolov5n/part-<hash>.parquet
    OUT/_committed/task=detect/model=yolov5n/part-<hash>.json

``frames/``   one row per image or video frame: source, frame_index, timestamp (seconds into a video; null for an
              image), task, model, schema_version, height, width, n_objects, and for classify the top-k as three
              parallel lists top_class_ids / top_class_names / top_scores (empty for other tasks).
``objects/``  one row per detected object (detect, track): the frame's keys (source, frame_index, timestamp, task,
              model, schema_version), object_index (order within its frame), x1 y1 x2 y2 (source-image pixels),
              score, class_id, class_name, track_id (null unless the task tracks).
``errors/``   one row per input that could not be processed: source, task, model, schema_version, reason (one line).

Partitions: ``task=T/model=M`` folders (the model name URI-encoded, as pyarrow's and Ray Data's Hive partitioning
decode it), so one folder holds the runs of several tasks and models, and ``pyarrow.dataset.dataset(OUT/frames,
partitioning="hive")`` or ``ray.data.read_parquet(OUT/frames)`` reads them with ``task``/``model`` filters that
skip the other partitions' files. The files keep ``task`` and ``model`` as columns too, so a single file is
self-describing; both readers unify the two. A folder holds one format and schema version.

``_committed/`` one JSON marker per committed block listing its inputs. A block's table files are each written
              whole (a rename on disk; one object on an object store, which has no rename) before its marker, so
              only blocks with a marker count and a rerun skips their inputs. Block names are a hash of their
              inputs, so a retried block overwrites its own files: nothing is duplicated. A run starts by deleting
              its partition's files that no marker commits (a crashed block's), so once a run has finished every
              table file is committed; while one runs, ``visionkit.batch.dataset`` / ``read_results`` read only
              committed blocks.

Readers must check ``schema_version``; a new field or layout gets a new version (1: the same tables, not
partitioned).

The same object rows are the one tabular layout of single results too (``TABLE``: the ``objects`` columns plus
``keypoints``): the CLI's ``--csv`` / ``--parquet`` sinks, ``Result.to_pandas()`` and ``results_to_frame``. There a
classification or action result gives one row per top-k class (``object_index`` = rank, no box), a pose one
``keypoints`` list of (x, y, confidence) per person.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pyarrow as pa

from ..results import Classification, Detections, Result

if TYPE_CHECKING:
    from ..io.sources import Frame

SCHEMA_VERSION = 2
COMMITTED = "_committed"
RUN_FILE = "_batch.json"
TABLES = ("frames", "objects", "errors")
FORMATS = ("parquet", "jsonl")

_KEYS = [("source", pa.string()), ("frame_index", pa.int64()), ("timestamp", pa.float64()), ("task", pa.string()),
         ("model", pa.string()), ("schema_version", pa.int32())]
FRAMES = pa.schema([*_KEYS, ("height", pa.int32()), ("width", pa.int32()), ("n_objects", pa.int32()),
                    ("top_class_ids", pa.list_(pa.int64())), ("top_class_names", pa.list_(pa.string())),
                    ("top_scores", pa.list_(pa.float32()))])
OBJECTS = pa.schema([*_KEYS, ("object_index", pa.int32()), ("x1", pa.float32()), ("y1", pa.float32()),
                     ("x2", pa.float32()), ("y2", pa.float32()), ("score", pa.float32()), ("class_id", pa.int64()),
                     ("class_name", pa.string()), ("track_id", pa.int64())])
# The single-result table (sinks, to_pandas): objects rows with the keypoints of pose models.
TABLE = OBJECTS.append(pa.field("keypoints", pa.list_(pa.list_(pa.float32(), 3))))
ERRORS = pa.schema([("source", pa.string()), ("task", pa.string()), ("model", pa.string()),
                    ("schema_version", pa.int32()), ("reason", pa.string())])
SCHEMAS = {"frames": FRAMES, "objects": OBJECTS, "errors": ERRORS}


def partition(task: str, model: str) -> tuple[str, str]:
    """The Hive partition folders of a task and model's results (the model URI-encoded: it may hold any character)."""
    return f"task={quote(task, safe='')}", f"model={quote(model, safe='')}"


def block_name(sources: list[str]) -> str:
    """A block's file stem: the same inputs always name the same files, so a retried block replaces its own."""
    return "part-" + hashlib.sha1("\n".join(sorted(sources)).encode()).hexdigest()[:20]


def result_rows(result: Result, source: str, timestamp: float | None, task: str, model: str
                ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The frames row and the objects rows of one result."""
    keys = row_keys(source, result.frame_index, timestamp, task, model)
    height, width = result.image_shape
    frame: dict[str, Any] = {**keys, "height": height, "width": width, "n_objects": 0, "top_class_ids": [],
                             "top_class_names": [], "top_scores": []}
    objects: list[dict[str, Any]] = []
    if isinstance(result, Detections):
        frame["n_objects"] = len(result)
        objects = object_rows(result, keys)
    elif isinstance(result, Classification):
        frame.update(top_class_ids=[int(c) for c in result.class_ids],
                     top_class_names=[str(n) for n in result.class_names],
                     top_scores=[float(s) for s in result.scores])
    else:
        raise TypeError(f"batch results hold detections and classifications, not {result.kind}")
    return frame, objects


def object_rows(result: Result, keys: dict[str, Any]) -> list[dict[str, Any]]:
    """``TABLE`` rows of one result, each starting with ``keys`` (the frame's source, frame_index, timestamp, task,
    model, schema_version): one per detection, or one per top-k class of a classification (no box). A semantic
    class map has no objects: TypeError."""
    if isinstance(result, Classification):
        return [{**keys, "object_index": rank, "x1": None, "y1": None, "x2": None, "y2": None, "score": float(score),
                 "class_id": int(cid), "class_name": str(name), "track_id": None, "keypoints": None}
                for rank, (cid, name, score) in enumerate(zip(result.class_ids, result.class_names, result.scores))]
    if not isinstance(result, Detections):
        raise TypeError(f"a results table holds detections and classifications, not {result.kind} (its masks go to "
                        "the JSON output)")
    rows = []
    for i in range(len(result)):
        x1, y1, x2, y2 = (float(v) for v in result.xyxy[i])
        rows.append({**keys, "object_index": i, "x1": x1, "y1": y1, "x2": x2, "y2": y2,
                     "score": float(result.scores[i]), "class_id": int(result.class_ids[i]),
                     "class_name": str(result.class_names[i]),
                     "track_id": None if result.track_ids is None else int(result.track_ids[i]),
                     "keypoints": None if result.keypoints is None else result.keypoints[i].tolist()})
    return rows


def row_keys(source: str, frame_index: int, timestamp: float | None, task: str | None, model: str | None
             ) -> dict[str, Any]:
    """The columns every row of one frame starts with."""
    return {"source": source, "frame_index": frame_index, "timestamp": timestamp, "task": task, "model": model,
            "schema_version": SCHEMA_VERSION}


def results_table(items: Iterable[Result | tuple[Frame, Result]]) -> pa.Table:
    """``TABLE`` of results, or of ``(frame, result)`` pairs as ``stream()`` yields them. A pair's frame gives the
    source and timestamp; a lone result takes them (and the model) from its ``metadata`` when it has them (as
    ``read_results`` gives them), else they stay null."""
    rows: list[dict[str, Any]] = []
    for item in items:
        frame, result = item if isinstance(item, tuple) else (None, item)
        meta = result.metadata
        keys = row_keys(frame.source if frame is not None else meta.get("source"),
                        frame.index if frame is not None else result.frame_index,
                        frame.timestamp if frame is not None else meta.get("timestamp"), meta.get("task"),
                        meta.get("model"))
        rows += object_rows(result, keys)
    return pa.Table.from_pylist(rows, schema=TABLE)


def results_to_frame(items: Iterable[Result | tuple[Frame, Result]]) -> Any:
    """``results_table`` as a pandas DataFrame, one row per object (pandas is optional: an ImportError names
    the install)."""
    try:
        import pandas  # noqa: F401  (pyarrow's to_pandas needs it)
    except ImportError:
        raise ImportError("results as a DataFrame need pandas: pip install pandas") from None
    return results_table(items).to_pandas()


def error_row(source: str, reason: str, task: str, model: str) -> dict[str, Any]:
    return {"source": source, "task": task, "model": model, "schema_version": SCHEMA_VERSION,
            "reason": " ".join(reason.split())}
