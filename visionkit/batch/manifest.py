"""What a batch run reads: a folder (searched recursively), a glob, or a manifest file listing paths (.txt: one a
line; .csv / .parquet: a ``path`` column). Relative paths in a manifest are relative to the manifest's folder."""

from __future__ import annotations

import csv
import glob
from pathlib import Path

from ..errors import SourceError
from ..io.images import IMAGE_SUFFIXES, VIDEO_SUFFIXES

MANIFEST_SUFFIXES = (".txt", ".csv", ".parquet")


def is_video(path: str) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def list_inputs(spec: str) -> list[str]:
    """Every input of ``spec`` as a path string, sorted and without repeats (a manifest's order is kept).

    Folders and globs yield only image and video files; a manifest's entries are taken as given, so one that is
    not an image lands in the run's errors table instead of vanishing."""
    path = Path(spec)
    if path.is_dir():
        return sorted(str(p) for p in path.rglob("*") if p.is_file() and _is_media(p))
    if path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
        return list(dict.fromkeys(str(p if p.is_absolute() else path.parent / p) for p in map(Path, _entries(path))))
    if any(c in spec for c in "*?["):
        found = sorted(p for p in glob.glob(spec, recursive=True) if Path(p).is_file() and _is_media(Path(p)))
        if not found:
            raise SourceError(f"{spec}: the glob matches no image or video file")
        return found
    if path.is_file() and _is_media(path):
        return [str(path)]
    raise SourceError(f"{spec}: not a folder, a glob or a manifest ({', '.join(MANIFEST_SUFFIXES)}) of paths")


def _is_media(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES


def _entries(manifest: Path) -> list[str]:
    suffix = manifest.suffix.lower()
    try:
        if suffix == ".txt":
            return [line.strip() for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
        if suffix == ".csv":
            with manifest.open(newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                if "path" not in (reader.fieldnames or []):
                    raise SourceError(f"{manifest}: a manifest CSV needs a 'path' column")
                return [row["path"] for row in reader if row["path"]]
        import pyarrow.parquet as pq

        table = pq.read_table(manifest)
        if "path" not in table.column_names:
            raise SourceError(f"{manifest}: a manifest Parquet file needs a 'path' column")
        return [p for p in table.column("path").to_pylist() if p]
    except (OSError, ValueError, csv.Error) as e:  # ValueError: UnicodeDecodeError, ArrowInvalid
        raise SourceError(f"{manifest}: cannot read the manifest ({e})") from None
