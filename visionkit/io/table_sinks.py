"""Table outputs, one row per object: ``--csv FILE`` and ``--parquet FILE``.

The columns are the batch schema's object rows (``visionkit.batch.schema.TABLE``: source, frame_index, timestamp,
task, model, schema_version, object_index, x1 y1 x2 y2, score, class_id, class_name, track_id, keypoints), so a
table from ``visionkit detect --csv`` and one from ``visionkit batch`` read the same way, and the JSONL output uses
the same field names. A frame without objects has no row.

CSV is written line by line and flushed per frame (complete up to the last processed frame, like JSONL); in CSV
the keypoints are a JSON list ``[[x, y, confidence], ...]``, empty cells are nulls, and numbers are rounded as in
the JSONL (boxes 0.01 px, scores 1e-5, timestamps 0.1 ms). Parquet keeps them unrounded and needs its footer,
so it is written to ``FILE.tmp`` in row groups and renamed into place on close: a reader never sees half a file.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..batch.schema import TABLE, object_rows, row_keys
from ..errors import SinkError
from ..results import Result
from .sinks import LineSink, OutputGuard, Sink, ensure_dir
from .sources import Frame

ROW_GROUP = 4096  # Parquet rows buffered before a row group is written


class _TableRows:
    """What both sinks share: the run's task and model, and a result's rows (a SinkError for a class map)."""

    def __init__(self, task: str | None, model: str | None):
        self.task, self.model = task, model

    def rows(self, frame: Frame, result: Result) -> list[dict[str, Any]]:
        keys = row_keys(frame.source, frame.index, frame.timestamp, self.task, self.model)
        try:
            return object_rows(result, keys)
        except TypeError as e:
            raise SinkError(str(e)) from None


class CsvSink(LineSink):
    """``TABLE`` rows as CSV with a header line."""

    def __init__(self, path: str | Path, guard: OutputGuard | None = None, task: str | None = None,
                 model: str | None = None):
        super().__init__(path, guard)
        self._table = _TableRows(task, model)
        self._write(self._line(TABLE.names))

    @staticmethod
    def _line(cells: list[Any]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(cells)
        return buffer.getvalue()

    def write(self, frame: Frame, result: Result, annotated: np.ndarray | None = None) -> None:
        rows = self._table.rows(frame, result)
        lines = [self._line([_cell(name, row[name]) for name in TABLE.names]) for row in rows]
        if lines:
            self._write("".join(lines))


def _cell(name: str, value: Any) -> Any:
    if value is None:
        return ""
    if name == "keypoints":
        return json.dumps(np.round(np.asarray(value, float), 3).tolist())
    if name in ("x1", "y1", "x2", "y2"):
        return round(value, 2)
    return round(value, 4 if name == "timestamp" else 5) if isinstance(value, float) else value


class ParquetSink(Sink):
    """``TABLE`` rows as one Parquet file (row groups of ``ROW_GROUP`` rows), complete once closed."""

    def __init__(self, path: str | Path, guard: OutputGuard | None = None, task: str | None = None,
                 model: str | None = None):
        import pyarrow.parquet as pq

        self.path = self.location = Path(path)
        ensure_dir(self.path.parent, for_file=self.path)
        (guard or OutputGuard()).claim(self.path)
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        self._table = _TableRows(task, model)
        self._pending: list[dict[str, Any]] = []
        try:
            self._writer: Any = pq.ParquetWriter(self._tmp, TABLE)
        except OSError as e:
            raise SinkError(f"cannot write {self.path}: {e.strerror or e}") from None

    def write(self, frame: Frame, result: Result, annotated: np.ndarray | None = None) -> None:
        self._pending += self._table.rows(frame, result)
        if len(self._pending) >= ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        rows, self._pending = self._pending, []
        if rows:
            try:
                self._writer.write_table(pa.Table.from_pylist(rows, schema=TABLE))
            except OSError as e:
                self._abandon()
                raise SinkError(f"cannot write {self.path}: {e.strerror or e}") from None

    def _abandon(self) -> None:
        """Drop the partial file: the run reports the error, and no half-written table is left behind."""
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except OSError:
                pass
        self._tmp.unlink(missing_ok=True)

    def close(self) -> None:
        if self._writer is None:
            return
        self._flush()
        writer, self._writer = self._writer, None
        try:
            writer.close()
            self._tmp.replace(self.path)
        except OSError as e:
            self._tmp.unlink(missing_ok=True)
            raise SinkError(f"cannot write {self.path}: {e.strerror or e}") from None
