"""Named queries and query subscriptions of the EPCIS REST binding, kept in the node's
store (`ledger.store.local`), and their delivery.

A subscription is a named query, a subscriber (the member certificate that created it),
a way of delivery (a webhook `dest`, or a WebSocket) and a position: the log index of
the last event the subscriber acknowledged. Deliveries read the event index, which
follows committed blocks only, so nothing unconfirmed is ever pushed; each one holds the
events after the position that the query matches and the subscriber may read (the
consortium's read rule for its certificate, judged again at every delivery, so a revoked
subscriber receives nothing more). The position moves only when the webhook answers 2xx
(or the WebSocket client acknowledges), and it is written to the store before the next
delivery: delivery is at least once, resumes after a restart of the subscriber or of the
node from what was acknowledged, and never re-sends what was.

`stream: true` delivers as blocks commit; a `schedule` (cron fields second … dayOfWeek)
delivers at those times, an empty result only with `reportIfEmpty`. A webhook push
carries `GS1-Signature: sha256=<hex HMAC-SHA256 of the body under signatureToken>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx
from croniter import croniter

from ledger import timefmt
from ledger.errors import DuplicateError, NotPermittedError, SchemaError
from ledger.store.local import LocalRecord, LocalRecords
from nodes.service import NodeCore
from traceability.epcis.index import EventIndex, IndexedEvent, events
from traceability.epcis.query import EventQuery, query_document, run_query
from traceability.epcis.rules import parse_timestamp
from traceability.epcis.visibility import reader, scope
from traceability.errors import NotFoundError

log = logging.getLogger(__name__)
QUERY, SUBSCRIPTION = "epcis.query", "epcis.subscription"
#: Events in one push at most; more follow in the next push.
BATCH = 100
SCHEDULE_FIELDS = ("second", "minute", "hour", "dayOfMonth", "month", "dayOfWeek")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.~-]{0,127}$")
_CRON_FIELD = re.compile(r"^[0-9*,/\-A-Za-z]{1,64}$")


class SubscriptionError(SchemaError):
    code = "invalid_subscription"


def signature(token: str, body: bytes) -> str:
    """The GS1-Signature header value of a push: HMAC-SHA256 of the body, hex."""
    return "sha256=" + hmac.new(token.encode(), body, hashlib.sha256).hexdigest()


def cron(schedule: dict[str, Any]) -> str:
    """The binding's schedule as a croniter expression (seconds last). Fields left out
    below the most significant one given are their first value (1:05 is 01:05:00), those
    above it every value."""
    unknown = sorted(set(schedule) - set(SCHEDULE_FIELDS))
    if unknown or not schedule:
        raise SubscriptionError(f"schedule: fields are {', '.join(SCHEDULE_FIELDS)}")
    # The most significant time field given (none: the day fields alone, at midnight).
    top = max((i for i, f in enumerate(SCHEDULE_FIELDS[:3]) if f in schedule), default=3)
    fields = {}
    for i, name in enumerate(SCHEDULE_FIELDS):
        value = schedule.get(name)
        if value is None:
            value = "0" if i < top else "*"
        value = str(value)
        if not _CRON_FIELD.fullmatch(value):
            raise SubscriptionError(f"schedule.{name}: {value!r} is not a cron field")
        fields[name] = value
    expression = " ".join(fields[f] for f in (*SCHEDULE_FIELDS[1:], "second"))
    if not croniter.is_valid(expression, second_at_beginning=False):
        raise SubscriptionError(f"schedule: {schedule!r} is not a valid schedule")
    return expression


@dataclass
class Subscription:
    record: LocalRecord

    @property
    def body(self) -> dict[str, Any]:
        return self.record.body

    @property
    def id(self) -> str:
        return self.body["subscriptionID"]

    def view(self) -> dict[str, Any]:
        """As the binding lists it: never the signature token."""
        shown = {k: v for k, v in self.body.items() if k != "signatureToken" and v is not None}
        return shown | {"parktrace:position": self.record.position}


class Subscriptions:
    """Named queries and subscriptions of one node, and the webhook deliverer."""

    def __init__(
        self,
        node: NodeCore,
        index: EventIndex,
        records: LocalRecords,
        *,
        http: Callable[[], httpx.AsyncClient] | None = None,
    ) -> None:
        self.node, self.index, self.records = node, index, records
        self._http = http or (lambda: httpx.AsyncClient(timeout=10))
        self._wake = asyncio.Event()

    # -- named queries -----------------------------------------------------------------
    def create_query(self, name: Any, query: Any, org: str) -> dict[str, Any]:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise SubscriptionError(
                "name: 1-128 letters, digits, '_', '.', '~' or '-', starting with a letter or digit"
            )
        EventQuery.from_params(_flat(query))  # every parameter checked now
        body = {"name": name, "query": query, "createdAt": timefmt.now(), "owner": org}
        if not self.records.create(QUERY, name, org, body, -1):
            raise DuplicateError(f"a query named {name!r} exists already")
        return body

    def query(self, name: str) -> dict[str, Any]:
        found = self.records.get(QUERY, name)
        if found is None:
            raise NotFoundError(f"no named query {name!r} on this node")
        return found.body

    def queries(self) -> list[dict[str, Any]]:
        return [r.body for r in self.records.list(QUERY)]

    def delete_query(self, name: str, org: str) -> None:
        found = self.query(name)
        if found["owner"] != org:
            raise NotPermittedError(f"query {name!r} belongs to {found['owner']!r}")
        for sub in self.subscriptions(name):
            self.records.delete(SUBSCRIPTION, sub.record.key)
        self.records.delete(QUERY, name)

    def event_query(self, name: str, per_page: int, after: int | None) -> EventQuery:
        base = EventQuery.from_params(_flat(self.query(name)["query"]))
        return EventQuery(base.filters, per_page, None if after is None else (after, after))

    # -- subscriptions -----------------------------------------------------------------
    def subscribe(
        self, name: str, request: Any, fingerprint: str, *, websocket: bool = False
    ) -> Subscription:
        """Check and record a subscription of `fingerprint`'s member to query `name`."""
        self.query(name)
        if not isinstance(request, dict):
            raise SubscriptionError("expected a JSON object")
        allowed = {"dest", "signatureToken", "reportIfEmpty", "stream", "schedule"}
        allowed |= {"initialRecordTime", "epcFormat"}
        unknown = sorted(set(request) - allowed)
        if unknown:
            raise SubscriptionError(f"{unknown[0]}: not a subscription field")
        dest = request.get("dest")
        if not websocket and (
            not isinstance(dest, str) or not dest.startswith(("http://", "https://"))
        ):
            raise SubscriptionError("dest: the http(s) URL events are posted to")
        token = request.get("signatureToken")
        if token is not None and (not isinstance(token, str) or not 1 <= len(token) <= 512):
            raise SubscriptionError("signatureToken: a string of 1 to 512 characters")
        stream, schedule = request.get("stream"), request.get("schedule")
        if (stream is True) == (schedule is not None) or stream not in (None, True, False):
            raise SubscriptionError("give either stream: true or a schedule, not both")
        if schedule is not None:
            if not isinstance(schedule, dict):
                raise SubscriptionError("schedule: an object of cron fields")
            cron(schedule)
        report = request.get("reportIfEmpty", False)
        if not isinstance(report, bool):
            raise SubscriptionError("reportIfEmpty: true or false")
        initial = request.get("initialRecordTime")
        if initial is not None and parse_timestamp(initial) is None:
            raise SubscriptionError("initialRecordTime: an RFC 3339 time with offset")
        # Without initialRecordTime: what commits from now on (the binding's default).
        position = -1 if initial is not None else self._head_position()
        sub_id = str(uuid.uuid4())
        body = {
            "subscriptionID": sub_id,
            "queryName": name,
            "dest": dest if not websocket else "websocket",
            "signatureToken": token,
            "stream": bool(stream),
            "schedule": schedule,
            "reportIfEmpty": report,
            "initialRecordTime": initial,
            "createdAt": timefmt.now(),
            "lastNotifiedAt": None,
            "websocket": websocket,
        }
        self.records.create(SUBSCRIPTION, f"{name}/{sub_id}", fingerprint, body, position)
        self._wake.set()
        return Subscription(self.records.get(SUBSCRIPTION, f"{name}/{sub_id}"))  # type: ignore[arg-type]

    def subscriptions(self, name: str) -> list[Subscription]:
        return [Subscription(r) for r in self.records.list(SUBSCRIPTION, prefix=f"{name}/")]

    def subscription(self, name: str, sub_id: str) -> Subscription:
        self.query(name)
        found = self.records.get(SUBSCRIPTION, f"{name}/{sub_id}")
        if found is None:
            raise NotFoundError(f"no subscription {sub_id!r} to query {name!r}")
        return Subscription(found)

    def unsubscribe(self, name: str, sub_id: str, org: str) -> None:
        sub = self.subscription(name, sub_id)
        owner = self.node.membership.member(sub.record.owner)
        if owner is None or owner.org != org:
            raise NotPermittedError(f"subscription {sub_id!r} is another organisation's")
        self.records.delete(SUBSCRIPTION, sub.record.key)

    def _head_position(self) -> int:
        from sqlalchemy import func, select

        rows = self.index.run(select(func.max(events.c.log_index)))
        return rows[0][0] if rows and rows[0][0] is not None else -1

    # -- what a delivery holds -----------------------------------------------------------
    def pending(self, sub: Subscription) -> list[IndexedEvent]:
        """The next events the subscriber has not acknowledged and may read (blocking)."""
        member = self.node.membership.member(sub.record.owner)
        if member is None or member.revoked_height is not None:
            return []
        who = reader(self.node.membership, member.org, member.roles)
        query = self.event_query(sub.body["queryName"], BATCH, sub.record.position)
        initial = sub.body.get("initialRecordTime")
        if initial:
            query = EventQuery({**query.filters, "GE_recordTime": [initial]}, BATCH, query.after)
        items, _ = run_query(self.index, query, scope(who))
        return items

    def document(self, sub: Subscription, items: list[IndexedEvent]) -> dict[str, Any]:
        doc = query_document(items, sub.body["queryName"])
        results = doc["epcisBody"]["queryResults"]
        results["subscriptionID"] = sub.id
        results["parktrace:position"] = items[-1].log_index if items else sub.record.position
        return doc

    def acknowledge(self, sub: Subscription, position: int) -> Subscription:
        body = dict(sub.body, lastNotifiedAt=timefmt.now())
        self.records.advance(SUBSCRIPTION, sub.record.key, position, body)
        found = self.records.get(SUBSCRIPTION, sub.record.key)
        return Subscription(found) if found is not None else sub

    # -- webhook deliverer ---------------------------------------------------------------
    async def run(self) -> None:
        """Deliver webhook subscriptions for the app's lifetime."""
        retry: dict[str, tuple[float, float]] = {}  # key -> (not before, backoff)
        due: dict[str, float] = {}  # scheduled key -> next fire time (loop clock)
        loop = asyncio.get_running_loop()
        async with self._http() as http:
            while True:
                height = self.node.height
                subs = await anyio.to_thread.run_sync(lambda: self.records.list(SUBSCRIPTION))
                for record in subs:
                    sub = Subscription(record)
                    if sub.body.get("websocket"):
                        continue
                    key, now = record.key, loop.time()
                    if retry.get(key, (0, 0))[0] > now:
                        continue
                    scheduled = sub.body.get("schedule") is not None
                    if scheduled:
                        fire = due.setdefault(
                            key, now + _seconds_to_next(cron(sub.body["schedule"]))
                        )
                        if fire > now:
                            continue
                        due[key] = now + _seconds_to_next(cron(sub.body["schedule"]))
                    try:
                        await self._push(
                            http, sub, report_empty=scheduled and sub.body["reportIfEmpty"]
                        )
                        retry.pop(key, None)
                    except _Refused as exc:
                        backoff = min(retry.get(key, (0, 0.5))[1] * 2, 30.0)
                        retry[key] = (loop.time() + backoff, backoff)
                        log.info("subscription %s: %s; retrying in %.1f s", sub.id, exc, backoff)
                self._wake.clear()
                wake = asyncio.create_task(self._wake.wait())
                commit = asyncio.create_task(self.node.wait_beyond(height, 0.5))
                await asyncio.wait({wake, commit}, return_when=asyncio.FIRST_COMPLETED)
                for task in (wake, commit):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def _push(
        self, http: httpx.AsyncClient, sub: Subscription, *, report_empty: bool
    ) -> None:
        """Post what is pending, batch after batch, advancing after each 2xx."""
        while True:
            items = await anyio.to_thread.run_sync(self.pending, sub)
            if not items and not report_empty:
                return
            body = json.dumps(self.document(sub, items), ensure_ascii=False).encode()
            headers = {"content-type": "application/ld+json"}
            if sub.body.get("signatureToken"):
                headers["GS1-Signature"] = signature(sub.body["signatureToken"], body)
            try:
                answer = await http.post(sub.body["dest"], content=body, headers=headers)
            except httpx.HTTPError as exc:
                raise _Refused(f"{sub.body['dest']} unreachable ({type(exc).__name__})") from None
            if not 200 <= answer.status_code < 300:
                raise _Refused(f"{sub.body['dest']} answered {answer.status_code}")
            position = items[-1].log_index if items else sub.record.position
            sub = await anyio.to_thread.run_sync(self.acknowledge, sub, position)
            if len(items) < BATCH:
                return
            report_empty = False

    async def stream(
        self,
        sub: Subscription,
        send: Callable[[dict[str, Any]], Awaitable[None]],
        acked: Callable[[], Awaitable[int]],
        closed: asyncio.Event,
    ) -> None:
        """Deliver `sub` over a WebSocket: one document in flight, the next only after the
        client acknowledges the position of the last (`acked`)."""
        scheduled = sub.body.get("schedule") is not None
        while not closed.is_set():
            height = self.node.height
            if scheduled:
                await _sleep_or(closed, _seconds_to_next(cron(sub.body["schedule"])))
            items = await anyio.to_thread.run_sync(self.pending, sub)
            if items or (scheduled and sub.body["reportIfEmpty"]):
                doc = self.document(sub, items)
                await send(doc)
                position = await acked()
                sent = doc["epcisBody"]["queryResults"]["parktrace:position"]
                sub = await anyio.to_thread.run_sync(self.acknowledge, sub, min(position, sent))
                continue
            if not scheduled:
                waiting = asyncio.create_task(self.node.wait_beyond(height, 1.0))
                closing = asyncio.create_task(closed.wait())
                await asyncio.wait({waiting, closing}, return_when=asyncio.FIRST_COMPLETED)
                for task in (waiting, closing):
                    task.cancel()


class _Refused(Exception):
    """The subscriber did not take the push; it is retried later."""


def _seconds_to_next(expression: str) -> float:
    now = datetime.now(UTC)
    following = croniter(expression, now, second_at_beginning=False).get_next(datetime)
    return max(0.0, (following - now).total_seconds())


async def _sleep_or(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


def _flat(query: Any) -> dict[str, str]:
    """A named query's definition ({"EQ_bizStep": ["shipping", …], …}) as query parameters."""
    if not isinstance(query, dict):
        raise SubscriptionError("query: an object of EPCIS query parameters")
    flat = {}
    for key, value in query.items():
        if key in ("perPage", "nextPageToken"):
            raise SubscriptionError(f"query.{key}: not part of a query definition")
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str | int | float | bool) for v in values):
            raise SubscriptionError(f"query.{key}: a value or a list of values")
        flat[str(key)] = "|".join(str(v).lower() if isinstance(v, bool) else str(v) for v in values)
    return flat
