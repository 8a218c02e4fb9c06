"""Mails as ``multipart/alternative`` (plain text first, then HTML), in the
recipient's language (Swedish unless ``lang: en``); pure.

The content of a digest or a summary is rendered once, when its outbox row
is made, and stored: a mail sent again is the same mail.  An alert's mail
is rendered from the alert's stored payload, which is just as fixed.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

LABELS: dict[str, dict[str, str]] = {
    "callback_overdue": {"sv": "Återuppringning försenad", "en": "Callback overdue"},
    "group_unstaffed": {"sv": "Gruppnumret obemannat", "en": "Group number unstaffed"},
    "unforwarded_absence": {"sv": "Frånvaro utan hänvisning", "en": "Unforwarded absence"},
}
RESOLVED = {"sv": "åtgärdat", "en": "resolved"}
FOOTER = {
    "sv": "Skickat av pbxwatch till enhetens chef. Svara inte på detta meddelande.",
    "en": "Sent by pbxwatch to the unit's chief. Do not reply to this message.",
}
CONSOLE = {"sv": "Öppna konsolen", "en": "Open the console"}


@dataclass(frozen=True, slots=True)
class Content:
    subject: str
    text: str
    html: str


def _page(lang: str, title: str, blocks: Sequence[str], link: str | None) -> str:
    esc = html.escape
    more = f'<p><a href="{esc(link, quote=True)}">{esc(CONSOLE[lang])}</a></p>' if link else ""
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
        f'<title>{esc(title)}</title></head><body style="font-family:sans-serif">'
        f"<h2>{esc(title)}</h2>{''.join(blocks)}{more}"
        f'<p style="color:#666;font-size:small">{esc(FOOTER[lang])}</p></body></html>'
    )


def _text(lang: str, title: str, lines: Sequence[str], link: str | None) -> str:
    out = [title, "=" * len(title), "", *lines, ""]
    if link:
        out += [f"{CONSOLE[lang]}: {link}", ""]
    return "\n".join([*out, "-- ", FOOTER[lang], ""])


def _table(rows: Sequence[Sequence[str]], head: Sequence[str] | None = None) -> str:
    esc = html.escape
    th = "".join(f'<th align="left">{esc(h)}</th>' for h in head or ())
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table cellpadding="4">{f"<tr>{th}</tr>" if th else ""}{body}</table>'


def _hm(iso: str | None) -> str:
    if not iso:
        return ""
    t = dt.datetime.fromisoformat(iso)
    return t.strftime("%Y-%m-%d %H:%M")


def unit_link(console: str | None, unit: str | None) -> str | None:
    """The unit's page in the console (its front page for no unit)."""
    if not console:
        return None
    base = console.rstrip("/")
    return f"{base}/units/{unit}" if unit else f"{base}/"


def alert_content(payload: dict[str, Any], lang: str, console: str | None) -> Content:
    """One alert that asks for action, or its resolution."""
    kind, unit = payload["kind"], payload.get("unit_name") or payload.get("unit") or ""
    resolved = payload["state"] == "resolved"
    title = f"{LABELS[kind][lang]}{' – ' + RESOLVED[lang] if resolved else ''}: {unit}"
    data = payload.get("data", {})
    facts: list[tuple[str, str]] = [("Tid" if lang == "sv" else "Time", _hm(payload["created_at"]))]
    if data.get("owner_name"):
        facts.append(("Mottagare" if lang == "sv" else "For", str(data["owner_name"])))
    if data.get("caller"):
        facts.append(("Uppringare" if lang == "sv" else "Caller", str(data["caller"])))
    if data.get("deadline"):
        facts.append(("Tidsgräns" if lang == "sv" else "Deadline", _hm(data["deadline"])))
    if data.get("queue"):
        facts.append(("Gruppnummer" if lang == "sv" else "Group number", str(data["queue"])))
    facts.append(("Larm-id" if lang == "sv" else "Alert id", str(payload["alert_id"])))
    said = str(payload["text"][lang])
    link = unit_link(console, payload.get("unit"))
    text = _text(lang, title, [said, "", *(f"{k}: {v}" for k, v in facts)], link)
    page = _page(lang, title, [f"<p>{html.escape(said)}</p>", _table(facts)], link)
    return Content(f"[pbxwatch] {title}", text, page)


def summary_content(
    unit_name: str, day: dt.date, payloads: Sequence[dict[str, Any]], lang: str, console: str | None
) -> Content:
    """What came outside phone hours, at the unit's opening."""
    n = len(payloads)
    if lang == "sv":
        title = f"Morgonsammanfattning {day.isoformat()}: {unit_name}"
        intro = f"{n} larm utanför telefontid:"
    else:
        title = f"Morning summary {day.isoformat()}: {unit_name}"
        intro = f"{n} alerts outside phone hours:"
    rows = [
        (
            _hm(p["created_at"]),
            LABELS[p["kind"]][lang] + (f" ({RESOLVED[lang]})" if p["state"] == "resolved" else ""),
            str(p["text"][lang]) + (f" [{p['data']['caller']}]" if p["data"].get("caller") else ""),
        )
        for p in payloads
    ]
    link = console  # the sender gives the unit's page
    text = _text(lang, title, [intro, "", *(" ".join(r) for r in rows)], link)
    page = _page(lang, title, [f"<p>{html.escape(intro)}</p>", _table(rows)], link)
    return Content(f"[pbxwatch] {title}", text, page)


def _share(v: Any) -> str:
    return "–" if v is None else f"{100 * float(v):.0f} %"


def digest_content(d: dict[str, Any], lang: str, console: str | None) -> Content:
    """A daily or weekly digest from ``pbxwatch.mail.digest.digest_data``."""
    sv = lang == "sv"
    what = (
        ("Dagsrapport" if d["kind"] == "daily" else "Veckorapport")
        if sv
        else ("Daily digest" if d["kind"] == "daily" else "Weekly digest")
    )
    period = d["first"] if d["first"] == d["last"] else f"{d['first']} – {d['last']}"
    title = f"{what} {period}: {d['unit_name']}"
    f, t = d["figures"], d["targets"]
    figures = [
        ("Inkommande samtal" if sv else "Calls offered", str(f["offered"]), ""),
        (
            "Tillgänglighet" if sv else "Availability",
            _share(f["availability"]),
            _share(t.get("availability")),
        ),
        ("Missade hänvisningar" if sv else "Missing forwards", str(f["missing_forwards"]), ""),
        (
            "Andel missade hänvisningar" if sv else "Missing-forward share",
            _share(f["missing_forward_share"]),
            _share(t.get("missing_forward_share")),
        ),
        ("Obesvarade signaler" if sv else "Unanswered rings", str(f["unanswered_rings"]), ""),
        (
            "Gruppnumret obemannat (min)" if sv else "Group number unstaffed (min)",
            f"{f['unstaffed_seconds'] / 60:.0f}",
            "",
        ),
        (
            "Återuppringt i tid" if sv else "Called back on time",
            _share(f["callbacks_on_time_share"]),
            _share(t.get("callbacks_on_time_share")),
        ),
    ]
    head = ["", "Utfall" if sv else "Figure", "Mål" if sv else "Target"]
    people = [(p["name"], str(p["count"])) for p in d["missing_forwards"]]
    states = {
        "late": "sen" if sv else "late",
        "overdue": "försenad" if sv else "overdue",
        "deferred": "uppskjuten (mottagaren borta)" if sv else "deferred (owner away)",
    }
    callbacks = [
        (
            states.get(c["state"], c["state"]),
            c["owner"],
            _hm(c["left_at"]),
            _hm(c["deadline"]),
            c["caller"] or "",
        )
        for c in d["callbacks"]
    ]
    h_people = "Missade hänvisningar per person" if sv else "Missing forwards per person"
    h_cb = (
        "Återuppringningar sena, försenade eller uppskjutna"
        if sv
        else "Callbacks late, overdue or deferred"
    )
    none = "Inga." if sv else "None."
    cb_head = (
        ["Läge", "Mottagare", "Lämnat", "Tidsgräns", "Uppringare"]
        if sv
        else ["State", "For", "Left", "Deadline", "Caller"]
    )
    lines = [
        *(
            f"{a}: {b}" + (f" ({'mål' if sv else 'target'} {c})" if c else "")
            for a, b, c in figures
        ),
        "",
        h_people + ":",
        *([f"  {a}: {b}" for a, b in people] or ["  " + none]),
        "",
        h_cb + ":",
        *(["  " + "  ".join(r) for r in callbacks] or ["  " + none]),
    ]
    link = unit_link(console, d.get("unit"))
    blocks = [
        _table(figures, head),
        f"<h3>{html.escape(h_people)}</h3>",
        _table(people) if people else f"<p>{none}</p>",
        f"<h3>{html.escape(h_cb)}</h3>",
        _table(callbacks, cb_head) if callbacks else f"<p>{none}</p>",
    ]
    return Content(
        f"[pbxwatch] {title}", _text(lang, title, lines, link), _page(lang, title, blocks, link)
    )


def message(
    content: Content,
    *,
    sender: str,
    to: str,
    message_id: str,
    date: dt.datetime,
    references: str | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = content.subject
    msg["From"] = sender
    msg["To"] = to
    msg["Message-ID"] = message_id
    msg["Date"] = format_datetime(date)
    msg["Auto-Submitted"] = "auto-generated"
    if references:
        msg["In-Reply-To"] = references
        msg["References"] = references
    msg.set_content(content.text)
    msg.add_alternative(content.html, subtype="html")
    return msg
