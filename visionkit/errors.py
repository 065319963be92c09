"""Exceptions that carry a one-line, user-facing message.

The CLI prints ``str(error)`` of any ``VisionkitError`` as a single line and exits non-zero; anything else
is a bug. Each message names the thing that failed and why, so no traceback is needed to act on it.
"""

from __future__ import annotations

import re

# What would break a message over lines or garble a terminal: C0/C1 controls and the Unicode line separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """``text`` with control characters written as Python escapes (``\\n``, ``\\x1b``): a file name with a line
    break in it still gives a one-line message, and the user can see where the odd character is."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


class VisionkitError(Exception):
    """Base class: an error caused by input, configuration or environment, not by a bug. Its message is one line
    whatever it quotes (paths, stream URLs, option values)."""

    def __str__(self) -> str:
        return one_line(super().__str__())


class ModelNotFoundError(VisionkitError, KeyError):
    """A model name that is neither in the catalog nor an existing file."""

    def __str__(self) -> str:  # KeyError would quote the message
        return one_line(str(self.args[0]))


class WeightsError(VisionkitError):
    """Weights that cannot be found, fetched, verified or loaded."""


class SourceError(VisionkitError):
    """An input (image, video, camera, stream) that cannot be opened or decoded."""


class SinkError(VisionkitError):
    """An output (folder, video file, JSON file) that cannot be written."""


class EngineError(VisionkitError):
    """A distributed engine (Ray) that cannot be reached or started for ``visionkit batch``."""


class OptionError(VisionkitError, ValueError):
    """An option unknown to the chosen task/backend, or a value out of range."""


class ResultFormatError(VisionkitError, ValueError):
    """A result record (``to_dict`` / a JSONL line) that is not one: a field missing, of the wrong type or shape."""


class OutputConflictError(OptionError):
    """An output that would overwrite one of the run's inputs, or an existing file without ``exist_ok``
    (``--exist-ok``): a bad command line, refused before anything is written over it."""


def raise_if_interrupted(error: BaseException) -> None:
    """Raise the Ctrl-C (or exit) that ``error`` replaced, if any, for code that turns a library's failures into a
    ``VisionkitError``: a library whose clean-up fails while an import or a load is interrupted (a half-initialised
    module, a ``finally`` that raises) must not turn Ctrl-C into "bad weights"."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if not isinstance(cause, Exception):  # KeyboardInterrupt, SystemExit
            raise cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__


class DataError(VisionkitError):
    """A training or evaluation dataset whose layout, labels or files cannot be used."""


class AccuracyError(VisionkitError):
    """A converted model (int8, bf16) that scores further below the float model than the limit allows on the
    validation data: refused, nothing handed over."""
