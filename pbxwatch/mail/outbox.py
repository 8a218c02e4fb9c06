"""The rows of the mail outbox and their stable identities; pure.

An alert that needs a unit chief's action becomes one ``mail_outbox`` row
per recipient of its unit, made by the store writer right after the alert
row, in the same batch and so the same transaction (a batch that fills
between them takes the mail rows along, and the spill file is read back
without cutting them apart): never an alert without its mail.  The row's
``mail_id`` is derived from the
alert id (or the digest's key) and the recipient only, so making it again
updates the same row and never resets its ``status``; the ``Message-ID``
is derived from the ``mail_id``, so a mail sent twice (a crash between the
SMTP server's 250 and the mark) has one id and a mail client shows it once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from pbxwatch.core.alerts import Alert
from pbxwatch.settings import Settings
from pbxwatch.store.rows import Row

#: the alerts that ask for action: mailed at once (or in the morning summary)
MAILED_KINDS = frozenset({"callback_overdue", "group_unstaffed", "unforwarded_absence"})


@dataclass(frozen=True, slots=True)
class Recipient:
    email: str
    lang: str


def recipients(settings: Settings, unit: str | None) -> list[Recipient]:
    """The unit's chief (``directory.units.<u>.chief.email``) and the
    addresses in ``mail.units.<u>.recipients``, each once."""
    u = settings.directory.units.get(unit or "")
    if u is None:
        return []
    extra = settings.mail.units.get(unit or "")
    out: list[Recipient] = []
    if u.chief is not None and u.chief.email:
        out.append(Recipient(u.chief.email, extra.chief_lang if extra else "sv"))
    for r in extra.recipients if extra else []:
        if all(o.email.lower() != r.email.lower() for o in out):
            out.append(Recipient(r.email, r.lang))
    return out


def mail_id(key: str, email: str) -> str:
    return f"{key}/{email.lower()}"


def message_id(mid: str, settings: Settings) -> str:
    """``<hash.site@domain>``: the same for every send of one mail."""
    digest = hashlib.sha256(mid.encode()).hexdigest()[:32]
    domain = settings.mail.sender.rpartition("@")[2] or "pbxwatch.invalid"
    return f"<{digest}.{settings.site}@{domain}>"


class MailRows:
    """The writer's hook: the outbox rows of an alert (none for kinds that
    do not ask for action, or a unit without addresses).  Cheap and pure:
    it runs in ``submit``, on the AMI read path."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._to = {unit: recipients(settings, unit) for unit in settings.directory.units}

    def __call__(self, alert: Alert) -> list[Row]:
        if alert.kind not in MAILED_KINDS:
            return []
        rows: list[Row] = []
        for r in self._to.get(alert.unit or "", []):
            values: dict[str, Any] = {
                "mail_id": mail_id(alert.alert_id, r.email),
                "key": alert.alert_id,
                "kind": "alert",
                "unit": alert.unit,
                "recipient": r.email,
                "lang": r.lang,
                "created_at": alert.created_at,
                "alert_id": alert.alert_id,
            }
            rows.append(("mail_outbox", values))
        return rows
