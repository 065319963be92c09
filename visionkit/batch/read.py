"""``read_results(PATH)``: a batch output folder back as typed results (``Detections`` / ``Classification``),
through the same ``from_dict`` record conventions as the JSONL sinks. Only committed blocks are read."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import ResultFormatError
from ..results import Classification, Detections, Result
from .schema import FORMATS, SCHEMA_VERSION, SCHEMAS
from .writer import committed_blocks


def read_table(path: str | Path, table: str) -> pa.Table:
    """All committed rows of one table (``frames``, ``objects``, ``errors``), Parquet and JSONL parts alike."""
    out = Path(path)
    if not out.is_dir():
        raise ResultFormatError(f"{out}: not a batch results folder")
    parts = []
    for name in committed_blocks(out):
        for fmt in FORMATS:
            part = out / table / f"{name}.{fmt}"
            if part.is_file():
                parts.append(_read_part(part, table, fmt))
    if not parts:
        return SCHEMAS[table].empty_table()
    return pa.concat_tables(parts)


def _read_part(part: Path, table: str, fmt: str) -> pa.Table:
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            data = pq.read_table(part, schema=SCHEMAS[table])
        else:
            lines = part.read_text(encoding="utf-8").splitlines()
            data = pa.Table.from_pylist([json.loads(line) for line in lines if line], schema=SCHEMAS[table])
    except (OSError, ValueError, pa.ArrowException) as e:
        raise ResultFormatError(f"{part}: not a batch {table} file ({str(e).splitlines()[0]})") from None
    versions = set(data.column("schema_version").to_pylist())
    if versions - {SCHEMA_VERSION}:
        raise ResultFormatError(f"{part}: schema version {sorted(versions)}, this visionkit reads {SCHEMA_VERSION}")
    return data


def read_results(path: str | Path) -> list[Result]:
    """Every committed frame as a ``Detections`` (detect, track) or ``Classification`` (classify), sorted by source
    and frame index; ``metadata`` holds the record's source, timestamp and model."""
    objects: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for row in read_table(path, "objects").to_pylist():
        objects[row["source"], row["frame_index"]].append(row)
    results: list[Result] = []
    frames = sorted(read_table(path, "frames").to_pylist(), key=lambda r: (r["source"], r["frame_index"]))
    for frame in frames:
        record: dict[str, Any] = {"frame_index": frame["frame_index"], "image_shape": [frame["height"], frame["width"]],
                                  "metadata": {k: frame[k] for k in ("source", "timestamp", "model")}}
        if frame["task"] == "classify":
            results.append(Classification(
                class_ids=frame["top_class_ids"], class_names=frame["top_class_names"], scores=frame["top_scores"],
                frame_index=record["frame_index"], image_shape=tuple(record["image_shape"]),
                metadata=record["metadata"]))
            continue
        rows = sorted(objects.get((frame["source"], frame["frame_index"]), []), key=lambda r: r["object_index"])
        record["detections"] = [{"box": [r["x1"], r["y1"], r["x2"], r["y2"]], "score": r["score"],
                                 "class_id": r["class_id"], "class_name": r["class_name"],
                                 **({} if r["track_id"] is None else {"track_id": r["track_id"]})} for r in rows]
        results.append(Detections.from_dict(record))
    return results


def read_errors(path: str | Path) -> list[dict[str, Any]]:
    """The errors table's rows: source, task, model, schema_version, reason."""
    return sorted(read_table(path, "errors").to_pylist(), key=lambda r: r["source"])
