"""What every route is given: the node, the API's settings and the services built once in
`create_app`. Routes declare `svc: Svc`; they never reach the app module itself, so the
app imports its routes and nothing imports the app back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from ledger.genesis import Genesis
from nodes.config import ApiLimits
from nodes.service import NodeCore
from sdk.signing import Identity
from traceability.epcis.index import EventIndex

from .auth import RequestVerifier
from .epcis.admission import Admission
from .epcis.capture import CaptureJobs
from .epcis.subscriptions import Subscriptions
from .receiptcache import FixedAnswers


@dataclass(frozen=True)
class ApiSettings:
    #: Longest a client may block on `?wait=` (seconds).
    max_wait: float = 60.0
    #: Most transactions in one batch submission.
    max_batch: int = 1000
    #: What one client may cost (body sizes, request rate; connections are the server's).
    limits: ApiLimits = field(default_factory=ApiLimits)
    #: Database of the event index (derived, rebuilt from the chain); None = in memory.
    index_url: str | None = None
    #: Organisation id -> identity this node signs `/capture`d events with, for EPCIS
    #: clients that authenticate with HTTP message signatures but do not sign
    #: transactions themselves (a delegated certificate of that organisation).
    capture_signers: Mapping[str, Identity] = field(default_factory=dict)
    #: Age limit of an RFC 9421 request signature (seconds).
    signature_max_age: int = 300
    #: The `@authority` values a request signature must name: this node's listen address
    #: and public URLs (api.authorities.own_authorities). `node run` and `serve` always
    #: set them; None accepts any (an app under a test client has no address).
    authorities: frozenset[str] | None = None
    #: Coroutines run for the app's lifetime (e.g. the dev node's block production).
    background: tuple[Callable[[], Awaitable[None]], ...] = ()


@dataclass
class Services:
    node: NodeCore
    settings: ApiSettings
    index: EventIndex
    admission: Admission
    verifier: RequestVerifier
    jobs: CaptureJobs
    subscriptions: Subscriptions
    #: Transaction answers that can no longer change (api.receiptcache).
    fixed: FixedAnswers = field(default_factory=FixedAnswers)

    @property
    def genesis(self) -> Genesis:
        return self.node.genesis


async def services(request: Request) -> Services:
    """The app's services (FastAPI dependency). A coroutine, as it only reads an
    attribute: FastAPI runs a plain function dependency in the thread pool, a hop per
    request that cost a resolver lookup about as much as the lookup itself."""
    return request.app.state.services


#: What a route declares to get the services: `svc: Svc`.
Svc = Annotated[Services, Depends(services)]
