"""The HTTP API of a node: `create_app(node)` builds it over any NodeCore (the single-process
dev node, or a consortium member's consensus runtime).

Routers live in `api/routes/`, one module per area; a new area (QR codes and the
resolver, the regulator's views) adds its module to `ROUTERS`. Everything a route needs
is in `Services` (`api/services.py`), reached through `svc: Svc`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from ledger.store.local import LocalRecords
from nodes.service import NodeCore
from traceability.epcis.index import EventIndex

from . import docs_pages, errors
from .auth import RequestVerifier
from .edge.body import BodyLimit
from .edge.cors import ResolverCors
from .edge.ratelimit import RateLimit
from .epcis.admission import Admission
from .epcis.capture import CaptureJobs
from .epcis.subscriptions import Subscriptions
from .replay import StoreSeen
from .routes import (
    audit,
    chain,
    codes,
    console,
    epcis,
    epcis_binding,
    gs1resolver,
    places,
    regulator,
    reports,
    resolver,
    transactions,
)
from .services import ApiSettings, Services

if TYPE_CHECKING:
    from fastapi import APIRouter

API_VERSION = "1.0.0"
#: Where the documentation pages' scripts, stylesheet and icon are served.
DOCS_ASSETS = "/docs-assets"


def _routers() -> list[APIRouter]:

    return [
        # The busiest requests first (routes are matched in order): a phone's scan, then
        # the receipt its page verifies.
        resolver.router,
        transactions.router,
        chain.router,
        epcis.router,
        epcis_binding.router,
        codes.router,
        console.router,
        regulator.router,
        reports.router,
        places.router,
        audit.router,
        gs1resolver.router,  # last: its compressed form is one path segment
    ]


DESCRIPTION = """
ParkTrace records supply-chain events of the park's companies on a permissioned
consortium ledger. Producers submit transactions they sign themselves and get receipts
that anyone holding the consortium's genesis file can verify offline; EPCIS 2.0 clients
capture and query events through the GS1 REST binding.

Errors are JSON: `{"error": code, "message": …, "status": …}`, with `field` and `rule`
when a field is at fault. `/capture` requires an HTTP Message Signature (RFC 9421) of a
member certificate; see docs/api.md.
"""


def create_app(node: NodeCore, *, settings: ApiSettings | None = None) -> FastAPI:
    """The API over `node`. Its event index follows the node's store from the first call."""
    settings = settings or ApiSettings()
    for org, identity in settings.capture_signers.items():
        member = node.membership.member(identity.fingerprint)
        if member is None or member.org != org:
            raise ValueError(f"capture signer for {org!r} is not a certificate of {org!r}")
    index = EventIndex(
        node.store, settings.index_url, head=lambda: node.height, recent=node.recent_block
    )
    state = Services(
        node=node,
        settings=settings,
        index=index,
        admission=Admission(node, index),
        verifier=RequestVerifier(
            lambda: node.membership,
            max_age=settings.signature_max_age,
            authorities=settings.authorities,
            seen=StoreSeen(node.store),
        ),
        jobs=CaptureJobs(),
        subscriptions=Subscriptions(node, index, LocalRecords(node.store)),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        jobs = (*settings.background, state.subscriptions.run)
        tasks = [asyncio.create_task(job()) for job in jobs]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # /docs and /redoc load Swagger UI and ReDoc from files of an installed package, not
    # from a CDN: a node in a park's closed network still shows its API documentation.
    app = FastAPIOffline(
        title="ParkTrace API",
        version=API_VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        static_url=DOCS_ASSETS,
    )
    app.state.services = state
    docs_pages.install(app, pages=("/docs", "/redoc"))
    errors.install(app)
    for router in _routers():
        app.include_router(router)
    # The last added runs first: a client over its rate costs nothing more.
    app.add_middleware(ResolverCors)
    app.add_middleware(BodyLimit, limits=settings.limits)
    app.add_middleware(RateLimit, rate=settings.limits.rate, burst=settings.limits.burst)
    return app
