"""What the top of the consumer page says, worked out from the journey: the one verdict
box, where the goods come from, the few steps worth a glance, and the ledger proof rows.

A shopper decides in a few seconds; the full journey and the proof stay below, folded.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from traceability.audit.recall_status import RecallInfo
from traceability.codes import CodeError
from traceability.codes.copies import Verdict
from traceability.codes.digital_link import parse_uri
from traceability.codes.journey import Journey, Step

#: At most this many steps in the summary (the first, the last and the telling ones).
KEY_STEPS = 5
#: Kinds that tell a shopper most, in the order they are picked after the first step.
_TELLING = ("harvest", "inspection", "processing", "shipping", "packing")


def verdict_of(
    status: str, recall: RecallInfo | None, verdict: Verdict | None, *, altered: bool = False
) -> str:
    """The one verdict the page leads with: a recall outranks everything, a sign of
    copying outranks a genuine code, and so does a label whose lot or dates differ from
    what the batch recorded (its values are never shown as the product's)."""
    if recall is not None:
        return "recalled"
    if verdict is not None and verdict.suspicious:
        return "copied"
    if altered:
        return "altered"
    return status


def origin_of(journey: Journey | None) -> Step | None:
    """The first step that says where it happened: the plot, farm or factory (a step
    declared erroneous says nothing)."""
    for step in journey.steps if journey else ():
        if (step.region or step.place) and step.withdrawn is None:
            return step
    return None


def key_steps(journey: Journey | None) -> list[Step]:
    """Three to five steps in the order they happened: the first, the last, and between
    them one of each telling kind (harvest, inspection, …) until there are five; none
    declared erroneous."""
    steps = [s for s in journey.steps if s.kind != "codes" and not s.withdrawn] if journey else []
    if len(steps) <= 3:
        return steps
    chosen = {0, len(steps) - 1}
    for kind in _TELLING:
        if len(chosen) >= KEY_STEPS:
            break
        index = next((i for i, s in enumerate(steps) if s.kind == kind and i not in chosen), None)
        if index is not None:
            chosen.add(index)
    for i in range(len(steps)):  # fewer telling kinds than slots: fill in order
        if len(chosen) >= 3:
            break
        chosen.add(i)
    return [steps[i] for i in sorted(chosen)]


@dataclass(frozen=True)
class RecallView:
    """A recall as the page says it: who recalled which lot, why, in which block."""

    regulator: dict[str, str] | str
    lot: str
    reason: str
    height: int
    time: str | None


def recall_view(info: RecallInfo | None, fallback_lot: str | None) -> RecallView | None:
    if info is None:
        return None
    lot = fallback_lot or info.recall.lot
    with contextlib.suppress(CodeError):
        lot = parse_uri(info.recall.lot).lot or lot
    recall = info.recall
    return RecallView(
        info.regulator_name or info.regulator, lot, recall.reason, recall.height, info.time
    )


def proof_rows(journey: Journey | None) -> list[dict[str, Any]]:
    """One row a step for the 区块链存证 section: block, signing organisation, receipt."""
    steps = journey.steps if journey else []
    return [
        {
            "kind": s.kind,
            "height": s.height,
            "org": s.party.name,
            "org_id": s.party.org,
            "tx": s.tx_id,
            "recorded": s.record_time,
        }
        for s in steps
    ]
