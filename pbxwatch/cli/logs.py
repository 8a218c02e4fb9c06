"""Logging for the command line: masked, and never in the reader's way."""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import sys

from pbxwatch.privacy import MaskNumbers


def setup_logging(verbose: bool) -> None:
    """Lines are masked (``privacy.mask_numbers_in_logs`` may lift it) and
    queued where they are logged, and written to stderr by a thread of the
    logging module: a slow terminal or journal never holds up the AMI
    reader.  Left alone when logging is configured already (a program that
    embeds pbxwatch, or the tests)."""
    logging.getLogger("alembic").setLevel(logging.WARNING)
    root = logging.getLogger()
    if root.handlers:
        return
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    out = logging.StreamHandler(sys.stderr)
    out.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    to_queue = logging.handlers.QueueHandler(lines)
    to_queue.addFilter(MaskNumbers())
    root.addHandler(to_queue)
    listener = logging.handlers.QueueListener(lines, out)
    listener.start()
    atexit.register(listener.stop)  # writes what is queued before the process ends
