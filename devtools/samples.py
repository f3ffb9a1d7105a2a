"""Deterministic sample transactions for demos, tests and benchmarks: ~500-byte EPCIS 2.0
events from the park's three cases, each signed by an organisation allowed to record it."""

from __future__ import annotations

import functools
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.consortium import (
    SAMPLE_CONFIG,
    SAMPLE_SEED,
    Consortium,
    ConsortiumConfig,
    build_consortium,
)
from ledger.tx import Transaction
from traceability.trust import park_rules

#: (organisation, bizStep, GS1 company prefix + item reference, product note)
CASES = (
    ("gannan-orchard-coop", "commissioning", "0690123400001", "赣南脐橙 Gannan navel orange"),
    ("wenshan-growers", "commissioning", "0690456700007", "文山三七 Wenshan notoginseng root"),
    ("ganzhou-mask-factory", "commissioning", "0690789000003", "KN95 口罩 mask batch"),
    ("ganzhou-packing-house", "packing", "0690123400001", "赣南脐橙 5 kg carton"),
    ("cold-chain-logistics", "shipping", "0690123400001", "冷链 cold chain 4 °C"),
    ("testing-centre", "inspecting", "0690456700007", "pesticide residue: pass"),
)


EVENT_ID_NAMESPACE = uuid.UUID("6f1c5d2e-8a3b-4c1d-9e7f-0a2b3c4d5e6f")
EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
EXTENSION_NAMESPACE = "https://ns.parktrace.example/epcis/"


def lot_uri(gtin13: str, lot: str) -> str:
    return f"https://id.parktrace.example/01/0{gtin13}/10/{lot}"


def sample_event(i: int) -> tuple[str, dict[str, Any]]:
    """The i-th sample event and the organisation that records it."""
    org, step, gtin, note = CASES[i % len(CASES)]
    lot = f"L{2026_11_00 + i // len(CASES)}"
    event = {
        "@context": [EPCIS_CONTEXT, {"ex": EXTENSION_NAMESPACE}],
        "type": "ObjectEvent",
        "eventID": f"urn:uuid:{uuid.uuid5(EVENT_ID_NAMESPACE, f'{org}/{i}')}",
        "eventTime": f"2026-11-{1 + i % 28:02d}T08:{i % 60:02d}:00.000+08:00",
        "eventTimeZoneOffset": "+08:00",
        "epcList": [],
        "quantityList": [{"epcClass": lot_uri(gtin, lot), "quantity": 120 + i % 7, "uom": "KGM"}],
        "action": "OBSERVE" if step not in ("commissioning",) else "ADD",
        "bizStep": step,
        "disposition": "in_progress" if step != "inspecting" else "conformant",
        "readPoint": {"id": f"urn:epc:id:sgln:{gtin[:7]}.{i % 97:05d}.0"},
        "bizLocation": {"id": f"urn:epc:id:sgln:{gtin[:7]}.00001.0"},
        "ex:note": note,
    }
    return org, {"event": event}


def sample_event_tx(consortium: Consortium, i: int, timestamp: str | None = None) -> Transaction:
    """Deterministic: the same i gives the same transaction (and id)."""
    org, payload = sample_event(i)
    stamp = timestamp or f"2026-11-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000Z"
    return consortium.sign_tx(org, "epcis.event", payload, stamp, nonce=i.to_bytes(16, "big"))


@functools.lru_cache(maxsize=4)
def ruled_consortium(now: datetime | None = None) -> Consortium:
    """The sample consortium (seeded keys) with the park's trust rules in its genesis, as
    `parktrace cluster` and the demo build it."""
    config = replace(ConsortiumConfig.load(SAMPLE_CONFIG), rules=park_rules())
    return build_consortium(config, now or datetime.now(UTC) - timedelta(seconds=1), SAMPLE_SEED)
