"""Turn a catalog entry into a verified local weights file.

Resolution order: explicit path -> folders in ``$VISIONKIT_WEIGHTS`` (``os.pathsep``-separated) -> the user
cache (``$VISIONKIT_CACHE`` or ``~/.cache/visionkit``) -> download from the official URL into the cache, with a
progress bar and a hash check. ``VISIONKIT_OFFLINE=1`` skips the download. Every failure is a ``WeightsError``
naming the file and where to put it, so an offline machine never shows a stack trace or hangs.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .catalog import ModelEntry
from .errors import OptionError, WeightsError
from .paths import user_path

DOWNLOAD_TIMEOUT_S = 30  # per socket operation: a dead network fails fast instead of hanging


def weights_dirs() -> list[Path]:
    return [Path(p).expanduser() for p in os.environ.get("VISIONKIT_WEIGHTS", "").split(os.pathsep) if p]


def cache_dir() -> Path:
    env = os.environ.get("VISIONKIT_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "visionkit"


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, entry: ModelEntry) -> bool:
    """Raise if ``path`` does not hash to what the catalog pins (full sha256 or torchvision's prefix); True when the
    full sha256 matched, i.e. the file is byte for byte the official release (a prefix alone does not prove that)."""
    expected = entry.sha256 or entry.hash_prefix
    if not expected:
        return False
    actual = sha256_of(path)
    if not actual.startswith(expected):
        raise WeightsError(
            f"{path} is not the official {entry.name} weights: sha256 {actual[:16]}... != expected "
            f"{expected[:16]}... (corrupt or partial file? delete it and try again)"
        )
    return bool(entry.sha256)


def resolve(entry: ModelEntry, weights: str | os.PathLike | None = None) -> Path:
    """Local path of verified weights for ``entry``; an explicit ``weights`` path wins and is not hash-checked."""
    return resolve_verified(entry, weights)[0]


def resolve_verified(entry: ModelEntry, weights: str | os.PathLike | None = None) -> tuple[Path, bool]:
    """``resolve``, and whether the file's full sha256 matched the catalog: then the catalog vouches for its contents
    (it is the official release), so it may be loaded as a trusted pickle."""
    if weights is not None:
        if not isinstance(weights, (str, os.PathLike)):
            raise OptionError(f"weights must be the path of a weights file, got {weights!r}")
        path = user_path(weights, WeightsError)
        if not path.is_file():
            raise WeightsError(f"weights file not found: {path}")
        return path, False
    for folder in [*weights_dirs(), cache_dir()]:
        candidate = folder / entry.file
        if candidate.is_file():
            return candidate, verify(candidate, entry)
    return download(entry), bool(entry.sha256)


def _where_to_put_it(entry: ModelEntry) -> str:
    dirs = ", ".join(str(d) for d in weights_dirs()) or "unset"
    return f"put {entry.file} in a folder named by VISIONKIT_WEIGHTS (now: {dirs}) or in {cache_dir()}"


def download(entry: ModelEntry) -> Path:
    if not entry.url:
        raise WeightsError(f"{entry.file} for model {entry.name!r} was not found and has no download URL: "
                           f"{_where_to_put_it(entry)}. Provenance: {' '.join(entry.source.split())}")
    if _offline():
        raise WeightsError(f"{entry.file} not found locally and VISIONKIT_OFFLINE is set: {_where_to_put_it(entry)}")
    target = cache_dir() / entry.file
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WeightsError(f"cannot create weights cache {target.parent}: {e.strerror}") from None
    from .io.progress import progress_bar

    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{entry.file}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(entry.url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with progress_bar(total, f"downloading {entry.file}", "B", unit_scale=True, leave=False,
                              announce=f"downloading {entry.file} from {entry.url}") as bar:
                while block := resp.read(1 << 16):
                    out.write(block)
                    bar.update(len(block))
        verify(tmp, entry)
        tmp.replace(target)  # atomic: a killed download never leaves a half file under the real name
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or e
        raise WeightsError(f"could not download {entry.file} from {entry.url} ({reason}): "
                           f"{_where_to_put_it(entry)}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target


def availability(entry: ModelEntry) -> str:
    """'local', 'download' or 'missing': what ``resolve`` would do, without hashing or downloading."""
    if any((folder / entry.file).is_file() for folder in [*weights_dirs(), cache_dir()]):
        return "local"
    if not entry.url:
        return "missing"
    return "missing (offline)" if _offline() else "download"


def _offline() -> bool:
    return os.environ.get("VISIONKIT_OFFLINE", "").lower() in ("1", "true", "yes")
