"""Garbage-collector settings for a process that must answer in milliseconds.

CPython's full (generation 2) collection walks every container object the
process holds.  After start-up that is some 100 000 objects of imported
modules (SQLAlchemy, pydantic, the settings, the directory) that live as long
as the process; walking them takes 50–100 ms on a small server, and the walk
can land in the middle of an AMI read.  ``gc.freeze()`` moves them to a
generation the collector never walks.  What is created later (calls,
channels, callbacks) is collected as usual: freezing frees nothing and leaks
nothing that start-up did not already keep.
"""

from __future__ import annotations

import gc


def settle() -> int:
    """Collect start-up garbage, then freeze what survives.  Call once, when
    the process is built and before it starts reading.  The number of objects
    frozen is returned for the log."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
