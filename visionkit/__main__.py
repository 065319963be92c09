"""The ``visionkit`` command's entry point (``python -m visionkit`` and the console script alike).

It installs the stop-signal handlers before the command's own modules load (numpy, the catalog, the parser) and
holds a stop back while they import: a Ctrl-C in that first tenth of a second then ends the run with the usual
one line and exit 130, instead of a traceback out of an import (numpy's C start-up turns an exception raised
inside it into an ImportError). Only Python's own start-up, before this file runs, is out of reach.
"""

import sys

from .interrupts import deferred_stop, report_interrupted, stop_signals


def main() -> int:
    with stop_signals():
        try:
            with deferred_stop():
                from .cli import main as run_command
        except KeyboardInterrupt as e:
            return report_interrupted(e)
        return run_command()


if __name__ == "__main__":
    sys.exit(main())
