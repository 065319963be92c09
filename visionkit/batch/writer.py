"""Writes and commits one block of results (see ``schema.py``): every table file whole, the commit marker last,
on a local disk or an object store alike (``storage.py``)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from ..errors import OutputConflictError, ResultFormatError, SinkError
from .schema import COMMITTED, RUN_FILE, SCHEMA_VERSION, SCHEMAS, TABLES, partition
from .storage import Location


def claim_folder(out: Location, fmt: str) -> None:
    """Record what ``out`` holds, or refuse a run that would mix another format or schema version into it (one
    folder is one set of tables that ``pyarrow.dataset`` reads in one go; tasks and models are its partitions)."""
    run = {"schema_version": SCHEMA_VERSION, "format": fmt}
    path = out.child(RUN_FILE)
    try:
        if out.type() == pafs.FileType.File:
            raise OutputConflictError(f"{out.uri}: a file, not a results folder: choose another --out")
        held_bytes = path.read_bytes() if path.type() == pafs.FileType.File else None
        entries = out.entries()
    except OSError as e:
        raise SinkError(f"{out.uri}: cannot read the results folder ({str(e).splitlines()[0]})") from None
    if held_bytes is not None:
        try:
            held = json.loads(held_bytes)
        except ValueError as e:
            raise ResultFormatError(f"{path.uri}: not a visionkit batch run file ({e})") from None
        if held != run:
            raise OutputConflictError(f"{out.uri} holds {held.get('format')} results of schema "
                                      f"{held.get('schema_version')}; this run writes {fmt} of schema "
                                      f"{SCHEMA_VERSION}: choose another --out")
        return
    if entries:
        raise OutputConflictError(f"{out.uri}: not empty and not a batch results folder: choose another --out")
    _write(path, json.dumps(run).encode())


def write_block(out: Location, task: str, model: str, name: str, rows: dict[str, list[dict[str, Any]]],
                sources: list[str], fmt: str) -> None:
    """Write ``rows`` (table -> rows) as ``out/TABLE/task=T/model=M/NAME.FMT``, then commit ``sources`` with the
    marker ``out/_committed/task=T/model=M/NAME.json``.

    Each file appears whole (rename on disk, one object on a store). A crash before the marker leaves files that
    no reader counts and the next run deletes (``sweep_uncommitted``); a crash after it leaves a whole block."""
    part = partition(task, model)
    for table in TABLES:
        if rows.get(table):
            data = pa.Table.from_pylist(rows[table], schema=SCHEMAS[table])
            _write(out.child(table, *part, f"{name}.{fmt}"), _encode(data, fmt))
    _write(out.child(COMMITTED, *part, f"{name}.json"), json.dumps({"inputs": sources}).encode())


def markers(out: Location, task: str | None = None, model: str | None = None) -> list[Location]:
    """The commit markers of one partition, or of all when ``task``/``model`` are None."""
    base = out.child(COMMITTED)
    found = base.files()
    if task is None and model is None:
        return found
    return [m for m in found if _in_partition(m.relative_to(base), task, model)]


def committed_inputs(out: Location, task: str, model: str) -> set[str]:
    """Inputs of every committed block of this task and model under ``out`` (markers read 16 at a time: on an
    object store each is one request)."""
    with ThreadPoolExecutor(16) as pool:
        lists = pool.map(lambda m: json.loads(m.read_bytes())["inputs"], markers(out, task, model))
        return {source for inputs in lists for source in inputs}


def committed_files(out: Location, table: str, task: str | None = None, model: str | None = None) -> list[Location]:
    """The table files of committed blocks: one listing of the table and one of the markers, whatever their
    number."""
    done = {m.relative_to(out.child(COMMITTED)).rsplit(".", 1)[0] for m in markers(out, task, model)}
    base = out.child(table)
    return [f for f in base.files() if f.relative_to(base).rsplit(".", 1)[0] in done]


def sweep_uncommitted(out: Location, task: str, model: str) -> int:
    """Delete this partition's table files that no marker commits (left by a run that died mid-block), so a
    finished run's tables hold committed rows only, even for readers that do not look at the markers. Runs in
    the driver before any block starts; two runs of one task and model into one folder at once are not
    supported."""
    done = {m.name.rsplit(".", 1)[0] for m in markers(out, task, model)}
    swept = 0
    for table in TABLES:
        for f in out.child(table, *partition(task, model)).files(recursive=False):
            if f.name.rsplit(".", 1)[0] not in done:
                f.delete()
                swept += 1
    return swept


def _in_partition(relative: str, task: str | None, model: str | None) -> bool:
    folders = relative.split("/")[:-1]
    want = partition(task or "", model or "")
    return (task is None or want[0] in folders) and (model is None or want[1] in folders)


def _encode(table: pa.Table, fmt: str) -> bytes:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        return sink.getvalue().to_pybytes()
    return "".join(json.dumps(row) + "\n" for row in table.to_pylist()).encode()


def _write(path: Location, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as e:
        raise SinkError(f"{path.uri}: cannot write ({str(e).splitlines()[0]})") from None
