"""Paths a user typed, made safe to test: ``~`` expanded, and a name the OS refuses (too long, a folder on the way
that may not be read) reported as the caller's one-line ``VisionkitError`` instead of an ``OSError`` or
``RuntimeError`` escaping from ``expanduser()``, ``is_dir()`` or ``is_file()``."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from .errors import VisionkitError

# "Not there": the caller goes on and says what it looked for (a source, a weights file) in its own words.
_ABSENT = (errno.ENOENT, errno.ENOTDIR)


def user_path(spec: str | os.PathLike[str], error: type[VisionkitError]) -> Path:
    """``spec`` as a ``Path`` with ``~`` expanded, whose existence and kind can then be tested without an OS error;
    ``error`` (e.g. ``SourceError``) when ``~name`` names no user or the OS cannot look the name up at all."""
    text = os.fspath(spec)
    try:
        path = Path(text).expanduser()
    except RuntimeError:  # "~name/..." and no user "name" on this machine
        user = text[1:].split(os.sep, 1)[0]
        raise error(f"{text}: no user {user!r} on this machine, so '~{user}' is no home folder") from None
    try:
        path.stat()
    except ValueError:  # a NUL in the name: no file has it, and pathlib's tests say False for it
        pass
    except OSError as e:
        if e.errno not in _ABSENT:
            raise error(f"{path}: {e.strerror}") from None
    return path
