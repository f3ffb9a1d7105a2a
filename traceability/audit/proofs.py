"""Proofs a regulator takes away and checks offline with nothing but the genesis file:
receipts of transactions (api.receipts) and consistency proofs between two ledger sizes.

A consistency proof shows the ledger only grew between two blocks: the RFC 6962 log of
block `second` extends the log of block `first`, so nothing committed by `first` was
rewritten or dropped. It is one JSON object:

    {"type": "parktrace.consistency", "version": 1, "chain_id", "genesis_hash",
     "first":  {"header": <block header>, "commit": <its commit certificate>},
     "second": {"header": …, "commit": …},
     "proof": [hex, …],                       RFC 9162 PROOF(size1, D[size2])
     "links": [<receipt>, …]}                 validator-set changes up to `second`

`verify_consistency_proof` checks that both headers are certified by a quorum of the
validator set they name (genesis's, or one installed by a linked, verified receipt of a
`membership.set_validators` transaction), that `first` comes before `second`, and that
the proof leads from the first header's (log_size, log_root) to the second's. Two
histories that differ anywhere in the first `log_size` transactions cannot both pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger import codec, merkle
from ledger.block import CommitCertificate, Header
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.membership import SET_VALIDATORS, parse_validator_entry
from ledger.store import Store
from ledger.validators import ValidatorSet
from traceability.epcis.index import EventIndex
from traceability.errors import InvalidRequestError, NotFoundError
from traceability.receipts import ReceiptError, build_receipt, verify_receipt

CONSISTENCY_TYPE = "parktrace.consistency"
VERSION = 1
FIELDS = ("type", "version", "chain_id", "genesis_hash", "first", "second", "proof", "links")


class ProofError(LedgerError):
    """A consistency proof that does not prove what it claims; the message says why."""

    code = "bad_proof"


def receipt(store: Store, genesis: Genesis, index: EventIndex, tx_id: str) -> dict[str, Any]:
    stored = store.tx(tx_id)
    if stored is None:
        raise NotFoundError(f"transaction {tx_id} is not committed on this node")
    changes = index.membership_changes(stored.height)
    built = build_receipt(store, genesis, tx_id, changes)
    assert built is not None
    return built


def consistency_proof(
    store: Store, genesis: Genesis, index: EventIndex, first: int, second: int
) -> dict[str, Any]:
    """The consistency proof between blocks `first` and `second` (first <= second)."""
    head = store.height()
    if not 1 <= first <= second <= head:
        raise InvalidRequestError(
            f"heights must satisfy 1 <= first <= second <= {head} (this node's head); "
            f"got first={first}, second={second}",
        )
    ends = []
    for height in (first, second):
        header, commit = store.header(height), store.commit(height)
        if header is None or commit is None:
            raise NotFoundError(f"block {height} is missing from this node's store")
        ends.append((header, commit))
    size1, size2 = ends[0][0].log_size, ends[1][0].log_size
    if size1 == 0:
        raise InvalidRequestError(
            f"the ledger log is empty at block {first}: nothing to prove; choose a first "
            "block after the first transaction",
        )
    proof = store.proofs().consistency_proof(size1, size2) if size1 != size2 else []
    links = [
        build_receipt(store, genesis, change.tx_id, index.membership_changes(change.height))
        for change in index.membership_changes(second)
        if change.type == SET_VALIDATORS
    ]
    return {
        "type": CONSISTENCY_TYPE,
        "version": VERSION,
        "chain_id": genesis.chain_id,
        "genesis_hash": genesis.hash,
        "first": {"header": ends[0][0].to_json(), "commit": ends[0][1].to_json()},
        "second": {"header": ends[1][0].to_json(), "commit": ends[1][1].to_json()},
        "proof": [h.hex() for h in proof],
        "links": links,
    }


@dataclass(frozen=True)
class ConsistencyCheck:
    first_height: int
    second_height: int
    first_size: int
    second_size: int
    first_root: str
    second_root: str
    first_hash: str
    second_hash: str

    def to_json(self) -> dict[str, Any]:
        return {"ok": True, **self.__dict__}


def _fail(where: str, message: str) -> ProofError:
    return ProofError(f"{where}: {message}")


def _validator_sets(links: Any, genesis: Genesis) -> list[tuple[int, ValidatorSet]]:
    """(first height certified, set), from genesis and each verified validator change."""
    if not isinstance(links, list):
        raise _fail("proof.links", "expected a list of receipts")
    sets = [(1, genesis.validator_set())]
    for i, link in enumerate(links):
        where = f"proof.links[{i}]"
        try:
            check = verify_receipt(link, genesis)
        except ReceiptError as exc:
            raise _fail(where, exc.message) from exc
        change = check.payload.get("change") if isinstance(check.payload, dict) else None
        if check.tx_type != SET_VALIDATORS or not isinstance(change, dict):
            raise _fail(where, "is not a receipt of a membership.set_validators transaction")
        if change.get("previous") != sets[-1][1].hash() or check.height < sets[-1][0] - 1:
            raise _fail(where, "this validator change does not follow the set before it")
        try:
            entries = [
                parse_validator_entry(e, f"{where}.change.validators[{n}]")
                for n, e in enumerate(change.get("validators") or [])
            ]
        except LedgerError as exc:
            raise _fail(where, exc.message) from exc
        sets.append((check.height + 1, ValidatorSet(tuple(v for v, _ in entries))))
    return sets


def _certified(end: Any, name: str, genesis: Genesis, sets: list) -> Header:
    where = f"proof.{name}"
    if not isinstance(end, dict) or set(end) != {"header", "commit"}:
        raise _fail(where, "expected {header, commit}")
    try:
        header = Header.from_json(end["header"])
        commit = CommitCertificate.from_json(end["commit"])
    except LedgerError as exc:
        raise _fail(where, exc.message) from exc
    if header.chain_id != genesis.chain_id:
        raise _fail(where, f"block of chain {header.chain_id!r}, not {genesis.chain_id!r}")
    validators = [s for first, s in sets if first <= header.height][-1]
    if header.validators_hash != validators.hash():
        raise _fail(
            where,
            f"block {header.height} names validator set {header.validators_hash[:16]}…, "
            "which this proof does not link to genesis",
        )
    try:
        commit.verify(
            validators, chain_id=genesis.chain_id, height=header.height, block_hash=header.hash
        )
    except LedgerError as exc:
        raise _fail(where, f"block {header.height} is not certified: {exc.message}") from exc
    return header


def verify_consistency_proof(data: Any, genesis: Genesis) -> ConsistencyCheck:
    """Check a consistency proof offline against a trusted genesis; ProofError says why not."""
    if not isinstance(data, dict) or set(data) != set(FIELDS):
        raise _fail("proof", f"fields must be {', '.join(FIELDS)}")
    if data["type"] != CONSISTENCY_TYPE or data["version"] != VERSION:
        raise _fail("proof", f"not a {CONSISTENCY_TYPE} version {VERSION}")
    if data["chain_id"] != genesis.chain_id or data["genesis_hash"] != genesis.hash:
        raise _fail("proof", "made for another chain or genesis than the one given")
    sets = _validator_sets(data["links"], genesis)
    first = _certified(data["first"], "first", genesis, sets)
    second = _certified(data["second"], "second", genesis, sets)
    if first.height > second.height:
        raise _fail("proof", f"first block {first.height} comes after second {second.height}")
    if not isinstance(data["proof"], list):
        raise _fail("proof.proof", "expected a list of hashes")
    try:
        path = [
            codec.hexdecode(h, field=f"proof.proof[{i}]", size=32)
            for i, h in enumerate(data["proof"])
        ]
        merkle.verify_consistency(
            first.log_size,
            second.log_size,
            bytes.fromhex(first.log_root),
            bytes.fromhex(second.log_root),
            path,
        )
    except (LedgerError, merkle.ProofError) as exc:
        message = getattr(exc, "message", str(exc))
        raise _fail(
            "proof",
            f"the log of block {second.height} does not extend the log of block "
            f"{first.height}: {message}",
        ) from exc
    return ConsistencyCheck(
        first.height,
        second.height,
        first.log_size,
        second.log_size,
        first.log_root,
        second.log_root,
        first.hash,
        second.hash,
    )
