"""E-mail to unit chiefs: immediate mails for what needs action, a morning
summary of what came outside phone hours, daily and weekly digests; all
through the ``mail_outbox`` table (see README: E-mail to unit chiefs)."""

from pbxwatch.mail.outbox import MAILED_KINDS, MailRows, recipients
from pbxwatch.mail.sender import MailSender

__all__ = ["MAILED_KINDS", "MailRows", "MailSender", "recipients"]
