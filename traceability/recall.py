"""Recalls: the regulator withdraws a lot, and the chain refuses to move or sell what the
lot went into.

A `recall` transaction (the write policy lets only the regulator role record one) carries

    {"lot": <identifier>, "reason": <text>,
     "units": [<identifier>, ...],        optional: more starting points, see below
     "reference": <text>}                 optional: the regulator's file number

**Which units are affected.** Identifiers are compared by their canonical key
(`traceability.identifiers.canonical_key`): the QR code's Digital Link with the lot before
the serial, the short `/01/…/21/…` form, another resolver's host, the EPC URN and the
legacy short names of one unit are one unit, so a recall names each thing once, in any
spelling. The key is a function of the identifier alone, so every node agrees on it.

1. The roots: `lot` and every entry of `units`. `units` exists because the chain cannot
   always link a lot to its units: serialised codes are keyed (api/codes/serials.py), so
   which masks belong to a batch is known to a resolver that holds the batch key, not to
   the ledger. The regulator's tooling, which can open the key, names them.
2. At the recall, everything forward-traceable from the roots over the chain committed
   before it (earlier blocks, and earlier transactions of its own block):
   an AggregationEvent (ADD or OBSERVE) with an affected child makes its parent affected
   (a mask makes its box affected, the box its carton); a TransformationEvent with an
   affected input makes its outputs affected, and so do all events sharing its
   transformationID (roots make powder affected).
3. After the recall, the same two links are followed in every later transaction, in
   ledger order: a carton packed later with an affected box becomes affected too.

Affected stays affected: unpacking a carton does not clear it (whoever unpacks it
records the contents anew if they are sound).

**What is refused.** From the transaction after the recall on (later transactions of its
block, and every block from h + 1), an `epcis.event` naming an affected identifier
(anywhere: epcList, parentID, children, inputs, outputs, quantity classes) with a bizStep
that moves goods on or sells them: staging_outbound, loading, departing, shipping,
transporting, stocking, retail_selling, dispensing. Moving recalled goods back is allowed
when the event says so with disposition `recalled` or `returned`; selling never is.
Everything else (receiving returns, inspecting, holding, destroying) stays allowed.

**Determinism.** The affected set is a function of the chain alone. Mempool admission,
the proposer, every validator and the verifier all judge through `RecallBlock`, started
from the `RecallIndex` after the previous block; only the recall itself reads committed
history, through a `ChainLookup` bounded by height, so a verifier replaying an old block
sees exactly what the validators saw then. The index is an immutable value like
`Membership`: judging a proposal that is never committed changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.errors import NotPermittedError, SchemaError
from ledger.identifiers import MAX_IDENTIFIER, event_identifiers
from ledger.policy import EPCIS_TX_TYPE, normalize_biz_step
from ledger.store import Store
from ledger.store.models import ProductRow, TxRow
from ledger.tx import Transaction
from traceability.identifiers import canonical_key

RECALL_TX_TYPE = "recall"
RECALL_FIELDS = frozenset({"lot", "reason", "units", "reference"})
MAX_REASON = 1000
MAX_REFERENCE = 200
#: Business steps that move goods on: allowed for affected goods only as a return.
MOVING_STEPS = frozenset({"staging_outbound", "loading", "departing", "shipping", "transporting"})
#: Business steps that offer or hand goods to buyers: never allowed for affected goods.
SELLING_STEPS = frozenset({"stocking", "retail_selling", "dispensing"})
RETURN_DISPOSITIONS = frozenset({"recalled", "returned"})
_DISPOSITION_PREFIXES = ("urn:epcglobal:cbv:disp:", "https://ref.gs1.org/cbv/Disp-")
_CHILDREN = ("childEPCs", "childQuantityList")
_INPUTS = ("inputEPCList", "inputQuantityList")
_OUTPUTS = ("outputEPCList", "outputQuantityList")
_LOOKUP_CHUNK = 500


class RecalledError(NotPermittedError):
    """An event would move on or sell goods that a committed recall withdrew."""

    code = "recalled"


#: Committed EPCIS events naming any of `identifiers`, in blocks below `below_height`, in
#: ledger order. What a recall reads of history; `store_lookup` is the real one.
ChainLookup = Callable[[Collection[str], int], Iterable[dict[str, Any]]]


@dataclass(frozen=True)
class Recall:
    """A committed recall, as the index keeps it."""

    tx_id: str
    height: int
    lot: str
    reason: str
    units: tuple[str, ...] = ()
    reference: str | None = None
    signer: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "transaction": self.tx_id,
            "height": self.height,
            "lot": self.lot,
            "reason": self.reason,
            "units": list(self.units),
            "reference": self.reference,
            "signer": self.signer,
        }


def _identifier(value: Any, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_IDENTIFIER:
        raise SchemaError(f"{what}: expected an identifier of 1 to {MAX_IDENTIFIER} characters")
    return value


def parse_recall(payload: Any) -> tuple[str, str, tuple[str, ...], str | None]:
    """(lot, reason, units, reference) of a recall payload; SchemaError naming the field."""
    if not isinstance(payload, dict):
        raise SchemaError("payload: a recall is an object")
    unknown = sorted(set(payload) - RECALL_FIELDS)
    if unknown:
        raise SchemaError(
            f"payload: unknown field(s) {', '.join(unknown)}; a recall has "
            "lot, reason, units (optional) and reference (optional)"
        )
    lot = _identifier(payload.get("lot"), "payload.lot")
    reason = payload.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
        raise SchemaError(f"payload.reason: say why, in 1 to {MAX_REASON} characters")
    units = payload.get("units", [])
    if not isinstance(units, list):
        raise SchemaError("payload.units: expected a list of identifiers")
    parsed = tuple(_identifier(u, f"payload.units[{i}]") for i, u in enumerate(units))
    if len(set(parsed)) != len(parsed):
        raise SchemaError("payload.units: lists an identifier twice")
    reference = payload.get("reference")
    if reference is not None and (
        not isinstance(reference, str) or not 0 < len(reference) <= MAX_REFERENCE
    ):
        raise SchemaError(f"payload.reference: expected 1 to {MAX_REFERENCE} characters")
    return lot, reason, parsed, reference


def _disposition(event: dict[str, Any]) -> str | None:
    value = event.get("disposition")
    if not isinstance(value, str):
        return None
    for prefix in _DISPOSITION_PREFIXES:
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


def _named(event: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    """Canonical keys of the identifiers in the given EPC and quantity lists of an event,
    in order."""
    found: list[str] = []
    for key in keys:
        items = event.get(key)
        for item in items if isinstance(items, list) else ():
            value = item.get("epcClass") if isinstance(item, dict) else item
            if isinstance(value, str) and 0 < len(value) <= MAX_IDENTIFIER:
                found.append(canonical_key(value))
    return found


def event_keys(event: dict[str, Any]) -> set[str]:
    """Canonical keys of everything an event names (objects, classes, parent)."""
    return {canonical_key(i) for i in event_identifiers(event)}


def links(event: dict[str, Any]) -> tuple[list[str], list[str], str | None]:
    """(sources, targets, transformationID): what an event carries forward, as canonical
    keys. An affected source makes every target affected; a transformationID joins
    events into one."""
    kind = event.get("type")
    parent = event.get("parentID")
    if (
        kind == "AggregationEvent"
        and event.get("action") in ("ADD", "OBSERVE")
        and isinstance(parent, str)
        and 0 < len(parent) <= MAX_IDENTIFIER
    ):
        return _named(event, _CHILDREN), [canonical_key(parent)], None
    if kind == "TransformationEvent":
        tid = event.get("transformationID")
        joined = tid if isinstance(tid, str) else None
        return _named(event, _INPUTS), _named(event, _OUTPUTS), joined
    return [], [], None


def _event(tx: Transaction) -> dict[str, Any] | None:
    if tx.type != EPCIS_TX_TYPE:
        return None
    event = tx.payload.get("event")
    return event if isinstance(event, dict) else None


def _refusal(event: dict[str, Any]) -> str | None:
    """The bizStep if recalled goods may not take part in this event, else None."""
    step = event.get("bizStep")
    if not isinstance(step, str):
        return None
    step = normalize_biz_step(step)
    if step in SELLING_STEPS:
        return step
    if step in MOVING_STEPS and _disposition(event) not in RETURN_DISPOSITIONS:
        return step
    return None


def _check(tx: Transaction, affected: Mapping[str, str], recalls: Mapping[str, Recall]) -> None:
    if tx.type == RECALL_TX_TYPE:
        parse_recall(tx.payload)
        return
    if not affected:
        return
    event = _event(tx)
    if event is None:
        return
    step = _refusal(event)
    if step is None:
        return
    for identifier in sorted(event_identifiers(event)):
        key = canonical_key(identifier)
        recall_id = affected.get(key)
        if recall_id is None:
            continue
        recall = recalls[recall_id]
        what = "the lot itself" if key == canonical_key(recall.lot) else f"traced from {recall.lot}"
        hint = (
            "; to bring it back, record the movement with disposition 'recalled' or 'returned'"
            if step in MOVING_STEPS
            else ""
        )
        raise RecalledError(
            f"{identifier} is recalled ({what}) by recall {recall_id[:16]}… at height "
            f"{recall.height}: {recall.reason}; a '{step}' event for recalled goods is "
            f"refused{hint}"
        )


@dataclass(frozen=True)
class RecallIndex:
    """The recalls of the chain after some block: an immutable value, one per block."""

    recalls: Mapping[str, Recall] = field(default_factory=lambda: MappingProxyType({}))
    #: canonical key -> id of the recall that reaches it (the first one)
    affected: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: transformationID -> id of the recall that reached one of its inputs
    tainted: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: transformationID -> every output recorded under it so far (all transformations)
    outputs: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))

    def recall_of(self, identifier: str) -> Recall | None:
        """The recall that makes `identifier` (any spelling) affected, if any."""
        recall_id = self.affected.get(canonical_key(identifier))
        return self.recalls[recall_id] if recall_id is not None else None

    def check(self, tx: Transaction) -> None:
        """Raise RecalledError (or SchemaError for a malformed recall) if `tx` may not
        follow the chain as it is: what admission asks before a transaction is pooled."""
        _check(tx, self.affected, self.recalls)

    def begin(self, height: int, lookup: ChainLookup | None) -> RecallBlock:
        """Judge the transactions of block `height` (never changes this index).
        `lookup` reads the chain below `height`; None: a chain without history to read."""
        return RecallBlock(self, height, lookup)


class RecallBlock:
    """The recall state while one block is judged, transaction by transaction, in order.

    Copy on write: the index it started from is never changed, so a rejected proposal or
    candidate leaves no trace; `result()` is the index after the block.
    """

    def __init__(self, base: RecallIndex, height: int, lookup: ChainLookup | None) -> None:
        self.base = base
        self.height = height
        self.lookup = lookup
        self._recalls: Mapping[str, Recall] = base.recalls
        self._affected: Mapping[str, str] = base.affected
        self._tainted: Mapping[str, str] = base.tainted
        self._outputs: Mapping[str, frozenset[str]] = base.outputs
        self._owned: set[str] = set()
        self._earlier: list[dict[str, Any]] = []  # linking events of this block so far

    def _own(self, name: str) -> dict[str, Any]:
        if name not in self._owned:
            setattr(self, name, dict(getattr(self, name)))
            self._owned.add(name)
        return getattr(self, name)

    def check(self, tx: Transaction) -> None:
        """Raise if `tx` may not come next in this block (nothing changes)."""
        _check(tx, self._affected, self._recalls)

    def recall_of(self, identifier: str) -> Recall | None:
        """The recall that makes `identifier` affected at this point of the block, if any
        (the trust rules refuse every event on it but recall handling)."""
        recall_id = self._affected.get(canonical_key(identifier))
        return self._recalls[recall_id] if recall_id is not None else None

    def apply(self, tx: Transaction) -> None:
        """Take `tx` (already checked) into the state: a recall, or the links it carries."""
        if tx.type == RECALL_TX_TYPE:
            self._record(tx)
            return
        event = _event(tx)
        if event is None:
            return
        sources, targets, tid = links(event)
        if not targets:
            return
        self._earlier.append(event)
        if tid is not None:
            outputs = self._own("_outputs")
            outputs[tid] = outputs.get(tid, frozenset()) | frozenset(targets)
        if self._affected:
            self._carry(sources, targets, tid)

    def result(self) -> RecallIndex:
        """The index after the block (call once, when the block is judged). Only the
        mappings this block changed were copied; the others are shared with the base."""
        if not self._owned:
            return self.base
        fields = ("_recalls", "_affected", "_tainted", "_outputs")
        return RecallIndex(
            *(
                MappingProxyType(getattr(self, name))
                if name in self._owned
                else getattr(self, name)
                for name in fields
            )
        )

    # -- internals ------------------------------------------------------------------------
    def _carry(self, sources: list[str], targets: list[str], tid: str | None) -> list[str]:
        """Mark the targets of one event if a source is affected; return the new ones."""
        via = next((self._affected[s] for s in sources if s in self._affected), None)
        if tid is not None:
            if via is not None and tid not in self._tainted:
                self._own("_tainted")[tid] = via
            via = via or self._tainted.get(tid)
            if via is not None:
                targets = [*targets, *sorted(self._outputs.get(tid, ()))]
        if via is None:
            return []
        added = []
        for target in targets:
            if target not in self._affected:
                self._own("_affected")[target] = via
                added.append(target)
        return added

    def _record(self, tx: Transaction) -> None:
        lot, reason, units, reference = parse_recall(tx.payload)
        recall = Recall(tx.id, self.height, lot, reason, units, reference, tx.signer)
        self._own("_recalls")[tx.id] = recall
        roots = dict.fromkeys(canonical_key(r) for r in (lot, *units))
        frontier = [r for r in roots if r not in self._affected]
        for root in frontier:
            self._own("_affected")[root] = tx.id
        while frontier:
            found = set(frontier)
            events = list(self.lookup(found, self.height)) if self.lookup else []
            events += [e for e in self._earlier if event_keys(e) & found]
            following: list[str] = []
            for event in events:
                following += self._carry(*links(event))
            frontier = following


@dataclass(frozen=True)
class StoreLookup:
    """A ChainLookup over a node's store: the product index, keyed by the canonical key
    (`trace_rules` sees to it), finds the transactions. A value, not a closure, so that a
    node's checkpoint can hold the domain state that refers to it."""

    store: Store

    def __call__(self, identifiers: Collection[str], below_height: int) -> Iterator[dict[str, Any]]:
        wanted = sorted(identifiers)
        rows: dict[int, str] = {}
        with Session(self.store.engine) as session:
            for start in range(0, len(wanted), _LOOKUP_CHUNK):
                chunk = wanted[start : start + _LOOKUP_CHUNK]
                found = session.execute(
                    select(TxRow.log_index, TxRow.envelope)
                    .join(ProductRow, ProductRow.log_index == TxRow.log_index)
                    .where(
                        ProductRow.identifier.in_(chunk),
                        TxRow.height < below_height,
                        TxRow.type == EPCIS_TX_TYPE,
                    )
                )
                rows.update({r[0]: r[1] for r in found})
        for log_index in sorted(rows):
            event = json.loads(rows[log_index])["body"]["payload"].get("event")
            if isinstance(event, dict):
                yield event


def store_lookup(store: Store) -> ChainLookup:
    return StoreLookup(store)
