"""GS1 event hash IDs (CBV 2.0 section 8.9) for events captured without an eventID,
computed by GS1's reference implementation (`epcis-event-hash-generator`).

The same event content always gets the same ID, so a document captured twice is
recognised as a duplicate instead of being recorded twice.

Two things about the reference implementation are handled here:
  * it keeps the namespace prefixes of every document it has seen in a module global,
    so a hash could depend on what the process hashed before; the global is cleared
    before each document, under a lock (it is not thread-safe either);
  * it resolves JSON-LD contexts through pyld and would fetch unknown ones from the
    network; the loader installed here serves only the standard EPCIS contexts it
    bundles and refuses every other URL (our validation rejects those anyway);
  * it reads inline contexts as plain prefix maps and fails on term definitions such
    as `{"rail:count": {"@type": "xsd:integer"}}` (GS1's own rail example has them);
    it is given the prefixes only, which is all it uses them for.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from functools import cache
from importlib import resources
from typing import Any

from epcis_event_hash_generator import hash_generator, json_to_py
from pyld import jsonld

from ledger import codec
from traceability.epcis.context import STANDARD_CONTEXTS
from traceability.epcis.problems import EpcisValidationError, Problem

_LOCK = threading.Lock()
#: The standard contexts as the reference implementation bundles them (file per URL); GS1's
#: unversioned URL names the current version, 2.0.0.
_BUNDLED = {
    "https://gs1.github.io/EPCIS/epcis-context.jsonld":
        "14b10c9d3e92d35f577bfc610fe5ec15aa2941124987919389d7cd9998516861.jsonld",
    "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld":
        "e532647e8eb371379b8b0e8602d8981c8566bc60f7351f22c76a5bc865962008.jsonld",
    "https://ref.gs1.org/standards/epcis/epcis-context.jsonld":
        "e532647e8eb371379b8b0e8602d8981c8566bc60f7351f22c76a5bc865962008.jsonld",
}  # fmt: skip


@cache
def _bundled(url: str) -> str:
    package = resources.files("epcis_event_hash_generator")
    return package.joinpath(_BUNDLED[url]).read_text(encoding="utf-8")


def _offline_loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """pyld document loader: the bundled standard contexts, nothing from the network."""
    if url not in STANDARD_CONTEXTS or url not in _BUNDLED:
        raise jsonld.JsonLdError(
            f"context {url} is not available offline",
            "jsonld.LoadDocumentError",
            code="loading document failed",
        )
    return {
        "contentType": "application/ld+json",
        "contextUrl": None,
        "documentUrl": url,
        "document": json.loads(_bundled(url)),
    }


jsonld.set_document_loader(_offline_loader)


def _prefixes_only(context: Any) -> Any:
    """The context with each inline object reduced to its prefix declarations."""
    if isinstance(context, list):
        return [_prefixes_only(entry) for entry in context]
    if isinstance(context, dict):
        kept = {}
        for key, value in context.items():
            if isinstance(value, dict) and isinstance(value.get("@id"), str):
                value = value["@id"]
            if isinstance(value, str) and not key.startswith("@"):
                kept[key] = value
        return kept
    return copy.deepcopy(context)


def event_hash_ids(context: Any, events: list[dict[str, Any]], base: str = "") -> list[str]:
    """The GS1 event hash ID ('ni:///sha-256;…?ver=CBV2.0') of each event, in order.

    `events` are EPCIS events as in a document whose @context is `context`; their own
    eventID, recordTime and @context do not take part in the hash.
    """
    if not events:
        return []
    body = [{k: v for k, v in e.items() if k != "@context"} for e in events]
    document = {
        "@context": _prefixes_only(context),
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2000-01-01T00:00:00Z",
        "epcisBody": {"eventList": copy.deepcopy(body)},
    }
    try:
        with _LOCK:
            json_to_py._namespaces.clear()
            tree = json_to_py.event_list_from_epcis_document_json(document)
            prehashes = hash_generator.derive_prehashes_from_events(tree)
    except Exception as exc:  # the reference code raises anything; say which rule failed
        raise EpcisValidationError(
            [Problem(base or "(document)", "event-hash-id", f"cannot compute the hash: {exc}")]
        ) from exc
    if len(prehashes) != len(events):
        # It skips events it cannot process; find one to name it.
        if len(events) > 1:
            for i, event in enumerate(events):
                event_hash_ids(context, [event], f"{base}[{i}]")
        raise EpcisValidationError(
            [
                Problem(
                    base or "(document)", "event-hash-id", "the GS1 event hash cannot be computed"
                )
            ]
        )
    return hash_generator.calculate_hashes_from_pre_hashes(prehashes)


#: Namespace of the name-based UUIDs given to events the reference code cannot hash.
FALLBACK_NAMESPACE = uuid.UUID("6f1d6a8e-3c1b-5b7e-9a5e-7061726b7472")


def fallback_event_id(context: Any, event: dict[str, Any]) -> str:
    """A deterministic eventID for an event GS1's reference implementation fails on
    (it crashes, for instance, on a bizTransaction without a type, which EPCIS allows).

    The EPCIS REST binding asks for "a unique value"; a name-based UUID over the
    canonical event content is one, and the same content still gets the same ID.
    """
    content = {k: v for k, v in event.items() if k not in ("eventID", "recordTime", "@context")}
    name = codec.canonical({"@context": context, "event": content}).decode("utf-8")
    return f"urn:uuid:{uuid.uuid5(FALLBACK_NAMESPACE, name)}"


def assign_event_ids(context: Any, events: list[dict[str, Any]]) -> list[str]:
    """The GS1 event hash ID of each event, or its fallback ID where there is none."""
    try:
        return event_hash_ids(context, events)
    except EpcisValidationError:
        ids = []
        for event in events:
            try:
                ids.append(event_hash_ids(context, [event])[0])
            except EpcisValidationError:
                ids.append(fallback_event_id(context, event))
        return ids
