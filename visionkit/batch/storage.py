"""Where batch inputs and results live: a local path or any URI pyarrow opens (``s3://``, ``gs://``, ``hdfs://``,
``file://``), through ``pyarrow.fs``. Credentials and endpoints come from the filesystem's usual configuration
(for S3: ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_DEFAULT_REGION``, and ``AWS_ENDPOINT_URL`` for
an S3-compatible server), so a Ray worker on another machine opens the same URI on its own.

Object stores have no rename, so "atomic" is per object: a PUT (or a completed multipart upload) appears whole or
not at all. On a local disk a file is written beside its name and renamed, which gives the same guarantee."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs

from ..errors import SourceError


@dataclass(frozen=True)
class Location:
    """A file or folder on some filesystem. ``uri`` is what users see and what records store: the path as given
    for local files, ``scheme://path`` otherwise; ``fs``/``path`` are what pyarrow calls take."""

    fs: pafs.FileSystem
    path: str
    uri: str

    @property
    def local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    @property
    def portable(self) -> str:
        """This location for another process, whose working folder may differ: an absolute path or the URI."""
        return self.path if self.local else self.uri

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def parent(self) -> Location:
        return self._at(self.path.rstrip("/").rsplit("/", 1)[0])

    def child(self, *parts: str) -> Location:
        return self._at("/".join([self.path.rstrip("/"), *parts]))

    def type(self) -> pafs.FileType:
        return self.fs.get_file_info(self.path).type

    def files(self, recursive: bool = True) -> list[Location]:
        """Files under this folder (none when it does not exist), sorted by path."""
        infos = self.fs.get_file_info(pafs.FileSelector(self.path, recursive=recursive, allow_not_found=True))
        return [self._at(i.path) for i in sorted(infos, key=lambda i: i.path) if i.type == pafs.FileType.File]

    def entries(self) -> list[str]:
        """Names of everything directly in this folder (files and folders)."""
        selector = pafs.FileSelector(self.path, recursive=False, allow_not_found=True)
        return [i.base_name for i in self.fs.get_file_info(selector)]

    def read_bytes(self) -> bytes:
        with self.fs.open_input_stream(self.path) as f:
            return f.read()

    def write_bytes(self, data: bytes) -> None:
        """Write the whole file so that no reader ever sees part of it (see the module docstring)."""
        self.fs.create_dir(self.parent.path, recursive=True)
        if not self.local:
            with self.fs.open_output_stream(self.path) as f:
                f.write(data)
            return
        tmp = self.parent.child(f".{self.name}.{uuid.uuid4().hex}.tmp").path
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def delete(self) -> None:
        self.fs.delete_file(self.path)

    def relative_to(self, base: Location) -> str:
        return self.path[len(base.path.rstrip("/")) + 1:]

    def _at(self, path: str) -> Location:
        if self.local:
            return Location(self.fs, path, _local_uri(self.uri, self.path, path))
        return Location(self.fs, path, self.uri.split("://", 1)[0] + "://" + path)


def is_uri(spec: str) -> bool:
    return "://" in spec


def locate(spec: str) -> Location:
    """The ``Location`` of a local path (relative ones against the working folder) or a filesystem URI."""
    if not is_uri(spec):
        return Location(pafs.LocalFileSystem(), os.path.abspath(spec).replace(os.sep, "/"), spec)
    try:
        fs, path = pafs.FileSystem.from_uri(spec)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise SourceError(f"{spec}: cannot open this filesystem URI ({str(e).splitlines()[0]})") from None
    return Location(fs, path.rstrip("/") or path, spec.split("?", 1)[0].rstrip("/"))


def _local_uri(uri: str, path: str, new: str) -> str:
    """A local child's user-facing name: keeps the user's spelling (relative paths stay relative)."""
    if new.startswith(path.rstrip("/") + "/"):
        return os.path.join(uri, new[len(path.rstrip("/")) + 1:])
    return new
