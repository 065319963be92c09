"""What a batch run reads: a folder (searched recursively), a glob, or a manifest file listing paths (.txt: one a
line; .csv / .parquet: a ``path`` column), each local or on any filesystem pyarrow opens (``s3://bucket/photos/``,
``gs://bucket/list.parquet``, ``s3://bucket/photos/**/*.jpg``). A manifest's entries may be local paths or URIs;
relative ones are relative to the manifest's folder (on the manifest's filesystem). Workers read the inputs with
``read_input_image`` / ``local_video``."""

from __future__ import annotations

import csv
import glob
import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

import numpy as np
import pyarrow.fs as pafs

from ..errors import SourceError
from ..io.images import IMAGE_SUFFIXES, VIDEO_SUFFIXES, decode_image, read_image
from .storage import Location, is_uri, locate

MANIFEST_SUFFIXES = (".txt", ".csv", ".parquet")
_GLOB = "*?["


def is_video(path: str) -> bool:
    return PurePosixPath(path.split("?", 1)[0]).suffix.lower() in VIDEO_SUFFIXES


def list_inputs(spec: str) -> list[str]:
    """Every input of ``spec`` as a path or URI string, sorted and without repeats (a manifest's order is kept).

    Folders and globs yield only image and video files; a manifest's entries are taken as given, so one that is
    not an image lands in the run's errors table instead of vanishing."""
    if any(c in spec for c in _GLOB):
        found = _uri_glob(spec) if is_uri(spec) else sorted(
            p for p in glob.glob(spec, recursive=True) if Path(p).is_file() and _is_media(p))
        if not found:
            raise SourceError(f"{spec}: the glob matches no image or video file")
        return found
    where = locate(spec)
    try:
        kind = where.type()
    except OSError as e:
        raise SourceError(f"{spec}: cannot read ({str(e).splitlines()[0]})") from None
    if kind == pafs.FileType.Directory:
        return [f.uri for f in where.files() if _is_media(f.path)]
    if kind == pafs.FileType.File and PurePosixPath(where.path).suffix.lower() in MANIFEST_SUFFIXES:
        return list(dict.fromkeys(_resolve(where, entry) for entry in _entries(where)))
    if kind == pafs.FileType.File and _is_media(where.path):
        return [where.uri]
    raise SourceError(f"{spec}: not a folder, a glob or a manifest ({', '.join(MANIFEST_SUFFIXES)}) of paths")


def _is_media(path: str) -> bool:
    return PurePosixPath(path).suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES


def _resolve(manifest: Location, entry: str) -> str:
    """A manifest entry as a source: URIs and absolute paths as written, relative ones beside the manifest."""
    if is_uri(entry) or (manifest.local and Path(entry).is_absolute()):
        return entry
    return manifest.parent.child(*PurePosixPath(entry).parts).uri


def _uri_glob(spec: str) -> list[str]:
    """Glob on a filesystem without one: list below the pattern's fixed prefix, match component by component
    (``*`` within one folder level, ``**`` across any number)."""
    parts = spec.split("/")
    fixed = next(i for i, p in enumerate(parts) if any(c in p for c in _GLOB))
    base = locate("/".join(parts[:fixed]))
    pattern = parts[fixed:]
    try:
        files = base.files()
    except OSError as e:
        raise SourceError(f"{spec}: cannot list ({str(e).splitlines()[0]})") from None
    return [f.uri for f in files if _is_media(f.path) and _match(f.relative_to(base).split("/"), pattern)]


def _match(names: list[str], pattern: list[str]) -> bool:
    if not pattern:
        return not names
    if pattern[0] == "**":
        return any(_match(names[i:], pattern[1:]) for i in range(len(names) + 1))
    return bool(names) and fnmatchcase(names[0], pattern[0]) and _match(names[1:], pattern[1:])


def _entries(manifest: Location) -> list[str]:
    suffix = PurePosixPath(manifest.path).suffix.lower()
    try:
        data = manifest.read_bytes()
        if suffix == ".txt":
            return [line.strip() for line in data.decode("utf-8").splitlines() if line.strip()]
        if suffix == ".csv":
            reader = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))
            if "path" not in (reader.fieldnames or []):
                raise SourceError(f"{manifest.uri}: a manifest CSV needs a 'path' column")
            return [row["path"] for row in reader if row["path"]]
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(pa.BufferReader(data))
        if "path" not in table.column_names:
            raise SourceError(f"{manifest.uri}: a manifest Parquet file needs a 'path' column")
        return [p for p in table.column("path").to_pylist() if p]
    except (OSError, ValueError, csv.Error) as e:  # ValueError: UnicodeDecodeError, ArrowInvalid
        raise SourceError(f"{manifest.uri}: cannot read the manifest ({str(e).splitlines()[0]})") from None


def read_input_image(source: str) -> np.ndarray:
    """Decode one image input, local or on an object store, as BGR with visionkit's one-line reasons."""
    if not is_uri(source):
        return read_image(source)
    return decode_image(_fetch(source), source)


@contextmanager
def local_video(source: str) -> Iterator[str]:
    """A path the video decoder can open: the input itself when local, else a temporary copy of the object (a
    video is one task on one worker, so it is fetched whole once and streamed from disk)."""
    if not is_uri(source):
        yield source
        return
    with tempfile.TemporaryDirectory(prefix="visionkit-video-") as folder:
        path = os.path.join(folder, "input" + PurePosixPath(source.split("?", 1)[0]).suffix)
        with open(path, "wb") as f:
            f.write(_fetch(source))
        yield path


def _fetch(source: str) -> bytes:
    try:
        return locate(source).read_bytes()
    except FileNotFoundError:
        raise SourceError(f"{source}: no such file") from None
    except OSError as e:
        raise SourceError(f"{source}: cannot read ({str(e).splitlines()[0]})") from None
