"""Exceptions that carry a one-line, user-facing message.

The CLI prints ``str(error)`` of any ``VisionkitError`` as a single line and exits non-zero; anything else
is a bug. Each message names the thing that failed and why, so no traceback is needed to act on it.
"""

from __future__ import annotations


class VisionkitError(Exception):
    """Base class: an error caused by input, configuration or environment, not by a bug."""


class ModelNotFoundError(VisionkitError, KeyError):
    """A model name that is neither in the catalog nor an existing file."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class WeightsError(VisionkitError):
    """Weights that cannot be found, fetched, verified or loaded."""


class SourceError(VisionkitError):
    """An input (image, video, camera, stream) that cannot be opened or decoded."""


class SinkError(VisionkitError):
    """An output (folder, video file, JSON file) that cannot be written."""


class OptionError(VisionkitError, ValueError):
    """An option unknown to the chosen task/backend, or a value out of range."""


class DataError(VisionkitError):
    """A training or evaluation dataset whose layout, labels or files cannot be used."""
