"""Phone numbers: E.164 normalisation and masking for logs."""

from __future__ import annotations

import re

_ANONYMOUS = {"", "<unknown>", "unknown", "anonymous", "restricted", "private", "s"}
_SEPARATORS = re.compile(r"[\s\-().,/]")


def is_anonymous(raw: str | None) -> bool:
    return raw is None or raw.strip().lower() in _ANONYMOUS


def normalise(raw: str | None, country_code: str = "46", outbound_prefix: str = "") -> str | None:
    """Normalise a dialled or presented number to E.164 (``+46701234567``).

    ``070 123 45 67``, ``+46701234567`` and ``0046701234567`` are one number.
    Short numbers (extensions, service codes) come back unchanged, and an
    anonymous caller gives ``None``.
    """
    if is_anonymous(raw):
        return None
    assert raw is not None
    s = _SEPARATORS.sub("", raw.strip())
    if outbound_prefix and s.startswith(outbound_prefix) and len(s) > len(outbound_prefix) + 6:
        s = s[len(outbound_prefix) :]
    if not s or not s.lstrip("+").isdigit():
        return raw.strip() or None
    if s.startswith("+"):
        return s
    if s.startswith("00") and len(s) > 8:
        return "+" + s[2:]
    if s.startswith("0") and len(s) >= 7:
        return f"+{country_code}{s[1:]}"
    return s


def mask(number: str | None) -> str:
    """``+46701234567`` -> ``+4670*****67``: enough to tell calls apart in a
    log, not enough to identify a caller."""
    if not number:
        return "-"
    if len(number) <= 5:
        return number
    keep_head = 5 if number.startswith("+") else 4
    return number[:keep_head] + "*" * (len(number) - keep_head - 2) + number[-2:]


#: what a stored number starts with when the store keeps it as a keyed HMAC
#: (``privacy.pseudonymise_numbers``): it can be compared, not dialled
PSEUDONYM_PREFIX = "h:"


def is_pseudonym(number: str) -> bool:
    return number.startswith(PSEUDONYM_PREFIX)
