"""What a transaction claims once for the whole chain: an EPCIS eventID, a batch id of
serialised codes. The store indexes the claims of every committed transaction (`claims`
table), so the domain's uniqueness rules are index lookups bounded by height, and the
verifier checks the index against the blocks like the product index.

A claim is the SHA-256 of its kind and value: fixed-size keys, whatever the length of an
eventID URI. An EPCIS event carrying `errorDeclaration` repeats the eventID of the event
it declares erroneous (EPCIS 2.0 §7.4.1.4), so it claims the declaration, not the event.

Like the product index, this runs after a block is decided: it never raises, and skips
what does not have the expected shape.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .policy import EPCIS_TX_TYPE

CODES_TX_TYPE = "codes.issue"
EVENT = "event"
ERROR_DECLARATION = "event-error"
BATCH = "batch"


def claim(kind: str, value: str) -> bytes:
    """The index key of one claim."""
    return hashlib.sha256(f"{kind}\n{value}".encode()).digest()


def event_claim(event: dict[str, Any], event_id: str) -> bytes:
    """The claim of an event with this eventID: the event itself, or its error declaration."""
    kind = ERROR_DECLARATION if "errorDeclaration" in event else EVENT
    return claim(kind, event_id)


def tx_claims(tx_type: str, payload: Any) -> set[bytes]:
    """The claims of one transaction (an explicit eventID, a batch id), if any."""
    if not isinstance(payload, dict):
        return set()
    if tx_type == EPCIS_TX_TYPE:
        event = payload.get("event")
        event_id = event.get("eventID") if isinstance(event, dict) else None
        if isinstance(event, dict) and isinstance(event_id, str) and event_id:
            return {event_claim(event, event_id)}
    elif tx_type == CODES_TX_TYPE:
        batch = payload.get("batch")
        if isinstance(batch, str) and batch:
            return {claim(BATCH, batch)}
    return set()
