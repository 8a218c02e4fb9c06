"""Keeping caller numbers out of places they do not belong.

* :class:`MaskNumbers`, a logging filter: any phone number in a log line
  (dialled form ``070...``, ``00...`` or E.164 ``+46...``) is masked, so a
  stray ``%s`` of a record cannot leak one.  Asterisk ids and epoch times
  (``1795414101.123``) and extensions are left alone.
* :func:`pseudonymiser`: a keyed HMAC for numbers in the database, when the
  authority wants none in clear.  The same number gives the same pseudonym,
  so "called back?" and repeat-caller figures still work; without the key
  it cannot be reversed or recomputed from a guessed number.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from pbxwatch.core.numbers import PSEUDONYM_PREFIX, is_pseudonym, mask

if TYPE_CHECKING:
    from pbxwatch.settings import Settings

#: a number as dialled or in E.164, not part of a longer word or id
PHONE_IN_TEXT = re.compile(r"(?<![\w.+*])(?:\+|0)\d[\d -]{4,16}\d(?![\w.*])")


def mask_numbers_in(text: str) -> str:
    return PHONE_IN_TEXT.sub(lambda m: mask(re.sub(r"[ -]", "", m[0])), text)


class MaskNumbers(logging.Filter):
    """Rewrites each record's message with the numbers in it masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_numbers_in(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def pseudonymiser(key: bytes) -> Callable[[str], str]:
    """``number -> "h:" + 30 hex digits`` (120 bits of HMAC-SHA256); a
    pseudonym given again is returned as it is."""

    def pseudonym(value: str) -> str:
        if is_pseudonym(value):
            return value
        digest = hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
        return PSEUDONYM_PREFIX + digest[:30]

    return pseudonym


def pseudonym_of(settings: Settings) -> Callable[[str], str] | None:
    """The configured pseudonymiser, or ``None`` when numbers are kept."""
    key = settings.privacy.pseudonym_key()
    return pseudonymiser(key) if key is not None else None
