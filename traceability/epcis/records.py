"""The payload of an "epcis.event" transaction: `{"event": <EPCIS 2.0 event>}`, the event
self-contained (its own @context) and checked by the same rules as a captured one.

The node applies these checks when it admits a transaction through the API, so an event
signed elsewhere (by the SDK, or by hand) meets the same standard as one captured here.
"""

from __future__ import annotations

from typing import Any

from ledger.policy import EPCIS_TX_TYPE
from ledger.tx import Transaction
from traceability.epcis.context import parse_context
from traceability.epcis.document import prefer_rules
from traceability.epcis.hashid import assign_event_ids
from traceability.epcis.problems import EpcisValidationError, Problem
from traceability.epcis.rules import event_problems
from traceability.epcis.schema import schema_problems

__all__ = ["EPCIS_TX_TYPE", "check_payload", "event_id_of", "event_of", "payload_for"]


def payload_for(event: dict[str, Any]) -> dict[str, Any]:
    return {"event": event}


def check_payload(payload: Any, base: str = "payload") -> dict[str, Any]:
    """The event of a valid payload; EpcisValidationError naming the field otherwise."""
    if not isinstance(payload, dict) or set(payload) != {"event"}:
        raise EpcisValidationError(
            [Problem(base, "epcis-payload", 'an epcis.event payload is exactly {"event": {...}}')]
        )
    event = payload["event"]
    path = f"{base}.event"
    if not isinstance(event, dict):
        raise EpcisValidationError([Problem(path, "schema:type", "expected an EPCIS event object")])
    if "@context" not in event:
        raise EpcisValidationError(
            [
                Problem(
                    f"{path}.@context",
                    "self-contained-event",
                    "a recorded event carries its @context (the EPCIS 2.0 context and the "
                    "namespaces of its extensions)",
                )
            ]
        )
    problems = schema_problems(event, path)
    context, context_problems = parse_context(event["@context"], f"{path}.@context")
    rules = context_problems + event_problems(event, context, path, ledger_form=True)
    problems = prefer_rules(problems, rules)
    if problems:
        raise EpcisValidationError(problems)
    return event


def event_of(tx: Transaction) -> dict[str, Any] | None:
    """The EPCIS event a transaction records, if it records one."""
    if tx.type != EPCIS_TX_TYPE:
        return None
    event = tx.payload.get("event")
    return event if isinstance(event, dict) else None


def event_id_of(event: dict[str, Any]) -> str:
    """The event's eventID, or its GS1 hash ID when it has none (for duplicate checks)."""
    given = event.get("eventID")
    if isinstance(given, str):
        return given
    return assign_event_ids(event.get("@context"), [event])[0]
