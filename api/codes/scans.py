"""Which resolver requests are people scanning a code, and what their scans say.

Only a person's look at the consumer page counts (docs/codes.md lists what does not): a
GET (not HEAD, OPTIONS or the region form's follow-up), asking for HTML (not JSON,
JSON-LD or a linkset: programs, including verification services, ask for those), with
the default link type (not `?linkType=` for a verification service, a linkset or a
redirect), from a client that is not a crawler or a link-preview fetcher (WhatsApp,
WeChat, Slack, Telegram, Facebook, Twitter, Discord and the other bots and scripts
CrawlerDetect knows) and that names itself at all.

A scan is kept in the node's outbox (durable) before the page is answered, and the
verdict is judged from the chain's committed scans plus the node's own pending ones.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from functools import cache

from crawlerdetect import CrawlerDetect
from fastapi import Request

from traceability.codes.copies import Sale, Verdict, judge
from traceability.codes.digital_link import DigitalLink
from traceability.codes.links import DEFAULT_TYPE
from traceability.codes.observations import RegionNote, Scan
from traceability.codes.regions import region as find_region
from traceability.codes.scanbook import REGION_GRACE, history_query, scan_query, to_scan
from traceability.epcis.index import EventIndex

from .service import CodesService

#: Accept types of programs, never of a person's browser.
MACHINE_MEDIA = frozenset({"application/json", "application/ld+json", "application/linkset+json"})
#: Link types whose answer is the page itself.
PAGE_LINK_TYPES = (None, DEFAULT_TYPE, "gs1:defaultLink")
#: Link-preview fetchers named by the issue of every messenger, whatever CrawlerDetect's
#: list holds at the installed version (matched case-insensitively).
PREVIEW_TOKENS = (
    "whatsapp",
    "wechatshareextension",
    "slackbot",
    "telegrambot",
    "facebookexternalhit",
    "twitterbot",
    "discordbot",
    "linkedinbot",
    "skypeuripreview",
)


@cache
def _detector() -> CrawlerDetect:
    return CrawlerDetect()


def is_person(user_agent: str | None) -> bool:
    """Whether a user agent is a person's browser (not a bot, script or link preview)."""
    agent = (user_agent or "").strip()
    if not agent or len(agent) > 1024:
        return False
    lowered = agent.lower()
    if any(token in lowered for token in PREVIEW_TOKENS):
        return False
    return not _detector().isCrawler(agent)


def counts_as_scan(request: Request, media: str, link_type: str | None) -> bool:
    """Whether this request is a person scanning the code (see the module's docstring)."""
    return (
        request.method == "GET"
        and media not in MACHINE_MEDIA
        and link_type in PAGE_LINK_TYPES
        and is_person(request.headers.get("user-agent"))
    )


def channel_of(user_agent: str | None) -> str:
    agent = user_agent or ""
    if "MicroMessenger" in agent:
        return "wechat"
    if "AlipayClient" in agent:
        return "alipay"
    return "web"


def history(index: EventIndex, codes: CodesService, code: str) -> list[Scan]:
    """The scans of `code`: the chain's (read once per index height: they change only
    when a block of scans commits), with this node's own not yet committed."""
    committed = index.memo(("scans", code), lambda: _committed(index, code))
    return codes.outbox.merged(committed, code)


def _committed(index: EventIndex, code: str) -> list[Scan]:
    rows = index.run(history_query(code))
    return [to_scan(row) for row in rows]


def _scan(index: EventIndex, codes: CodesService, scan_id: str) -> Scan | None:
    if not scan_id:
        return None
    found = codes.outbox.find_scan(scan_id)
    if found is not None:
        return found
    rows = index.run(scan_query(scan_id))
    return to_scan(rows[0]) if rows else None


def observe(
    request: Request,
    index: EventIndex,
    codes: CodesService,
    link: DigitalLink,
    shipped: Sequence[str],
    sales: Sequence[Sale],
    *,
    counts: bool,
) -> tuple[Scan | None, bool, Verdict]:
    """Record this request's scan when it `counts` (or find the scan it follows up: a
    language switch, the region form), then judge the code against the regions its
    journey went through and its recorded sales (`sales_of`). Returns the current scan,
    whether a region was just added to it, and the verdict."""
    code, now = link.instance_id or "", codes.stamp()
    given = find_region(request.query_params.get("region"))
    current, added = None, False
    follow_up = _scan(index, codes, request.query_params.get("scan", "")[:64]) if counts else None
    if follow_up is not None and follow_up.code == code and now - follow_up.at <= REGION_GRACE:
        current = follow_up
        if given is not None and follow_up.region is None:
            codes.outbox.add(RegionNote(follow_up.id, code, now, given.code))
            added = True
    elif counts:
        agent = request.headers.get("user-agent")
        region = given.code if given else None
        current = Scan(secrets.token_hex(16), code, now, region, channel_of(agent))
        codes.outbox.add(current)
    scans = history(index, codes, code)
    verdict = judge(scans, current, shipped, codes.settings.rules, sales)
    return current, added, verdict
