"""Server-rendered consumer pages: Jinja2 templates under web/templates, with helpers that
turn journey data into words of the reader's language. No JavaScript but the
in-browser receipt verifier (web/static/verify.js)."""

from __future__ import annotations

import json
from datetime import timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from traceability.codes import CodeError
from traceability.codes.attributes import SPECS, Mismatch, display_date
from traceability.codes.copies import Warning
from traceability.codes.digital_link import parse_uri
from traceability.codes.regions import ABROAD, PROVINCES, region
from traceability.epcis.rules import parse_timestamp

from .i18n import Translator

WEB = Path(__file__).resolve().parents[2] / "web"
TEMPLATES = WEB / "templates"
STATIC = WEB / "static"
#: China Standard Time, the one zone of the country the goods are sold in (no DST).
BEIJING = timezone(timedelta(hours=8), "CST")


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        auto_reload=False,  # templates ship with the code: no stat of the file per render
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        when=when,
        day=day,
        region_name=region_name,
        subject_name=subject_name,
        provinces=lambda: sorted(PROVINCES.values(), key=lambda r: r.code),
    )
    return env


def render(template: str, t: Translator, **context: Any) -> str:
    colon = "：" if t.lang == "zh" else ": "
    return environment().get_template(template).render(t=t, lang=t.lang, colon=colon, **context)


def when(value: str | None) -> str:
    """'2026-11-03 07:30': the moment in Beijing time (the page says so once), to the
    minute, whatever offset it was recorded with (events in +08:00, blocks in UTC)."""
    moment = parse_timestamp(value) if value else None
    if moment is None:
        return value or ""
    return f"{moment.astimezone(BEIJING):%Y-%m-%d %H:%M}"


def day(value: str | None) -> str:
    """The Beijing-time date of a moment: '2026-11-03'."""
    return when(value)[:10]


def region_name(code: str | None, t: Translator) -> str:
    if code == ABROAD:
        return t("form.abroad")
    found = region(code)
    if found is None:
        return code or ""
    return found.name(t.lang)


def attribute_label(ai: str, t: Translator) -> str:
    if ai == "10":
        return t("id.lot")
    key = f"ai.{ai}" if t.has(f"ai.{ai}") else f"ai.{ai[:3]}"
    return t(key) if t.has(key) else f"AI ({ai})"


def attribute_value(ai: str, value: str, t: Translator) -> str:
    spec = SPECS.get(ai)
    if spec is not None and spec.kind == "country":
        return t(f"country.{value}") if t.has(f"country.{value}") else value
    return display_date(ai, value) if spec is not None else value


def attribute_rows(attributes: dict[str, str], t: Translator) -> list[tuple[str, str]]:
    """(label, value) of a code's data attributes, for people."""
    return [(attribute_label(ai, t), attribute_value(ai, v, t)) for ai, v in attributes.items()]


def mismatch_row(mismatch: Mismatch, t: Translator) -> str:
    """One altered value of a label, in words: what the code says, what was recorded."""
    return t(
        "label.mismatch",
        label=attribute_label(mismatch.ai, t),
        scanned=attribute_value(mismatch.ai, mismatch.scanned, t),
        recorded=attribute_value(mismatch.ai, mismatch.recorded, t),
    )


def subject_name(subject: str | None, t: Translator) -> str:
    """What an event was recorded for, in words: a carton's SSCC, a lot's GTIN and lot."""
    if not subject:
        return ""
    if subject.startswith("urn:epc:id:sscc:"):
        return t("subject.sscc", sscc=subject.rsplit(":", 1)[1])
    try:
        link = parse_uri(subject)
    except CodeError:
        return subject
    if link.lot is not None and link.serial is None:
        return t("subject.lot", gtin=link.gtin, lot=link.lot)
    return subject


def warning_text(warning: Warning, t: Translator) -> str:
    d = warning.details
    if warning.kind == "sold_again":
        return t("warn.sold_again", times=d["times"])
    if warning.kind == "many_scans":
        return t("warn.many_scans", scans=d["scans"], threshold=d["threshold"])
    if warning.kind == "distant_regions":
        a, b = (region_name(code, t) for code in d["regions"])
        hours = d["hours"]
        minutes = round(hours * 60)
        if hours >= 1:
            span = t("time.hours", n=hours)
        else:
            span = t("time.minutes", n=minutes) if minutes >= 1 else t("time.under_a_minute")
        if d["km"] is None:
            return t("warn.distant_regions_far", a=a, b=b, span=span)
        return t("warn.distant_regions", a=a, b=b, km=f"{d['km']:,}", span=span)
    sep = "、" if t.lang == "zh" else ", "
    return t(
        "warn.unshipped_region",
        regions=sep.join(region_name(c, t) for c in d["regions"]),
        shipped=sep.join(region_name(c, t) for c in d["shipped"]),
    )


def problem_text(error: CodeError, t: Translator) -> str:
    """Why a scanned code is not a valid one, in the page's language: on the Chinese page
    GS1 rule codes map to sentences (`rule.<code>` in zh.json), never the rule's name;
    the English page gives the validator's own detail."""
    if t.lang == "en":
        return str(error.detail)
    key = f"rule.{error.problems[0].rule}" if error.problems else "rule.other"
    return t(key) if t.has(key) else t("rule.other")


#: Messages of web/static/verify.js (it has no catalogue of its own).
_VERIFY_KEYS = (
    "verify.running",
    "verify.ok",
    "verify.failed",
    "verify.row_ok",
    "verify.row_failed",
    "verify.checked",
    "verify.not_checked",
    "verify.no_webcrypto",
    "verify.insecure",
)


def verify_messages(t: Translator) -> str:
    """The verifier's messages in the page's language, as JSON for a data attribute."""
    return json.dumps({k.split(".", 1)[1]: t(k) for k in _VERIFY_KEYS}, ensure_ascii=False)
