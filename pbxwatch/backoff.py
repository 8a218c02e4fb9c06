"""Capped exponential backoff with jitter, for reconnects and retries."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, initial: float, cap: float) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): doubling from
    ``initial`` up to ``cap``, times a random 0.5-1.0 so that many clients
    coming back at once do not retry in step."""
    return float(min(cap, initial * 2 ** min(attempt, 30)) * random.uniform(0.5, 1.0))
