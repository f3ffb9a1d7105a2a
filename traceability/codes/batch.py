"""One issued batch of serialised codes, as one `codes.issue` transaction on the ledger.

The payload is a few hundred bytes whatever the count: the product and lot (indexed by
the store, so the resolver finds a lot's batches with one lookup), the count, the serial
scheme, a commitment to the batch key and the key sealed to each resolver key. The
serials themselves are never listed: they follow from the key (api.codes.serials).

    {"version": 1, "batch": "<32 hex>", "gtin": "<GTIN-14>", "lotNumber": "<lot>",
     "product": "https://id.gs1.org/01/<GTIN>", "lot": "https://id.gs1.org/01/<GTIN>/10/<lot>",
     "count": N, "serials": "siv-hmac-sha256-56/crockford32-16",
     "keyCommitment": "<64 hex>", "sealedKeys": [{"key": "<16 hex>", "box": "<base64>"}],
     "attributes": {"7007": "261103"}, "names": {"en": "…", "zh": "…"},
     "resolver": "<host the codes point at>"}
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.claims import CODES_TX_TYPE
from ledger.store import Store
from ledger.store.store import StoredTx
from traceability.codes import CodeError
from traceability.codes.attributes import check_attributes
from traceability.codes.digital_link import DigitalLink, build, encode_value
from traceability.codes.sealing import ResolverKey, ResolverPublicKey, commitment
from traceability.codes.serials import KEY_BYTES, MAX_COUNT, SERIAL_SCHEME, SerialKey

TX_TYPE = CODES_TX_TYPE
VERSION = 1
FIELDS = {
    "version",
    "batch",
    "gtin",
    "lotNumber",
    "product",
    "lot",
    "count",
    "serials",
    "keyCommitment",
    "sealedKeys",
    "attributes",
    "names",
    "resolver",
}
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
#: Where the codes point: a host (https implied) or a base URL with its scheme.
_HOST = re.compile(r"^(https?://)?[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:\d{1,5})?$")
MAX_NAME = 120


@dataclass(frozen=True)
class Batch:
    id: str
    link: DigitalLink  # lot level, with the batch's data attributes
    count: int
    key_commitment: str
    sealed: dict[str, str]  # resolver key id -> sealed batch key
    resolver: str
    names: dict[str, str] = field(default_factory=dict)

    def serial_key(self, batch_key: bytes) -> SerialKey:
        return SerialKey.derive(batch_key, bytes.fromhex(self.id))

    def code(self, serial: str) -> DigitalLink:
        return DigitalLink(self.link.gtin, self.link.lot, serial, attributes=self.link.attributes)

    def codes(self, key: SerialKey, start: int, stop: int) -> Iterator[tuple[int, DigitalLink]]:
        for index in range(max(0, start), min(stop, self.count)):
            yield index, self.code(key.serial(index))

    def payload(self) -> dict[str, Any]:
        link = self.link
        out: dict[str, Any] = {
            "version": VERSION,
            "batch": self.id,
            "gtin": link.gtin,
            "lotNumber": link.lot,
            "product": link.product_id,
            "lot": link.lot_id,
            "count": self.count,
            "serials": SERIAL_SCHEME,
            "keyCommitment": self.key_commitment,
            "sealedKeys": [{"key": k, "box": v} for k, v in sorted(self.sealed.items())],
            "resolver": self.resolver,
        }
        if link.attributes:
            out["attributes"] = dict(link.attributes)
        if self.names:
            out["names"] = dict(self.names)
        return out

    def to_json(self) -> dict[str, Any]:
        """What the API shows of a batch (never a key)."""
        return {
            "batch": self.id,
            "gtin": self.link.gtin,
            "lot": self.link.lot,
            "count": self.count,
            "attributes": dict(self.link.attributes),
            "names": dict(self.names),
            "resolver": self.resolver,
            "lotUri": self.link.uri(self.resolver),
            "serials": SERIAL_SCHEME,
            "keyCommitment": self.key_commitment,
            "resolverKeys": sorted(self.sealed),
        }


def check_count(count: Any, field: str = "count") -> int:
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_COUNT:
        raise CodeError(field, "count", f"expected a whole number of codes from 1 to {MAX_COUNT}")
    return count


def check_names(names: Any, field: str = "names") -> dict[str, str]:
    if names is None:
        return {}
    if not isinstance(names, dict) or not set(names) <= {"en", "zh"}:
        raise CodeError(field, "names", 'expected {"en": "…", "zh": "…"} (either or both)')
    for lang, text in names.items():
        if not isinstance(text, str) or not 0 < len(text) <= MAX_NAME:
            raise CodeError(f"{field}.{lang}", "names", f"expected 1 to {MAX_NAME} characters")
    return dict(sorted(names.items()))


def check_host(host: Any, field: str = "resolver") -> str:
    if not isinstance(host, str) or not _HOST.fullmatch(host):
        raise CodeError(
            field,
            "host",
            "expected a lower-case host name such as id.example.com, "
            "or a base URL such as http://192.168.1.20:8601",
        )
    return host


def new_batch(
    link: DigitalLink,
    count: int,
    resolver_keys: Sequence[ResolverPublicKey],
    resolver: str,
    *,
    names: dict[str, str] | None = None,
    batch_key: bytes | None = None,
    batch_id: bytes | None = None,
) -> tuple[Batch, bytes]:
    """A new batch for `link` (GTIN and lot) and its secret key; key and id are random
    unless given (deterministic demos and tests)."""
    if link.lot is None or link.serial is not None:
        raise CodeError("lot", "lot-required", "a batch of serialised codes is for one lot")
    if not resolver_keys:
        raise CodeError(
            "resolverKeys", "no-resolver-key", "no resolver key to seal the batch key to"
        )
    key = batch_key if batch_key is not None else secrets.token_bytes(KEY_BYTES)
    ident = batch_id if batch_id is not None else secrets.token_bytes(16)
    batch = Batch(
        ident.hex(),
        link,
        check_count(count),
        commitment(key),
        {k.id: k.seal(key) for k in resolver_keys},
        check_host(resolver),
        check_names(names),
    )
    return batch, key


def _require(payload: dict[str, Any], key: str, kind: type) -> Any:
    value = payload.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise CodeError(f"payload.{key}", "schema", f"expected {kind.__name__}")
    return value


def parse_payload(payload: Any) -> Batch:
    """The batch a `codes.issue` payload records; CodeError naming the field otherwise."""
    if not isinstance(payload, dict):
        raise CodeError("payload", "schema", "expected an object")
    unknown = sorted(set(payload) - FIELDS)
    if unknown:
        raise CodeError(f"payload.{unknown[0]}", "schema", "unknown field")
    if payload.get("version") != VERSION:
        raise CodeError("payload.version", "schema", f"expected {VERSION}")
    ident = _require(payload, "batch", str)
    if not _HEX32.fullmatch(ident):
        raise CodeError("payload.batch", "schema", "expected 32 lower-case hex digits")
    if payload.get("serials") != SERIAL_SCHEME:
        raise CodeError("payload.serials", "schema", f"expected {SERIAL_SCHEME!r}")
    try:
        link = build(_require(payload, "gtin", str), _require(payload, "lotNumber", str))
    except CodeError as exc:
        if exc.field.startswith("payload."):
            raise
        where = "payload.gtin" if exc.field == "gtin" else "payload.lotNumber"
        raise CodeError(where, exc.rule, exc.detail) from None
    if payload.get("gtin") != link.gtin:
        raise CodeError("payload.gtin", "schema", "write the GTIN with 14 digits")
    if payload.get("product") != link.product_id or payload.get("lot") != link.lot_id:
        raise CodeError(
            "payload.lot", "schema", f"expected product {link.product_id} and lot {link.lot_id}"
        )
    key_commitment = _require(payload, "keyCommitment", str)
    if not _HEX64.fullmatch(key_commitment):
        raise CodeError("payload.keyCommitment", "schema", "expected 64 lower-case hex digits")
    sealed_list = _require(payload, "sealedKeys", list)
    sealed: dict[str, str] = {}
    for i, item in enumerate(sealed_list):
        if (
            not isinstance(item, dict)
            or set(item) != {"key", "box"}
            or not all(isinstance(v, str) for v in item.values())
            or len(item["box"]) > 200
        ):
            raise CodeError(f"payload.sealedKeys[{i}]", "schema", 'expected {"key", "box"}')
        sealed[item["key"]] = item["box"]
    if not sealed:
        raise CodeError("payload.sealedKeys", "schema", "expected at least one sealed key")
    attributes = check_attributes(payload.get("attributes"), "payload.attributes")
    return Batch(
        ident,
        DigitalLink(link.gtin, link.lot, attributes=attributes),
        check_count(payload.get("count"), "payload.count"),
        key_commitment,
        sealed,
        check_host(payload.get("resolver"), "payload.resolver"),
        check_names(payload.get("names"), "payload.names"),
    )


@dataclass(frozen=True)
class RecordedBatch:
    batch: Batch
    stored: StoredTx

    @property
    def tx_id(self) -> str:
        return self.stored.tx.id

    @property
    def height(self) -> int:
        return self.stored.height

    @property
    def signer(self) -> str:
        return self.stored.tx.signer


def recorded_batches(store: Store, identifier: str) -> list[RecordedBatch]:
    """Well-formed batches recorded under a product or lot identifier (ledger order).

    Malformed payloads are skipped: the ledger's write policy lets producers record
    `codes.issue`, it does not check the payload (nodes that admit through this API do)."""
    found = []
    for stored in store.txs_for_product(identifier, limit=10_000, types=(TX_TYPE,)):
        try:
            found.append(RecordedBatch(parse_payload(stored.tx.payload), stored))
        except CodeError:
            continue
    return found


def open_key(batch: Batch, keys: Sequence[ResolverKey]) -> bytes | None:
    """The batch key, if one of `keys` opens it and it matches the commitment."""
    for key in keys:
        sealed = batch.sealed.get(key.id)
        if sealed is not None:
            opened = key.open(sealed, batch.key_commitment)
            if opened is not None:
                return opened
    return None


def lot_identifier(gtin: str, lot: str) -> str:
    return f"https://id.gs1.org/01/{gtin}/10/{encode_value(lot)}"
