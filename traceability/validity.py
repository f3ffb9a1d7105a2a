"""The domain's half of block validity: what every transaction of a block must be, beyond
the chain's own rules (signatures, membership, write policy; `ledger.validate`).

The node composes the two into one function (`ledger.validate.check_txs` with the rules
built here), and that one function judges a submission, a gossiped transaction, a
proposal and a stored chain (`parktrace verify`). Every rule is decided by the bytes of
the chain alone: no clock, no network, no node-local state, so honest nodes agree.

Per transaction, in order:
1. its payload has the exact shape of its type (`check_shape`): an EPCIS 2.0 event that
   passes GS1's schema and the CBV rules, a recall, a code issuance, a node's batch of
   consumer observations (scans, reports), or a membership change (whose shape the
   ledger's membership rule parses); any other type is refused;
2. it does not move on or sell recalled goods (`traceability.recall`);
3. what it claims is new on the chain (`traceability.claims`): an EPCIS event's eventID,
   unless it declares a recorded event erroneous, by its recorder or the regulator
   (`traceability.epcis.uniqueness`, `.corrections`), and a code issuance's batch id;
4. a code issuance is for a GTIN under a GS1 Company Prefix the signer's organisation
   holds at this height (`traceability.codes.issuance`);
5. consumer observations are signed by a validator node (`traceability.codes.observations`).
6. the trust rules of the rule set in force (genesis `rules`, then `rules.set`;
   `traceability.trust`): registered plots, origin, mass balance, sequence, time and cold
   chain, for goods of the rule set's product classes. Their running totals are the
   block's tallies, which the store writes with it and the verifier recomputes.

Code that runs after a block is decided (the store's product index, the API's event
index, scan and recall bookkeeping) may then rely on these shapes.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from ledger.claims import tx_claims
from ledger.errors import LedgerError, SchemaError
from ledger.genesis import Genesis
from ledger.membership import MEMBERSHIP_TYPES, Membership
from ledger.policy import EPCIS_TX_TYPE
from ledger.store import Store
from ledger.tallies import Tally
from ledger.tx import Transaction

from .claims import BlockClaims, ClaimLookup, PrefetchedClaims, store_claims
from .codes.batch import TX_TYPE as CODES_TX_TYPE
from .codes.batch import parse_payload as parse_batch
from .codes.issuance import check_issue
from .codes.observations import TX_TYPE as SCANS_TX_TYPE
from .codes.observations import check_signer as check_scans_signer
from .codes.observations import parse_payload as parse_observations
from .epcis.records import check_payload as check_event_payload
from .epcis.uniqueness import check_event_id
from .identifiers import PRODUCT_INDEX
from .recall import (
    RECALL_TX_TYPE,
    ChainLookup,
    RecallBlock,
    RecallIndex,
    parse_recall,
    store_lookup,
)
from .trust import TRUST_TYPES, TrustBlock, TrustState, check_trust_shape

log = logging.getLogger("parktrace.rules")

#: The transaction types this domain knows; a payload of any other type is refused.
KNOWN_TYPES = frozenset(
    {
        EPCIS_TX_TYPE,
        RECALL_TX_TYPE,
        CODES_TX_TYPE,
        SCANS_TX_TYPE,
        *MEMBERSHIP_TYPES,
        *TRUST_TYPES,
    }
)
_SHAPE_CACHE = 200_000


class UnjudgeableError(SchemaError):
    """A payload the rules could not judge (a bug in a rule); refused, never committed."""

    code = "schema_error"


class _ShapeVerdicts:
    """Ids of transactions whose payload shape passed: an id is the hash of the signed
    body, payload included, so the verdict is a function of the bytes and can be reused
    by the proposal check after admission instead of parsing the event again."""

    def __init__(self, capacity: int) -> None:
        self._ok: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def __contains__(self, tx_id: str) -> bool:
        return tx_id in self._ok

    def add(self, tx_id: str) -> None:
        self._ok[tx_id] = None
        while len(self._ok) > self._capacity:
            self._ok.popitem(last=False)


_passed = _ShapeVerdicts(_SHAPE_CACHE)


def check_shape(tx: Transaction) -> None:
    """Raise a typed LedgerError unless `tx.payload` is exactly what its type records."""
    if tx.id in _passed:
        return
    try:
        if tx.type == EPCIS_TX_TYPE:
            check_event_payload(tx.payload)
        elif tx.type == RECALL_TX_TYPE:
            parse_recall(tx.payload)
        elif tx.type == CODES_TX_TYPE:
            parse_batch(tx.payload)
        elif tx.type == SCANS_TX_TYPE:
            parse_observations(tx.payload)
        elif tx.type in TRUST_TYPES:
            check_trust_shape(tx)
        elif tx.type not in MEMBERSHIP_TYPES:
            raise SchemaError(f"type: no rules for transaction type {tx.type!r}")
    except LedgerError:
        raise
    except Exception as exc:  # a rule that breaks on odd input must refuse, never crash
        log.error("rule failure judging %s (%s): %r", tx.id, tx.type, exc, exc_info=True)
        raise UnjudgeableError(f"payload: cannot be judged ({type(exc).__name__})") from exc
    _passed.add(tx.id)


@dataclass(frozen=True)
class TraceRules:
    """The domain's state after some block (implements `ledger.validate.DomainRules`)."""

    lookup: ChainLookup | None = None
    recalls: RecallIndex = field(default_factory=RecallIndex)
    #: the chain's eventIDs and batch ids (None: a chain without history to read)
    claims: ClaimLookup | None = None
    #: the trust rules' versions and plots (traceability.trust)
    trust: TrustState = field(default_factory=TrustState)
    #: the running totals the block that led here added (what the store writes with it)
    block_tallies: tuple[Tally, ...] = ()

    def begin(self, height: int, time: str | None = None) -> TraceBlock:
        return TraceBlock(self, height, time)

    def precheck_block(self, store: Store, height: int, txs: tuple[Transaction, ...]) -> Any:
        """What the block's bytes and the chain below it decide, for a verifier's worker
        process to find ahead (`ledger.parallel`): the ids whose payload shape passes, and
        the committed claimants of the claims the block's transactions make."""
        shaped = []
        for tx in txs:
            try:
                check_shape(tx)
            except LedgerError:
                continue
            shaped.append(tx.id)
        keys = {key for tx in txs for key in _claims_of(tx)}
        claimed = dict(store.claimed(keys, height)) if keys and self.claims else {}
        return tuple(shaped), frozenset(keys), claimed

    def prefetch(self, store: Store, height: int, txs: Collection[Transaction]) -> None:
        """Read the committed claimants of the claims `txs` make, in one query, before
        they are judged for block `height` one by one: admitting a batch then costs one
        lookup, not one per transaction. Claims below `height` cannot change until a block
        at `height` commits, which also moves every later check past this prefetch."""
        keys = frozenset(key for tx in txs for key in _claims_of(tx))
        if keys and isinstance(self.claims, PrefetchedClaims):
            self.claims.prefetched(height, keys, store.claimed(keys, height))

    def prechecked(self, height: int, found: Any) -> None:
        """Take what `precheck_block` found in another process for block `height`: a shape
        verdict is a function of the bytes its transaction id is the hash of; the claims
        are what this process's lookup answers for that height."""
        shaped, keys, claimed = found
        for tx_id in shaped:
            _passed.add(tx_id)
        if isinstance(self.claims, PrefetchedClaims):
            self.claims.prefetched(height, keys, claimed)


def _claims_of(tx: Transaction) -> list[bytes]:
    try:
        return list(tx_claims(tx.type, tx.payload))
    except Exception:  # a payload the rules will refuse; the replay says why
        return []


class TraceBlock:
    """The domain rules while block `height` is judged (`ledger.validate.BlockRules`)."""

    def __init__(self, base: TraceRules, height: int, time: str | None = None) -> None:
        self.base = base
        self.height = height
        self.recalls: RecallBlock = base.recalls.begin(height, base.lookup)
        self.claims = BlockClaims(base.claims, height)
        self.trust: TrustBlock = base.trust.begin(height, time)

    def check(self, tx: Transaction, membership: Membership) -> None:
        check_shape(tx)
        self.recalls.check(tx)
        if tx.type == EPCIS_TX_TYPE:
            check_event_id(tx, membership, self.claims)
        elif tx.type == CODES_TX_TYPE:
            check_issue(tx, membership, self.height, self.claims)
        elif tx.type == SCANS_TX_TYPE:
            check_scans_signer(tx, membership)
        try:
            self.trust.check(tx, membership, self.recalls.recall_of)
        except LedgerError:
            raise
        except Exception as exc:  # as in check_shape: a rule that breaks refuses, never crashes
            log.error("trust rule failure judging %s: %r", tx.id, exc, exc_info=True)
            raise UnjudgeableError(f"payload: cannot be judged ({type(exc).__name__})") from exc

    def apply(self, tx: Transaction) -> None:
        self.recalls.apply(tx)
        self.claims.apply(tx)
        self.trust.apply(tx)

    def tallies(self) -> list[Tally]:
        return self.trust.tallies()

    def result(self) -> TraceRules:
        return TraceRules(
            self.base.lookup,
            self.recalls.result(),
            self.base.claims,
            self.trust.result(),
            tuple(self.trust.tallies()),
        )


def trace_rules(store: Store | None, genesis: Genesis | None = None) -> TraceRules:
    """The domain rules of a chain held in `store` (None: a chain without history), whose
    rule set is `genesis`'s (default: the genesis the store is bound to).

    The rules look goods up by their canonical key, so the store's product index is keyed
    by it (a store written by an earlier version is re-keyed here, once)."""
    doc = genesis.to_json() if genesis is not None else (store.genesis_doc() if store else None)
    rules = doc.get("rules") if doc else None
    if store is None:
        return TraceRules(trust=TrustState.from_genesis(rules, None))
    store.use_index(PRODUCT_INDEX)
    return TraceRules(
        store_lookup(store),
        claims=PrefetchedClaims(store_claims(store)),
        trust=TrustState.from_genesis(rules, store.totals),
    )
