"""Receipts: proof that a transaction is in the ledger, checkable offline by anyone who
holds the consortium's genesis file and nothing else.

A receipt is one JSON object:

    {"type": "parktrace.receipt", "version": 1,
     "chain_id": ..., "genesis_hash": ...,
     "transaction": <the signed envelope>,
     "block": {"header": <block header>, "tx_index": i, "tx_proof": [hex, ...]},
     "log":   {"index": n, "proof": [hex, ...]},
     "commit": <commit certificate of the block>,
     "links": [<entry>, ...]}

`tx_proof` is the RFC 6962 audit path of the transaction's leaf in the block's tx_root,
`log.proof` its audit path in the whole-ledger log (root and size are the header's
log_root and log_size). `links` are entries of the same shape (without type, version,
ids or links) for the membership transactions that connect genesis to this one: the
validator-set changes before the block, and the registration of a signer who joined
after genesis (and, recursively, of whoever signed that registration).

`verify_receipt` checks, and says what failed: the envelope is well formed and its
signature verifies with the signer's certificate (from genesis or a verified link), the
certificate was registered before the block and valid at its time, the write policy of
genesis allows the signer's roles this transaction, the leaf is in the block and in the
log at the position the header implies, the header hashes to what the commit
certificate signs, and a quorum of the validator set named by the header (genesis's,
or one a verified link installed) signed it. Every field is checked, so a receipt with
any byte changed fails.

What it cannot know offline: revocations after genesis (unless a link carries them) —
that the signer was not revoked before the block is attested by the quorum that
committed it, not re-checked here — and whether this node later forked (a receipt for
a block some quorum certified is final under the usual < 1/3 Byzantine assumption).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger import codec, merkle
from ledger.block import CommitCertificate, Header
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.identity import Credential, check_issued_by, check_validity, load_certificate
from ledger.membership import ADD_ORG, REVOKE, ROTATE_KEY, SET_VALIDATORS, parse_validator_entry
from ledger.store import Store
from ledger.timefmt import parse_time
from ledger.tx import Transaction
from ledger.validators import ValidatorSet

RECEIPT_TYPE = "parktrace.receipt"
RECEIPT_VERSION = 1
ENTRY_FIELDS = ("transaction", "block", "log", "commit")
RECEIPT_FIELDS = ("type", "version", "chain_id", "genesis_hash", *ENTRY_FIELDS, "links")


class ReceiptError(LedgerError):
    """A receipt that does not prove what it claims; the message says which check failed."""

    code = "bad_receipt"


# -- building (on a node) --------------------------------------------------------------


@dataclass(frozen=True)
class MembershipChange:
    """A committed membership transaction, as the API's index lists it."""

    tx_id: str
    height: int
    log_index: int
    type: str
    certificates: tuple[str, ...]  # fingerprints it registers


def build_entry(store: Store, tx_id: str) -> dict[str, Any] | None:
    """Transaction, inclusion proofs, header and commit certificate; None if not committed."""
    stored = store.tx(tx_id)
    if stored is None:
        return None
    raw = next(store.raw_blocks(stored.height, stored.height), None)
    commit = store.commit(stored.height)
    if raw is None or commit is None:
        raise ReceiptError(f"block {stored.height} of transaction {tx_id[:16]}… is missing")
    header = Header.from_json(json.loads(raw.header))
    # Leaves from the stored canonical bytes: parsing the block's every transaction to
    # prove one was most of a receipt's cost. The receipt is checked where it is used.
    leaves = [merkle.leaf_hash(t.envelope.encode("utf-8")) for t in raw.txs]
    log_proof = store.proofs().inclusion_proof(stored.log_index, header.log_size)
    return {
        "transaction": stored.tx.to_json(),
        "block": {
            "header": header.to_json(),
            "tx_index": stored.position,
            "tx_proof": [h.hex() for h in merkle.inclusion_proof(leaves, stored.position)],
        },
        "log": {"index": stored.log_index, "proof": [h.hex() for h in log_proof]},
        "commit": commit.to_json(),
    }


def build_receipt(
    store: Store, genesis: Genesis, tx_id: str, changes: Sequence[MembershipChange]
) -> dict[str, Any] | None:
    """The receipt of a committed transaction (None if it is not committed).

    `changes`: the membership transactions committed before it, in ledger order.
    """
    entry = build_entry(store, tx_id)
    if entry is None:
        return None
    height = entry["block"]["header"]["height"]
    links: dict[int, str] = {}
    for change in changes:
        if change.type == SET_VALIDATORS and change.height < height:
            links[change.log_index] = change.tx_id
    known = set(genesis.membership().members)
    wanted = [entry["transaction"]["body"]["signer"]]
    while wanted:
        signer = wanted.pop()
        if signer in known:
            continue
        known.add(signer)
        for change in changes:
            if signer in change.certificates and change.type in (ADD_ORG, ROTATE_KEY):
                links[change.log_index] = change.tx_id
                linked = store.tx(change.tx_id)
                if linked is not None:
                    wanted.append(linked.tx.signer)
    link_entries = []
    for _, link_id in sorted(links.items()):
        link = build_entry(store, link_id)
        if link is not None:
            link_entries.append(link)
    return {
        "type": RECEIPT_TYPE,
        "version": RECEIPT_VERSION,
        "chain_id": genesis.chain_id,
        "genesis_hash": genesis.hash,
        **entry,
        "links": link_entries,
    }


# -- verifying (anywhere, offline) ------------------------------------------------------


@dataclass(frozen=True)
class EntryCheck:
    tx: Transaction
    header: Header
    log_index: int
    signer: Credential
    signatures: int
    quorum: int


@dataclass(frozen=True)
class ReceiptCheck:
    """What a verified receipt proves."""

    tx_id: str
    tx_type: str
    signer: str  # "cn@org"
    signer_fingerprint: str
    height: int
    block_time: str
    block_hash: str
    log_index: int
    log_size: int
    log_root: str
    signatures: int
    quorum: int
    links: int
    payload: dict[str, Any] = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "payload"}
        data["ok"] = True
        return data


@dataclass
class _Trust:
    """What the verifier has established so far: validator sets and signer certificates."""

    genesis: Genesis
    sets: list[tuple[int, ValidatorSet]]  # (first height it certifies, set)
    signers: dict[str, tuple[Credential, int, int | None]]  # fp -> (cred, added, revoked)

    @classmethod
    def start(cls, genesis: Genesis) -> _Trust:
        members = genesis.membership().members
        signers = {fp: (m.credential, 0, None) for fp, m in members.items()}
        return cls(genesis, [(1, genesis.validator_set())], signers)

    def validators_for(self, height: int) -> ValidatorSet:
        return [s for first, s in self.sets if first <= height][-1]


def _fail(where: str, message: str) -> ReceiptError:
    return ReceiptError(f"{where}: {message}")


def _object(data: Any, keys: tuple[str, ...], where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _fail(where, "expected an object")
    missing = [k for k in keys if k not in data]
    extra = sorted(set(data) - set(keys))
    if missing or extra:
        detail = "missing " + ", ".join(missing) if missing else "unknown " + ", ".join(extra)
        raise _fail(where, f"fields must be {', '.join(keys)} ({detail})")
    return data


def _index(value: Any, where: str) -> int:
    if type(value) is not int or value < 0:
        raise _fail(where, "expected a non-negative integer")
    return value


def _included(
    leaf: bytes, index: int, size: int, proof: list[bytes], root: str, where: str, what: str
) -> None:
    """Raise a ReceiptError at `where` unless `proof` puts `leaf` at `index` under `root`."""
    try:
        merkle.verify_inclusion(leaf, index, size, proof, bytes.fromhex(root))
    except merkle.ProofError as exc:
        raise _fail(where, f"{what}: {exc}") from exc


def _proof(value: Any, where: str) -> list[bytes]:
    if not isinstance(value, list):
        raise _fail(where, "expected a list of hashes")
    try:
        return [codec.hexdecode(h, field=f"{where}[{i}]", size=32) for i, h in enumerate(value)]
    except LedgerError as exc:
        raise _fail(where, exc.message) from exc


def _check_entry(entry: Any, trust: _Trust, where: str, keys: tuple[str, ...]) -> EntryCheck:
    obj = _object(entry, keys, where)
    chain_id = trust.genesis.chain_id
    block = _object(obj["block"], ("header", "tx_index", "tx_proof"), f"{where}.block")
    log = _object(obj["log"], ("index", "proof"), f"{where}.log")
    try:
        tx = Transaction.from_json(obj["transaction"])
        header = Header.from_json(block["header"])
        commit = CommitCertificate.from_json(obj["commit"])
    except LedgerError as exc:
        raise _fail(where, exc.message) from exc
    if tx.chain_id != chain_id or header.chain_id != chain_id:
        raise _fail(where, f"is not for chain {chain_id!r}")
    position = _index(block["tx_index"], f"{where}.block.tx_index")
    log_index = _index(log["index"], f"{where}.log.index")
    leaf = tx.leaf_hash()
    tx_proof = _proof(block["tx_proof"], f"{where}.block.tx_proof")
    _included(
        leaf,
        position,
        header.tx_count,
        tx_proof,
        header.tx_root,
        f"{where}.block",
        f"transaction is not in block {header.height}",
    )
    if log_index != header.log_size - header.tx_count + position:
        raise _fail(f"{where}.log.index", "does not match the transaction's place in its block")
    log_proof = _proof(log["proof"], f"{where}.log.proof")
    _included(
        leaf,
        log_index,
        header.log_size,
        log_proof,
        header.log_root,
        f"{where}.log",
        "transaction is not in the ledger log",
    )
    signer = _check_signer(tx, header, trust, where)
    validators = trust.validators_for(header.height)
    if header.validators_hash != validators.hash():
        raise _fail(
            f"{where}.block.header",
            f"block {header.height} was certified by validator set "
            f"{header.validators_hash[:16]}…, which this receipt does not link to genesis",
        )
    try:
        commit.verify(validators, chain_id=chain_id, height=header.height, block_hash=header.hash)
    except LedgerError as exc:
        raise _fail(f"{where}.commit", exc.message) from exc
    return EntryCheck(tx, header, log_index, signer, len(commit.signatures), validators.quorum)


def _check_signer(tx: Transaction, header: Header, trust: _Trust, where: str) -> Credential:
    known = trust.signers.get(tx.signer)
    if known is None:
        raise _fail(
            f"{where}.transaction",
            f"signer {tx.signer[:16]}… is not in genesis and no link of this receipt registers it",
        )
    cred, added, revoked = known
    if header.height <= added:
        raise _fail(where, f"signer was registered at height {added}, after this block")
    if revoked is not None and header.height > revoked:
        raise _fail(where, f"signer was revoked at height {revoked}, before this block")
    try:
        tx.verify_signature(cred.public_key)
        check_validity(cred, parse_time(header.time, "header.time"))
        who = f"{cred.common_name}@{cred.org}"
        trust.genesis.policy.check(tx.type, tx.payload, cred.roles, who)
    except LedgerError as exc:
        raise _fail(f"{where}.transaction", exc.message) from exc
    return cred


def _apply_link(check: EntryCheck, trust: _Trust, where: str) -> None:
    """What a verified membership transaction changes for what follows it."""
    tx, height = check.tx, check.header.height
    change = tx.payload.get("change")
    if not isinstance(change, dict):
        raise _fail(where, f"{tx.type} is not a membership change")
    ca = load_certificate(trust.genesis.ca_certificate)
    try:
        if tx.type == SET_VALIDATORS:
            current = trust.sets[-1][1]
            if change.get("previous") != current.hash():
                raise _fail(where, "validator change does not follow the set before it")
            entries = [
                parse_validator_entry(e, f"{where}.change.validators[{i}]")
                for i, e in enumerate(change.get("validators") or [])
            ]
            trust.sets.append((height + 1, ValidatorSet(tuple(v for v, _ in entries))))
        elif tx.type in (ADD_ORG, ROTATE_KEY):
            pems = (
                (change.get("organization") or {}).get("certificates", [])
                if tx.type == ADD_ORG
                else [change.get("new_certificate")]
            )
            for pem in pems:
                cred = Credential.from_pem(pem, f"{where} certificate")
                check_issued_by(cred, ca)
                trust.signers.setdefault(cred.fingerprint, (cred, height, None))
            if tx.type == ROTATE_KEY and change.get("certificate") in trust.signers:
                old, added, _ = trust.signers[change["certificate"]]
                trust.signers[change["certificate"]] = (old, added, height)
        elif tx.type == REVOKE and change.get("certificate") in trust.signers:
            cred, added, _ = trust.signers[change["certificate"]]
            trust.signers[change["certificate"]] = (cred, added, height)
        else:
            raise _fail(where, f"{tx.type} is not a membership change a receipt links")
    except LedgerError as exc:
        if isinstance(exc, ReceiptError):
            raise
        raise _fail(where, exc.message) from exc


def verify_receipt(data: Any, genesis: Genesis) -> ReceiptCheck:
    """Check a receipt against a trusted genesis; ReceiptError says what does not hold."""
    obj = _object(data, RECEIPT_FIELDS, "receipt")
    if obj["type"] != RECEIPT_TYPE or obj["version"] != RECEIPT_VERSION:
        raise _fail("receipt", f"not a {RECEIPT_TYPE} version {RECEIPT_VERSION}")
    if obj["chain_id"] != genesis.chain_id:
        raise _fail("receipt.chain_id", f"receipt is for chain {obj['chain_id']!r}")
    if obj["genesis_hash"] != genesis.hash:
        raise _fail("receipt.genesis_hash", "receipt names another genesis than the one given")
    if not isinstance(obj["links"], list):
        raise _fail("receipt.links", "expected a list")
    trust = _Trust.start(genesis)
    previous = -1
    for i, link in enumerate(obj["links"]):
        where = f"receipt.links[{i}]"
        check = _check_entry(link, trust, where, ENTRY_FIELDS)
        if check.log_index <= previous:
            raise _fail(where, "links are not in ledger order")
        previous = check.log_index
        _apply_link(check, trust, where)
    main = {k: obj[k] for k in ENTRY_FIELDS}
    check = _check_entry(main, trust, "receipt", ENTRY_FIELDS)
    if check.log_index <= previous:
        raise _fail("receipt.links", "a link comes after the transaction it vouches for")
    header = check.header
    return ReceiptCheck(
        tx_id=check.tx.id,
        tx_type=check.tx.type,
        signer=f"{check.signer.common_name}@{check.signer.org}",
        signer_fingerprint=check.tx.signer,
        height=header.height,
        block_time=header.time,
        block_hash=header.hash,
        log_index=check.log_index,
        log_size=header.log_size,
        log_root=header.log_root,
        signatures=check.signatures,
        quorum=check.quorum,
        links=len(obj["links"]),
        payload=check.tx.payload,
    )


def receipt_bytes(receipt: dict[str, Any]) -> bytes:
    """The canonical (RFC 8785) bytes of a receipt: how it is written to a file."""
    return codec.canonical(receipt)
