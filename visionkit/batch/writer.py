"""Writes and commits one block of results (see ``schema.py``): every table file by rename, the marker last."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import OutputConflictError, ResultFormatError
from .schema import SCHEMA_VERSION, SCHEMAS, TABLES

COMMITTED = "_committed"
RUN_FILE = "_batch.json"


def claim_folder(out: Path, task: str, model: str, fmt: str) -> None:
    """Record what ``out`` holds, or refuse a run that would mix other results into it: a rerun resumes only the
    same task, model and format (a skipped input must mean "this very result is committed")."""
    run = {"schema_version": SCHEMA_VERSION, "task": task, "model": model, "format": fmt}
    path = out / RUN_FILE
    if path.is_file():
        try:
            held = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ResultFormatError(f"{path}: not a visionkit batch run file ({e})") from None
        if held != run:
            raise OutputConflictError(f"{out} holds {held.get('task')} results of {held.get('model')} as "
                                      f"{held.get('format')} (schema {held.get('schema_version')}); this run is "
                                      f"{task} with {model} as {fmt}: choose another --out")
        return
    if out.is_dir() and any(out.iterdir()):
        raise OutputConflictError(f"{out}: not empty and not a batch results folder: choose another --out")
    _atomic(path, lambda tmp: tmp.write_text(json.dumps(run), encoding="utf-8"))


def write_block(out: Path, name: str, rows: dict[str, list[dict[str, Any]]], sources: list[str], fmt: str) -> None:
    """Write ``rows`` (table -> rows) as ``out/TABLE/NAME.FMT`` and then commit ``sources`` in ``out/_committed``.

    A crash before the marker leaves files that no reader counts and the rerun rewrites; a crash after it leaves
    a whole block."""
    for table in TABLES:
        if rows.get(table):
            data = pa.Table.from_pylist(rows[table], schema=SCHEMAS[table])
            _atomic(out / table / f"{name}.{fmt}", lambda tmp, d=data: _write_table(d, tmp, fmt))
    _atomic(out / COMMITTED / f"{name}.json",
            lambda tmp: tmp.write_text(json.dumps({"inputs": sources}), encoding="utf-8"))


def committed_inputs(out: Path) -> set[str]:
    """Inputs of every committed block under ``out``."""
    done: set[str] = set()
    for marker in sorted((out / COMMITTED).glob("*.json")):
        done.update(json.loads(marker.read_text(encoding="utf-8"))["inputs"])
    return done


def committed_blocks(out: Path) -> list[str]:
    return sorted(p.stem for p in (out / COMMITTED).glob("*.json"))


def _write_table(table: pa.Table, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    else:
        with path.open("w", encoding="utf-8") as f:
            for row in table.to_pylist():
                f.write(json.dumps(row) + "\n")


def _atomic(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
