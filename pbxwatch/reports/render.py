"""The report document (``pbxwatch.reports.document``) as HTML and PDF.

Every number shown comes from the document's JSON, formatted by ``show``;
the charts are inline SVG (``pbxwatch.reports.svg``).  Swedish by default,
English with ``lang="en"``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from pbxwatch.reports import svg
from pbxwatch.reports.document import units_of, values

LANGS = ("sv", "en")

#: (key, kind, target key or None, "min"/"max" for the target)
ROWS: list[tuple[str, str, str | None, str]] = [
    ("offered", "int", None, ""),
    ("answered", "int", None, ""),
    ("availability", "pct", "availability", "min"),
    ("answer_seconds_median", "num", None, ""),
    ("answer_seconds_p90", "num", "answer_seconds_p90", "max"),
    ("rings_before_answer_median", "num", None, ""),
    ("rings_before_answer_p90", "num", None, ""),
    ("answered_within_rings", "int", None, ""),
    ("answered_within_rings_share", "pct", "answered_within_rings_share", "min"),
    ("abandoned", "int", None, ""),
    ("short_abandoned", "int", None, ""),
    ("abandoned_share", "pct", "abandoned_share", "max"),
    ("unanswered_rings", "int", None, ""),
    ("calls_to_person_not_reached", "int", None, ""),
    ("diverted", "int", None, ""),
    ("missing_forwards", "int", None, ""),
    ("missing_forward_share", "pct", "missing_forward_share", "max"),
    ("voicemail_messages", "int", None, ""),
    ("@callbacks", "int", None, ""),  # one row per callback state
    ("callbacks_on_time_share", "pct", "callbacks_on_time_share", "min"),
    ("callback_seconds_median", "minutes", None, ""),
    ("listened", "int", None, ""),
    ("listen_seconds_median", "minutes", None, ""),
    ("unstaffed_minutes", "num", None, ""),
    ("contact_centre_answered", "int", None, ""),
    ("direct_resolution", "pct", "direct_resolution", "min"),
    ("blind_gaps", "int", None, ""),
    ("blind_minutes", "num", None, ""),
]

LABELS: dict[str, dict[str, str]] = {
    "sv": {
        "offered": "Inkommande samtal",
        "answered": "Besvarade av en person",
        "availability": "Tillgänglighet",
        "answer_seconds_median": "Svarstid, median (s)",
        "answer_seconds_p90": "Svarstid, 90:e percentilen (s)",
        "rings_before_answer_median": "Signaler före svar, median",
        "rings_before_answer_p90": "Signaler före svar, 90:e percentilen",
        "answered_within_rings": "Besvarade inom {n} signaler",
        "answered_within_rings_share": "Andel besvarade inom {n} signaler",
        "abandoned": "Tappade samtal",
        "short_abandoned": "Korta avbrott (räknas för sig)",
        "abandoned_share": "Andel tappade samtal",
        "unanswered_rings": "Obesvarade signaler",
        "calls_to_person_not_reached": "Samtal till person som gick till röstbrevlåda/kc",
        "diverted": "  därav hänvisade",
        "missing_forwards": "  därav ej hänvisade",
        "missing_forward_share": "Andel ej hänvisade",
        "voicemail_messages": "Röstmeddelanden",
        "callbacks_pending": "  öppna, ej förfallna",
        "callbacks_called_back": "  återuppringda i tid",
        "callbacks_overdue": "  öppna, försenade",
        "callbacks_called_back_late": "  återuppringda för sent",
        "callbacks_deferred": "  uppskjutna (ägaren borta)",
        "callbacks_exempt": "  undantagna",
        "callbacks_no_number": "  utan nummer",
        "callbacks_on_time_share": "Andel återuppringda i tid",
        "callback_seconds_median": "Tid till återuppringning, median (min)",
        "listened": "Avlyssnade meddelanden",
        "listen_seconds_median": "Tid till avlyssning, median (min)",
        "unstaffed_minutes": "Gruppnummer obemannat i telefontid (min)",
        "contact_centre_answered": "Kontaktcenter: besvarade",
        "direct_resolution": "Kontaktcenter: lösta direkt",
        "blind_gaps": "Avbrott i AMI (pbxwatch såg inget)",
        "blind_minutes": "  minuter totalt",
    },
    "en": {
        "offered": "Offered calls",
        "answered": "Answered by a person",
        "availability": "Availability",
        "answer_seconds_median": "Answer time, median (s)",
        "answer_seconds_p90": "Answer time, 90th percentile (s)",
        "rings_before_answer_median": "Rings before answer, median",
        "rings_before_answer_p90": "Rings before answer, 90th percentile",
        "answered_within_rings": "Answered within {n} rings",
        "answered_within_rings_share": "Share answered within {n} rings",
        "abandoned": "Abandoned calls",
        "short_abandoned": "Short abandons (apart)",
        "abandoned_share": "Abandoned share",
        "unanswered_rings": "Unanswered rings",
        "calls_to_person_not_reached": "Calls to a person ending in voicemail/cc",
        "diverted": "  of which diverted",
        "missing_forwards": "  of which missing forward",
        "missing_forward_share": "Missing-forward share",
        "voicemail_messages": "Voicemail messages",
        "callbacks_pending": "  open, not yet due",
        "callbacks_called_back": "  called back on time",
        "callbacks_overdue": "  open, overdue",
        "callbacks_called_back_late": "  called back late",
        "callbacks_deferred": "  deferred (owner away)",
        "callbacks_exempt": "  exempt",
        "callbacks_no_number": "  no number",
        "callbacks_on_time_share": "Callbacks on time",
        "callback_seconds_median": "Time to call back, median (min)",
        "listened": "Messages listened to",
        "listen_seconds_median": "Time to listen, median (min)",
        "unstaffed_minutes": "Group number unstaffed in phone hours (min)",
        "contact_centre_answered": "Contact centre: answered",
        "direct_resolution": "Contact centre: direct resolution",
        "blind_gaps": "AMI gaps (pbxwatch saw nothing)",
        "blind_minutes": "  minutes in all",
    },
}

TEXT: dict[str, dict[str, str]] = {
    "sv": {
        "title": "Uppföljning av telefonservice",
        "municipality": "Kommun",
        "unit": "Enhet",
        "units": "Enheter",
        "all_units": "Alla enheter",
        "period": "Period",
        "previous": "Föregående period",
        "generated": "Framtagen",
        "figure": "Mått",
        "this_period": "Perioden",
        "prev_period": "Föregående",
        "target": "Mål",
        "compare": "Jämförelse mellan enheter",
        "answer_dist": "Svarstid, besvarade samtal",
        "ring_dist": "Signaler före svar",
        "bucket": "Intervall",
        "rings": "Signaler",
        "calls": "samtal",
        "callbacks": "Återuppringningar per tillstånd",
        "mf_month": "Andel ej hänvisade per månad",
        "month": "Månad",
        "mf_reached": "Till person, ej nådd",
        "mf_missing": "Ej hänvisade",
        "share": "Andel",
        "gaps": "Avbrott i AMI under perioden",
        "no_gaps": "Inga avbrott: pbxwatch såg hela perioden.",
        "gap_from": "Från",
        "gap_to": "Till",
        "gap_min": "Minuter",
        "gap_why": "Orsak",
        "definitions": "Definitioner",
        "availability_units": "Tillgänglighet per enhet",
        "aggregate": "Rapporten är aggregerad: inga telefonnummer till den som ringde visas.",
    },
    "en": {
        "title": "Telephone service follow-up",
        "municipality": "Municipality",
        "unit": "Unit",
        "units": "Units",
        "all_units": "All units",
        "period": "Period",
        "previous": "Previous period",
        "generated": "Generated",
        "figure": "Figure",
        "this_period": "Period",
        "prev_period": "Previous",
        "target": "Target",
        "compare": "Units compared",
        "answer_dist": "Answer time, answered calls",
        "ring_dist": "Rings before answer",
        "bucket": "Range",
        "rings": "Rings",
        "calls": "calls",
        "callbacks": "Callbacks by state",
        "mf_month": "Missing-forward share per month",
        "month": "Month",
        "mf_reached": "To a person, not reached",
        "mf_missing": "Missing forwards",
        "share": "Share",
        "gaps": "AMI gaps in the period",
        "no_gaps": "No gaps: pbxwatch saw the whole period.",
        "gap_from": "From",
        "gap_to": "To",
        "gap_min": "Minutes",
        "gap_why": "Reason",
        "definitions": "Definitions",
        "availability_units": "Availability per unit",
        "aggregate": "The report is aggregate: no caller's number is shown.",
    },
}

#: callback states as the chart's categories (short)
STATE_SHORT: dict[str, dict[str, str]] = {
    "sv": {"pending": "ej förfallna", "called_back": "i tid", "overdue": "försenade",
           "called_back_late": "för sent", "deferred": "uppskjutna", "exempt": "undantagna",
           "no_number": "utan nummer"},
    "en": {"pending": "not yet due", "called_back": "on time", "overdue": "overdue",
           "called_back_late": "late", "deferred": "deferred", "exempt": "exempt",
           "no_number": "no number"},
}  # fmt: skip

#: (term, definition) per language, after SPEC.md's terms and
#: pbxwatch.core.figures.
DEFINITIONS: dict[str, list[tuple[str, str]]] = {
    "sv": [
        ("Inkommande samtal", "Externa samtal in till enheten: till en persons anknytning, "
         "ett gruppnummer eller kontaktcenter som hör till enheten."),
        ("Tillgänglighet", "Andel av de inkommande samtalen som besvarades av en person."),
        ("Svarstid", "Tid från att samtalet kom in i växeln till att en person svarade; "
         "median och 90:e percentilen (närmaste rang) av besvarade samtal."),
        ("Signaler före svar", "Svarstiden delad med signalperioden, avrundad nedåt, plus ett. "
         "Andelen besvarade inom N signaler räknas av de besvarade samtalen; N är "
         "enhetens answer_within_rings."),
        ("Tappat samtal", "Den som ringde lade på innan någon svarade. Korta avbrott (inom "
         "short_abandon_seconds) räknas för sig och ingår inte i andelen tappade."),
        ("Ej hänvisad telefon", "Ett samtal till en persons anknytning som ringde obesvarat "
         "och gick till röstbrevlåda eller kontaktcenter utan att en hänvisning var satt. "
         "Andelen räknas av alla samtal till en person som slutade där; hänvisade samtal "
         "är den del som följer riktlinjen."),
        ("Återuppringning", "Varje röstmeddelande är ett åtagande att ringa tillbaka inom "
         "enhetens tidsgräns: i tid, för sent, öppet (försenat eller ej förfallet), "
         "uppskjutet (ägaren hade en längre hänvisning; tidsgränsen räknas från "
         "återkomsten), undantaget eller utan nummer. Andel i tid = i tid / (i tid + "
         "för sent + försenade)."),
        ("Tid till avlyssning", "Median av tiden från meddelandet till att det avlyssnades."),
        ("Obemannat gruppnummer", "Tid under enhetens telefontider då ingen medlem i "
         "gruppnumret (eller kontaktcenter) var tillgänglig."),
        ("Lösta direkt", "Av de samtal som enhetens kontaktcenterkö besvarade, andelen som "
         "avslutades utan att kopplas vidare."),
        ("Avbrott i AMI", "Tider då pbxwatch inte hade kontakt med växeln; samtal då kan "
         "saknas eller vara ofullständiga."),
        ("Föregående period", "Lika lång period närmast före: hela kalendermånader flyttas "
         "med sitt antal månader (ett år jämförs med året före), annars med antal dagar."),
    ],
    "en": [
        ("Offered calls", "External inbound calls to the unit: to a person's extension, a "
         "group number or the contact centre of the unit."),
        ("Availability", "Share of offered calls answered by a person."),
        ("Answer time", "From the call entering the PBX to the first answer by a person; "
         "median and 90th percentile (nearest rank) of answered calls."),
        ("Rings before answer", "floor(answer time / ring period) + 1. The answered-within-N-"
         "rings share is of answered calls; N is the unit's answer_within_rings."),
        ("Abandoned call", "The caller hung up before a person answered. Short abandons "
         "(within short_abandon_seconds) are counted apart and left out of the share."),
        ("Missing forward", "A call to a person's extension that rang unanswered and ended "
         "in voicemail or the contact centre with no diversion set, over all calls to a "
         "person that ended there (diverted calls are the compliant rest)."),
        ("Callback", "Every voicemail message is one obligation: on time, late, open "
         "(overdue or not yet due), deferred (owner on an extended-away diversion; the "
         "deadline counts from the return), exempt, no number. On-time share = on time / "
         "(on time + late + overdue)."),
        ("Time to listen", "Median time from the message to the moment it was heard."),
        ("Unstaffed group number", "Time in the unit's phone hours with no member of the "
         "group number (or contact centre) available."),
        ("Direct resolution", "Of the calls the unit's contact-centre queue answered, the "
         "share finished without a transfer."),
        ("AMI gaps", "Stretches pbxwatch was not connected to the PBX; calls then may be "
         "missing or incomplete."),
        ("Previous period", "The period of the same length just before: whole calendar "
         "months shift by their number of months (a year against the year before), other "
         "periods by their number of days."),
    ],
}  # fmt: skip


def show(value: Any, kind: str, lang: str = "sv") -> str:
    """A value as the report prints it (one decimal; Swedish decimal comma)."""
    if value is None:
        return "–"
    if kind == "int":
        text = str(int(value))
    elif kind == "pct":
        text = f"{100.0 * value:.1f} %"
    elif kind == "minutes":
        text = f"{value / 60.0:.1f}"
    else:
        text = f"{value:.1f}"
    return text.replace(".", ",") if lang == "sv" else text


def row_keys(unit: dict[str, Any]) -> list[tuple[str, str, str | None, str]]:
    """The table rows of one unit, the callback states expanded."""
    out: list[tuple[str, str, str | None, str]] = []
    for key, kind, target, how in ROWS:
        if key == "@callbacks":
            out += [(f"callbacks_{s}", kind, None, "") for s in unit["figures"]["callbacks"]]
        else:
            out.append((key, kind, target, how))
    return out


def label(key: str, lang: str, unit: dict[str, Any] | None = None) -> str:
    n = unit["details"]["answer_within_rings"] if unit else "N"
    text = LABELS[lang].get(key, key)
    return text.replace("{n}", str(n))


def _target(targets: dict[str, Any], key: str | None, how: str, kind: str, lang: str) -> str:
    if key is None:
        return ""
    sign = "≥" if how == "min" else "≤"
    return f"{sign} {show(targets[key], kind, lang)}"


def _env() -> Environment:
    return Environment(
        loader=PackageLoader("pbxwatch.reports", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _charts(unit: dict[str, Any], t: dict[str, str], lang: str) -> dict[str, Markup]:
    cur, prev = unit["details"], unit["previous"]["details"]
    names = (t["this_period"], t["prev_period"])
    ad = cur["answer_time_distribution"]
    rd = cur["rings_distribution"]
    states = list(unit["figures"]["callbacks"])
    cur_m = cur["missing_forward_by_month"]
    prev_m = prev["missing_forward_by_month"]
    months = [m["month"][5:] for m in cur_m]
    prev_by_index = [m["missing_forward_share"] for m in prev_m][: len(cur_m)]
    prev_by_index += [None] * (len(cur_m) - len(prev_by_index))
    return {
        "answer": svg.bars(
            t["answer_dist"],
            [b["label"] for b in ad],
            [
                (names[0], [b["calls"] for b in ad]),
                (names[1], [b["calls"] for b in prev["answer_time_distribution"]]),
            ],
        ),
        "rings": svg.bars(
            t["ring_dist"],
            [b["label"] for b in rd],
            [
                (names[0], [b["calls"] for b in rd]),
                (names[1], [b["calls"] for b in prev["rings_distribution"]]),
            ],
        ),
        "callbacks": svg.bars(
            t["callbacks"],
            [STATE_SHORT[lang].get(s, s) for s in states],
            [
                (names[0], [unit["figures"]["callbacks"][s] for s in states]),
                (names[1], [unit["previous"]["figures"]["callbacks"].get(s, 0) for s in states]),
            ],
        ),
        "missing": svg.lines(
            t["mf_month"],
            months,
            [
                (names[0], [m["missing_forward_share"] for m in cur_m]),
                (names[1], prev_by_index),
            ],
        ),
    }


def html(doc: dict[str, Any], lang: str = "sv") -> str:
    """The document as one self-contained HTML page (also the PDF's source)."""
    if lang not in LANGS:
        raise ValueError(f"report: language {lang!r}; one of {', '.join(LANGS)}")
    t = TEXT[lang]
    units = units_of(doc)
    targets = doc["targets"]
    sections = []
    for u in units:
        cur, prev = values(u), values(u["previous"])
        rows = [
            {
                "label": label(key, lang, u),
                "sub": label(key, lang, u).startswith("  "),
                "cur": show(cur.get(key), kind, lang),
                "prev": show(prev.get(key), kind, lang),
                "target": _target(targets, tkey, how, kind, lang),
            }
            for key, kind, tkey, how in row_keys(u)
        ]
        pd = u["previous"]["details"]
        dist = [
            {"label": b["label"], "cur": str(b["calls"]), "prev": str(p["calls"])}
            for b, p in zip(
                u["details"]["answer_time_distribution"],
                pd["answer_time_distribution"],
                strict=True,
            )
        ]
        rings = [
            {"label": b["label"], "cur": str(b["calls"]), "prev": str(p["calls"])}
            for b, p in zip(u["details"]["rings_distribution"], pd["rings_distribution"],
                            strict=True)
        ]  # fmt: skip
        months = [
            {
                "label": m["month"],
                "reached": str(m["calls_to_person_not_reached"]),
                "missing": str(m["missing_forwards"]),
                "share": show(m["missing_forward_share"], "pct", lang),
            }
            for m in u["details"]["missing_forward_by_month"]
        ]
        gaps = [
            {
                "from": g["from"][:16].replace("T", " "),
                "to": g["to"][:16].replace("T", " "),
                "minutes": show(g["seconds"] / 60.0, "num", lang),
                "why": g["reason"],
            }
            for g in u["gaps"]
        ]
        sections.append(
            {
                "unit": u["unit"],
                "name": u["unit_name"],
                "rows": rows,
                "dist": dist,
                "rings": rings,
                "months": months,
                "gaps": gaps,
                "charts": _charts(u, t, lang),
            }
        )
    compare = None
    if len(units) > 1:
        compare = {
            "units": [u["unit_name"] for u in units],
            "rows": [
                {
                    "label": label(key, lang),
                    "sub": label(key, lang).startswith("  "),
                    "cells": [show(values(u).get(key), kind, lang) for u in units],
                }
                for key, kind, _t, _h in row_keys(units[0])
            ],
            "chart": svg.bars(
                t["availability_units"],
                [u["unit_name"] for u in units],
                [
                    (t["this_period"], [u["figures"]["availability"] for u in units]),
                    (t["prev_period"], [u["previous"]["figures"]["availability"] for u in units]),
                ],
                fmt="pct",
            ),
        }
    first = units[0]
    generated = dt.datetime.fromisoformat(first["generated_at"]).strftime("%Y-%m-%d %H:%M")
    return (
        _env()
        .get_template("report.html.j2")
        .render(
            lang=lang,
            t=t,
            site=first["site"],
            title=t["title"],
            unit_names=", ".join(u["unit_name"] for u in units) if len(units) > 1 else None,
            cover_unit=t["all_units"] if len(units) > 1 else f"{first['unit_name']}",
            period=f"{first['from']} – {first['to']}",
            previous=f"{first['previous']['from']} – {first['previous']['to']}",
            generated=generated,
            sections=sections,
            compare=compare,
            definitions=DEFINITIONS[lang],
        )
    )


def pdf(doc: dict[str, Any], lang: str = "sv") -> bytes:
    """The document as PDF (WeasyPrint): the HTML page laid out."""
    from weasyprint import HTML  # type: ignore[import-untyped]

    data: bytes = HTML(string=html(doc, lang)).write_pdf()
    return data
