"""What a node needs to issue codes and answer scans, kept on the app (`app.state.codes`).

`install(app, CodesSettings(...))` sets it up; an app without it gets one from the
environment on first use:

    PARKTRACE_RESOLVER_HOST   host the codes point at        (default id.parktrace.example)
    PARKTRACE_RESOLVER_KEY    resolver key file(s), ':'-separated (none: scans are not
                              checked for authenticity and POST /v1/codes cannot issue)
    PARKTRACE_PARK_PREFIX     the park's GS1 Company Prefix, for park-issued GTINs
    PARKTRACE_SCAN_DB         database of the node's observations not yet on the chain
                              (default: in memory; `node run` keeps it in its data_dir)
    PARKTRACE_SCAN_BATCH_MS   how often a node seals its observations into a
                              transaction (default 1500)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request

from ledger.membership import Membership
from ledger.store import Store
from traceability.claims import store_claims
from traceability.codes.batch import Batch, RecordedBatch, open_key, recorded_batches
from traceability.codes.copies import CopyRules
from traceability.codes.digital_link import DigitalLink
from traceability.codes.gtin import check_prefix
from traceability.codes.issuance import rightful
from traceability.codes.outbox import Outbox
from traceability.codes.sealing import ResolverKey, ResolverPublicKey
from traceability.codes.serials import SerialKey, looks_like_serial

from .pagecache import HeightCache

DEFAULT_HOST = "id.parktrace.example"


def _now() -> datetime:
    return datetime.now(UTC)


def _milliseconds(name: str, default: int) -> int:
    value = os.environ.get(name) or str(default)
    if not value.isdigit() or not 0 < int(value) <= 600_000:
        raise ValueError(f"{name}: expected milliseconds from 1 to 600000, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class CodesSettings:
    resolver_host: str = DEFAULT_HOST
    #: Private keys this node opens batch keys with (newest first); their public halves
    #: are what issuers seal to.
    resolver_keys: tuple[ResolverKey, ...] = ()
    park_prefix: str | None = None
    #: The node's outbox of observations not yet committed (None: in memory).
    scan_log_url: str | None = None
    #: Seconds between the node's batches of observations.
    scan_batch_seconds: float = 1.5
    rules: CopyRules = field(default_factory=CopyRules)
    #: Most codes one request may list or render (ZIP, PDF, JSON pages).
    max_codes_per_request: int = 10_000
    clock: Callable[[], datetime] = _now

    @classmethod
    def from_env(cls) -> CodesSettings:
        keys = tuple(
            ResolverKey.load(Path(p))
            for p in os.environ.get("PARKTRACE_RESOLVER_KEY", "").split(":")
            if p
        )
        prefix = os.environ.get("PARKTRACE_PARK_PREFIX") or None
        return cls(
            resolver_host=os.environ.get("PARKTRACE_RESOLVER_HOST", DEFAULT_HOST),
            resolver_keys=keys,
            park_prefix=check_prefix(prefix) if prefix else None,
            scan_log_url=os.environ.get("PARKTRACE_SCAN_DB") or None,
            scan_batch_seconds=_milliseconds("PARKTRACE_SCAN_BATCH_MS", 1500) / 1000,
        )

    @property
    def public_keys(self) -> list[ResolverPublicKey]:
        return [k.public for k in self.resolver_keys]


@dataclass(frozen=True)
class Authenticity:
    """What the ledger says about a scanned serial."""

    status: str  # genuine | unknown | unverifiable
    batch: RecordedBatch | None = None

    @property
    def genuine(self) -> bool:
        return self.status == "genuine"


class CodesService:
    def __init__(self, settings: CodesSettings) -> None:
        self.settings = settings
        self.outbox = Outbox(settings.scan_log_url)
        #: Consumer pages and their JSON as far as the chain decides them, per height.
        self.pages: HeightCache[Any] = HeightCache()
        self._keys: dict[str, SerialKey | None] = {}
        self._lock = threading.Lock()
        self._last = datetime.min.replace(tzinfo=UTC)

    def close(self) -> None:
        self.outbox.close()

    def now(self) -> datetime:
        return self.settings.clock()

    def stamp(self) -> datetime:
        """The time of a new observation: the clock to the millisecond (the chain's time
        spelling), strictly after this node's previous one, so that its observations
        keep their order even when the clock repeats itself."""
        with self._lock:
            now = self.now()
            moment = now.replace(microsecond=now.microsecond // 1000 * 1000)
            self._last = max(moment, self._last + timedelta(milliseconds=1))
            return self._last

    def serial_key(self, batch: Batch) -> SerialKey | None:
        """The serial key of a recorded batch, if this node holds a resolver key that opens
        it (cached: opening is a public-key operation)."""
        with self._lock:
            if batch.id in self._keys:
                return self._keys[batch.id]
        opened = open_key(batch, self.settings.resolver_keys)
        key = batch.serial_key(opened) if opened is not None else None
        with self._lock:
            self._keys[batch.id] = key
        return key

    def batches(
        self, store: Store, membership: Membership, link: DigitalLink
    ) -> list[RecordedBatch]:
        """The batches of `link`'s lot (or product) whose codes can be genuine: issued by
        the GTIN's owner, first with their id (traceability.codes.issuance). A chain
        written before those were block rules can hold others; they are never shown."""
        identifier = link.lot_id or link.product_id
        claims = store_claims(store)
        return [
            b
            for b in recorded_batches(store, identifier)
            if b.batch.link.gtin == link.gtin and rightful(membership, b, claims)
        ]

    def authenticate(self, store: Store, membership: Membership, link: DigitalLink) -> Authenticity:
        """Whether `link`'s serial is one of its GTIN's rightfully issued codes: first in
        the batches of the lot it names, then in the product's others, so that a genuine
        serial scanned without its lot (or with another lot) is found; the page then
        compares the lot and the data attributes with the batch's."""
        if link.serial is None or not looks_like_serial(link.serial):
            return Authenticity("unknown")
        unchecked = None
        named = self.batches(store, membership, link) if link.lot is not None else []
        product = DigitalLink(link.gtin)
        seen = {b.tx_id for b in named}
        others = [b for b in self.batches(store, membership, product) if b.tx_id not in seen]
        for recorded in named + others:
            key = self.serial_key(recorded.batch)
            if key is None:
                unchecked = unchecked or (
                    recorded if link.lot is None or recorded.tx_id in seen else None
                )
                continue
            if key.index_of(link.serial, recorded.batch.count) is not None:
                return Authenticity("genuine", recorded)
        if unchecked is not None:
            return Authenticity("unverifiable", unchecked)
        return Authenticity("unknown")


def install(app: FastAPI, settings: CodesSettings | None = None) -> CodesService:
    """Give `app` its codes service (replacing any it had)."""
    old = getattr(app.state, "codes", None)
    if old is not None:
        old.close()
    service = CodesService(settings or CodesSettings.from_env())
    app.state.codes = service
    return service


_install_lock = threading.Lock()


async def codes_service(request: Request) -> CodesService:
    """The app's codes service (FastAPI dependency), set up from the environment the
    first time if `install` was not called (on the event loop: the one blocking read of
    the key files; every later request only reads the attribute, without the thread
    pool hop a plain function dependency costs)."""
    state = request.app.state
    service = getattr(state, "codes", None)
    if service is None:
        with _install_lock:
            service = getattr(state, "codes", None) or install(request.app)
    return service
