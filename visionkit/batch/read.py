"""``read_results(PATH)``: a batch output folder (local or a URI such as ``s3://bucket/results``) back as typed
results (``Detections`` / ``Classification``), through the same ``from_dict`` record conventions as the JSONL
sinks; ``dataset(PATH, TABLE)``: one table as a ``pyarrow.dataset`` for queries. Only committed blocks are read."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from ..errors import ResultFormatError
from ..results import Classification, Detections, Result
from .schema import RUN_FILE, SCHEMA_VERSION, SCHEMAS, TABLES
from .storage import Location, locate
from .writer import committed_files


def dataset(path: str | Path, table: str, task: str | None = None, model: str | None = None) -> ds.Dataset:
    """The committed files of one table (``frames``, ``objects``, ``errors``) as a Hive-partitioned
    ``pyarrow.dataset``, optionally of one task and/or model: filter, project, ``to_table()``, or hand the same
    files to Ray Data / DuckDB / Spark."""
    if table not in TABLES:
        raise ResultFormatError(f"a batch results folder has the tables {', '.join(TABLES)}, not {table!r}")
    out = locate(str(path))
    fmt = _format(out)
    files = [f.path for f in committed_files(out, table, task, model)]
    try:
        return ds.dataset(files, schema=SCHEMAS[table], format="json" if fmt == "jsonl" else fmt, filesystem=out.fs,
                          partitioning="hive", partition_base_dir=out.child(table).path)
    except (OSError, ValueError, pa.ArrowException) as e:
        raise ResultFormatError(f"{out.uri}: not a batch {table} table ({str(e).splitlines()[0]})") from None


def read_table(path: str | Path, table: str, task: str | None = None, model: str | None = None) -> pa.Table:
    """All committed rows of one table, checked to be of this schema version."""
    data = dataset(path, table, task, model)
    try:
        rows = data.to_table()
    except (OSError, ValueError, pa.ArrowException) as e:
        raise ResultFormatError(f"{path}: not a batch {table} table ({str(e).splitlines()[0]})") from None
    versions = set(rows.column("schema_version").to_pylist())
    if versions - {SCHEMA_VERSION}:
        raise ResultFormatError(f"{path}: schema version {sorted(versions)}, this visionkit reads {SCHEMA_VERSION}")
    return rows


def _format(out: Location) -> str:
    """The folder's table format, from its run file (which also says it is a batch results folder)."""
    try:
        if out.child(RUN_FILE).type() != pafs.FileType.File:
            raise ResultFormatError(f"{out.uri}: not a batch results folder (no {RUN_FILE})")
        run = json.loads(out.child(RUN_FILE).read_bytes())
    except (OSError, ValueError) as e:
        raise ResultFormatError(f"{out.uri}: not a batch results folder ({str(e).splitlines()[0]})") from None
    if run.get("schema_version") != SCHEMA_VERSION:
        raise ResultFormatError(f"{out.uri}: schema version {run.get('schema_version')}, this visionkit reads "
                                f"{SCHEMA_VERSION}")
    return str(run["format"])


def read_results(path: str | Path, task: str | None = None, model: str | None = None) -> list[Result]:
    """Every committed frame (of one task and/or model if given) as a ``Detections`` (detect, track) or
    ``Classification`` (classify), sorted by task, model, source and frame index; ``metadata`` holds the record's
    source, timestamp, task and model."""
    objects: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in read_table(path, "objects", task, model).to_pylist():
        objects[_key(row)].append(row)
    results: list[Result] = []
    frames = sorted(read_table(path, "frames", task, model).to_pylist(), key=_key)
    for frame in frames:
        record: dict[str, Any] = {"frame_index": frame["frame_index"], "image_shape": [frame["height"], frame["width"]],
                                  "metadata": {k: frame[k] for k in ("source", "timestamp", "task", "model")}}
        if frame["task"] == "classify":
            results.append(Classification(
                class_ids=frame["top_class_ids"], class_names=frame["top_class_names"], scores=frame["top_scores"],
                frame_index=record["frame_index"], image_shape=tuple(record["image_shape"]),
                metadata=record["metadata"]))
            continue
        rows = sorted(objects.get(_key(frame), []), key=lambda r: r["object_index"])
        record["detections"] = [{"box": [r["x1"], r["y1"], r["x2"], r["y2"]], "score": r["score"],
                                 "class_id": r["class_id"], "class_name": r["class_name"],
                                 **({} if r["track_id"] is None else {"track_id": r["track_id"]})} for r in rows]
        results.append(Detections.from_dict(record))
    return results


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    """A frame's identity across partitions (the same image may be in the results of several models)."""
    return row["task"], row["model"], row["source"], row["frame_index"]


def read_errors(path: str | Path, task: str | None = None, model: str | None = None) -> list[dict[str, Any]]:
    """The errors table's rows: source, task, model, schema_version, reason."""
    return sorted(read_table(path, "errors", task, model).to_pylist(),
                  key=lambda r: (r["task"], r["model"], r["source"]))
