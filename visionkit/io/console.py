"""The terminal a CLI run writes to: visionkit's own lines only.

C libraries under OpenCV print to file descriptor 2 themselves - libpng's ``libpng error: IDAT: CRC error``,
libjpeg's ``Corrupt JPEG data: 12 extraneous bytes``, ONNX Runtime's ``[W:onnxruntime:...]`` - right beside the
one line in which visionkit already says what failed and why. No log level reaches them (OpenCV's and FFmpeg's own
are set in ``sources.quiet_native_logs``), so a console run moves them aside at the descriptor.
"""

from __future__ import annotations

import faulthandler
import os
import sys


def divert_native_stderr() -> None:
    """Point descriptor 2 at /dev/null and give Python's ``sys.stderr`` a copy of the terminal.

    Everything Python writes (visionkit's error and warning lines, the progress bar, tracebacks with ``--debug``)
    still reaches the terminal; what C code writes to descriptor 2 does not. A crash still shows its Python
    traceback: faulthandler writes to the copy. For a console run only - it changes the whole process.
    """
    try:
        sys.stderr.flush()
        terminal = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
    except (OSError, ValueError):  # no usable descriptor 2 (closed, or stderr is not a file): nothing to divert
        return
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = open(terminal, "w", buffering=1, encoding=sys.stderr.encoding or "utf-8",
                      errors="backslashreplace")
    faulthandler.enable(sys.stderr)


def silence_closed_pipe() -> None:
    """The reader of a pipe went away (``visionkit models --json | head -1``): send what is left to /dev/null.

    CPython's documented idiom (the ``signal`` module's "Note on SIGPIPE"): Python ignores SIGPIPE, so a write to
    a pipe nobody reads raises ``BrokenPipeError``, and the flush of the same buffer at exit would raise it once
    more ("Exception ignored ... BrokenPipeError") unless the descriptor now points at /dev/null. Each standard
    stream that cannot be flushed (stdout for ``| head``, stderr too for ``2>&1 | head``) is redirected.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            try:
                os.dup2(devnull, stream.fileno())
            except (OSError, ValueError):  # no descriptor behind it (a test's capture): nothing will flush at exit
                pass
    os.close(devnull)
