"""Malformed transactions are rejected with a specific error type naming the problem."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from ledger import codec
from ledger.crypto import PrivateKey
from ledger.errors import (
    DomainError,
    EncodingError,
    LedgerError,
    SchemaError,
    SchemeError,
    SignatureError,
    TooLargeError,
)
from ledger.tx import MAX_TX_BYTES, Transaction

KEY = PrivateKey.from_seed(bytes(32))


def make(**overrides: Any) -> Transaction:
    fields: dict[str, Any] = {
        "chain_id": "test-chain",
        "type": "epcis.event",
        "payload": {"event": {"type": "ObjectEvent", "bizStep": "harvesting"}},
        "signer": "0f" * 32,
        "timestamp": "2026-11-22T04:00:00.000Z",
        "nonce": bytes(16),
    }
    fields.update(overrides)
    return Transaction.create(KEY, **fields)


def mutate(path: list[str], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(make().to_json())
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


_DELETE = object()


def test_roundtrip_and_id() -> None:
    tx = make()
    again = Transaction.parse(json.dumps(tx.to_json()))
    assert again == tx
    assert again.id == tx.id
    tx.verify_signature(KEY.public_key)
    assert make(nonce=b"\x01" * 16).id != tx.id


@pytest.mark.parametrize(
    ("path", "value", "error", "message"),
    [
        (
            ["signature", "value"],
            "@@not-base64@@",
            EncodingError,
            "signature.value: not valid base64",
        ),
        (["body", "nonce"], "AAAA", EncodingError, "body.nonce: expected 16 bytes"),
        (["body", "nonce"], 5, EncodingError, "body.nonce: expected a base64 string"),
        (["body", "height"], 5, SchemaError, "unknown field(s) height"),
        (["body", "payload"], [1, 2], SchemaError, "body.payload: expected an object"),
        (["body", "chain_id"], 7, SchemaError, "body.chain_id: expected a string"),
        (["body", "signer"], "alice", SchemaError, "certificate fingerprint"),
        (["body", "timestamp"], "yesterday", SchemaError, "body.timestamp"),
        (["body", "timestamp"], "2026-11-22T04:00:00Z", SchemaError, "body.timestamp"),
        (["body", "type"], "Drop Table", SchemaError, "body.type"),
        (["body", "type"], _DELETE, SchemaError, "missing field(s) type"),
        (["signature", "scheme"], "rsa-pkcs1", SchemeError, "unknown signature scheme 'rsa-pkcs1'"),
        (["signature"], "abc", SchemaError, "signature: expected an object"),
    ],
)
def test_malformed_fields(path: list[str], value: Any, error: type, message: str) -> None:
    with pytest.raises(error) as info:
        Transaction.from_json(mutate(path, value))
    assert message in str(info.value)
    assert isinstance(info.value, LedgerError)
    assert info.value.to_dict()["error"] == error.code


def test_not_json_and_not_object() -> None:
    with pytest.raises(EncodingError, match="not valid JSON"):
        Transaction.parse(b"{nope")
    with pytest.raises(SchemaError, match="transaction: expected an object"):
        Transaction.parse(b"[1]")


def test_oversized() -> None:
    with pytest.raises(TooLargeError, match="limit is"):
        make(payload={"blob": "x" * MAX_TX_BYTES})
    with pytest.raises(TooLargeError):
        Transaction.parse(b" " * (MAX_TX_BYTES * 2 + 1))


def test_bad_signature() -> None:
    data = make().to_json()
    data["body"]["payload"]["event"]["bizStep"] = "shipping"  # altered after signing
    tx = Transaction.from_json(data)
    with pytest.raises(SignatureError, match="does not verify"):
        tx.verify_signature(KEY.public_key)
    with pytest.raises(SignatureError):
        make().verify_signature(PrivateKey.from_seed(b"\x01" * 32).public_key)


def test_wrong_domain() -> None:
    """A signature over the same body as another kind (a vote) never verifies as a tx."""
    tx = make()
    forged_sig = KEY.sign(codec.domain_bytes("vote", tx.body()))
    data = tx.to_json()
    data["signature"]["value"] = codec.b64encode(forged_sig)
    with pytest.raises(DomainError, match="made for a 'vote', not for a transaction"):
        Transaction.from_json(data).verify_signature(KEY.public_key)
    with pytest.raises(DomainError, match="unknown signing domain"):
        codec.domain_bytes("transaction", tx.body())


def test_from_canonical_takes_only_the_canonical_bytes() -> None:
    tx = make(payload={"event": {"type": "ObjectEvent", "note": "文山三七 \U0001f34a", "n": 3}})
    raw = tx.canonical()
    assert Transaction.from_canonical(raw) == tx
    for other in (
        json.dumps(tx.to_json()).encode(),  # spaces and \u escapes: the same value
        raw.replace(b'"n":3', b'"n":3.0'),
        raw + b" ",
    ):
        with pytest.raises(EncodingError):
            Transaction.from_canonical(other)
