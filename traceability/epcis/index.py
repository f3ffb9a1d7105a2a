"""The API's read model: EPCIS events and membership changes of the committed chain,
indexed for queries (by EPC, class, bizStep, time, location, disposition, eventID).

It is derived data, never a source of truth: it follows the node's store block by block
(`sync`) and can be rebuilt from it at any time, which is why it lives in its own
database (in memory unless configured) instead of in the ledger's schema. Identifiers
are indexed by their canonical key (`traceability.identifiers`), so
'urn:epc:id:sgtin:0614141.107346.2017', its Digital Link URI on any host and its QR
code's spelling find the same events; an index kept with another key is rebuilt.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    func,
    insert,
    select,
)
from sqlalchemy.pool import StaticPool

from ledger.block import Block
from ledger.identity import Credential
from ledger.membership import MEMBERSHIP_TYPES
from ledger.policy import EPCIS_TX_TYPE
from ledger.store import Store
from traceability.codes import scanbook
from traceability.codes.observations import TX_TYPE as SCANS_TX_TYPE
from traceability.epcis import cbv
from traceability.epcis.records import event_id_of
from traceability.epcis.rules import parse_timestamp
from traceability.identifiers import PRODUCT_INDEX, canonical_key
from traceability.receipts import MembershipChange

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MEMO_SIZE = 4096
T = TypeVar("T")
metadata = MetaData()

meta = Table(
    "api_index_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
events = Table(
    "api_events",
    metadata,
    Column("log_index", BigInteger, primary_key=True, autoincrement=False),
    Column("tx_id", String(64), nullable=False, unique=True),
    Column("height", BigInteger, nullable=False),
    Column("signer", String(64), nullable=False),
    Column("event_id", String(1024), index=True),
    Column("event_type", String(64), nullable=False, index=True),
    Column("event_time_us", BigInteger, nullable=False, index=True),
    Column("record_time", String(24), nullable=False),
    Column("record_time_us", BigInteger, nullable=False, index=True),
    Column("action", String(16)),
    Column("biz_step", String(1024), index=True),
    Column("disposition", String(1024), index=True),
    Column("read_point", String(1024), index=True),
    Column("biz_location", String(1024), index=True),
    Column("transformation_id", String(1024), index=True),
    Column("error_declaration", Boolean, nullable=False),
    Column("event", Text, nullable=False),
)
identifiers = Table(
    "api_event_identifiers",
    metadata,
    Column("identifier", String(1024), primary_key=True),
    Column("role", String(16), primary_key=True),
    Column("log_index", BigInteger, primary_key=True, autoincrement=False),
)
membership_txs = Table(
    "api_membership_txs",
    metadata,
    Column("log_index", BigInteger, primary_key=True, autoincrement=False),
    Column("tx_id", String(64), nullable=False),
    Column("height", BigInteger, nullable=False),
    Column("type", String(64), nullable=False),
    Column("certificates", Text, nullable=False),  # fingerprints it adds, JSON list
)
Index("ix_api_event_identifiers_log", identifiers.c.log_index)
#: Who an event names as a party (its sources and destinations), by canonical key: what a
#: member may read beyond its own events (traceability.epcis.visibility).
parties = Table(
    "api_event_parties",
    metadata,
    Column("party", String(1024), primary_key=True),
    Column("log_index", BigInteger, primary_key=True, autoincrement=False),
)
#: What a kept index must have been built with, or it is rebuilt: the identifiers' keys
#: and this layout (parties were added in layout 2, consumer observations in layout 3).
LAYOUT = f"{PRODUCT_INDEX.name};layout=3"

#: Where an identifier appears in an event, by role.
EPC_ROLES = {
    "epcList": "epc",
    "childEPCs": "epc",
    "inputEPCList": "input",
    "outputEPCList": "output",
}
CLASS_ROLES = {
    "quantityList": "class",
    "childQuantityList": "class",
    "inputQuantityList": "input_class",
    "outputQuantityList": "output_class",
}


def canonical_identifier(value: str) -> str:
    """The key an identifier is indexed and queried by (`canonical_key`)."""
    return canonical_key(value)


def micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def time_micros(text: str) -> int | None:
    moment = parse_timestamp(text)
    return None if moment is None else micros(moment)


@dataclass(frozen=True)
class IndexedEvent:
    log_index: int
    tx_id: str
    height: int
    signer: str
    record_time: str
    event_id: str | None
    event: dict[str, Any]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


#: The columns `_event_columns` gives, in its order, after the transaction's own.
_EVENT_OWN = (
    "event_id",
    "event_type",
    "event_time_us",
    "action",
    "biz_step",
    "disposition",
    "read_point",
    "biz_location",
    "transformation_id",
    "error_declaration",
)
_EVENT_COLUMNS = (
    "log_index",
    "tx_id",
    "height",
    "signer",
    "record_time",
    "record_time_us",
    "event",
    *_EVENT_OWN,
)
_MEMBER_COLUMNS = ("log_index", "tx_id", "height", "type", "certificates")


def _event_columns(event: dict[str, Any]) -> tuple[Any, ...]:
    """The indexed columns of one recorded event, in `_EVENT_OWN` order."""

    def location(key: str) -> str | None:
        value = event.get(key)
        ident = _text(value.get("id")) if isinstance(value, dict) else None
        return canonical_identifier(ident) if ident else None

    step, disposition = _text(event.get("bizStep")), _text(event.get("disposition"))
    return (
        _event_id(event),
        str(event.get("type", ""))[:64],
        time_micros(event.get("eventTime", "")) or 0,
        _text(event.get("action")),
        cbv.normalize(step, cbv.BIZ_STEP) if step else None,
        cbv.normalize(disposition, cbv.DISPOSITION) if disposition else None,
        location("readPoint"),
        location("bizLocation"),
        _text(event.get("transformationID")),
        isinstance(event.get("errorDeclaration"), dict),
    )


#: What the index takes of one transaction: log index, id (hex), type, signer, payload.
_Item = tuple[int, str, str, str, dict[str, Any]]
_INDEXED_TYPES = frozenset({EPCIS_TX_TYPE, SCANS_TX_TYPE, *MEMBERSHIP_TYPES})


def _raw_items(raw: Any) -> Iterator[_Item]:
    """The items of a block read back from the store (its envelopes parsed here)."""
    for t in raw.txs:
        if t.type in _INDEXED_TYPES:
            payload = json.loads(t.envelope)["body"].get("payload") or {}
            yield t.log_index, t.id.hex(), t.type, t.signer, payload


def _block_items(block: Block) -> Iterator[_Item]:
    """The items of a block held as objects: log indexes run up to the header's log size."""
    first = block.header.log_size - len(block.txs)
    for position, tx in enumerate(block.txs):
        if tx.type in _INDEXED_TYPES:
            yield first + position, tx.id, tx.type, tx.signer, tx.payload


def _event_id(event: dict[str, Any]) -> str | None:
    """The eventID, or the GS1 hash ID of an event recorded without one."""
    try:
        return event_id_of(event)
    except Exception:  # committed events are valid; a failure only loses this entry
        return None


def _listed(event: dict[str, Any], key: str) -> list[Any]:
    value = event.get(key)
    return value if isinstance(value, list) else []


def event_identifiers(event: dict[str, Any]) -> set[tuple[str, str]]:
    """(canonical identifier, role) pairs naming what an event is about."""
    found: set[tuple[str, str]] = set()
    parent = event.get("parentID")
    if isinstance(parent, str):
        found.add((canonical_identifier(parent), "parent"))
    for key, role in EPC_ROLES.items():
        for epc in _listed(event, key):
            if isinstance(epc, str):
                found.add((canonical_identifier(epc), role))
    for key, role in CLASS_ROLES.items():
        for item in _listed(event, key):
            if isinstance(item, dict) and isinstance(item.get("epcClass"), str):
                found.add((canonical_identifier(item["epcClass"]), role))
    return {(i, r) for i, r in found if len(i) <= 1024}


def event_parties(event: dict[str, Any]) -> set[str]:
    """Canonical keys of the sources and destinations an event names."""
    found = set()
    for key, field in (("sourceList", "source"), ("destinationList", "destination")):
        for item in _listed(event, key):
            value = item.get(field) if isinstance(item, dict) else None
            if isinstance(value, str):
                found.add(canonical_identifier(value))
    return {p for p in found if len(p) <= 1024}


def _added_certificates(tx_type: str, payload: dict[str, Any]) -> list[str]:
    """Fingerprints of the certificates a membership change registers."""
    change = payload.get("change") if isinstance(payload, dict) else None
    pems: list[str] = []
    if isinstance(change, dict):
        org = change.get("organization")
        if isinstance(org, dict):
            pems += [p for p in org.get("certificates") or () if isinstance(p, str)]
        if isinstance(change.get("new_certificate"), str):
            pems.append(change["new_certificate"])
        for entry in change.get("validators") or ():
            if isinstance(entry, dict) and isinstance(entry.get("certificate"), str):
                pems.append(entry["certificate"])
    found = []
    for pem in pems:
        try:
            found.append(Credential.from_pem(pem).fingerprint)
        except Exception:  # committed, so valid; a parse failure only loses an index entry
            continue
    return found


class EventIndex:
    """Follows one node's store; every read first catches up with the store's head."""

    def __init__(
        self,
        store: Store,
        url: str | None = None,
        head: Callable[[], int] | None = None,
        recent: Callable[[int], Block | None] | None = None,
    ) -> None:
        """`head`: the store's committed height, if the caller knows it without asking the
        database (a node does); every read first catches up to it. `recent`: committed
        blocks the caller still holds as objects, by height (a node's last few), indexed
        from there instead of being read back and parsed."""
        self.store = store
        self._head = head or store.height
        self._recent = recent
        self.engine = _engine(url)
        metadata.create_all(self.engine)
        scanbook.metadata.create_all(self.engine)
        self._lock = threading.RLock()
        self._forget_other_keys()
        self._height = self._stored_height()
        self._memo: OrderedDict[Hashable, tuple[int, Any]] = OrderedDict()

    def close(self) -> None:
        self.engine.dispose()

    @property
    def height(self) -> int:
        return self._height

    def _forget_other_keys(self) -> None:
        """Empty a kept index whose identifiers were keyed otherwise: it is rebuilt from
        the store as it follows it again."""
        with self.engine.begin() as conn:
            keyed = conn.scalar(select(meta.c.value).where(meta.c.key == "keys"))
            if keyed == LAYOUT:
                return
            for table in (identifiers, parties, events, membership_txs, meta):
                conn.execute(table.delete())
            scanbook.clear(conn)
            _set_meta(conn, "keys", LAYOUT)

    def _stored_height(self) -> int:
        with self.engine.connect() as conn:
            value = conn.scalar(select(meta.c.value).where(meta.c.key == "height"))
        return int(value) if value else 0

    # -- following the chain -----------------------------------------------------------
    def sync(self) -> int:
        """Index every block the store has committed since the last call; the new height."""
        with self._lock:
            head = self._head()
            while self._height < head:
                block = self._recent(self._height + 1) if self._recent else None
                if block is not None:
                    self._index_block(block.height, block.header.time, _block_items(block))
                    continue
                for raw in self.store.raw_blocks(self._height + 1, head):
                    time = json.loads(raw.header)["time"]
                    self._index_block(raw.height, time, _raw_items(raw))
                break
            return self._height

    def _index_block(self, height: int, record_time: str, items: Iterable[_Item]) -> None:
        record_us = time_micros(record_time) or 0
        event_rows: list[tuple[Any, ...]] = []
        ident_rows: list[tuple[Any, ...]] = []
        member_rows: list[tuple[Any, ...]] = []
        party_rows: list[tuple[Any, ...]] = []
        observed: list[scanbook.Item] = []
        for log_index, tx_id, tx_type, signer, payload in items:
            if tx_type == SCANS_TX_TYPE:
                observed.append((log_index, tx_id, signer, payload))
                continue
            if tx_type in MEMBERSHIP_TYPES:
                certificates = json.dumps(_added_certificates(tx_type, payload))
                member_rows.append((log_index, tx_id, height, tx_type, certificates))
                continue
            event = payload.get("event")
            if not isinstance(event, dict):
                continue
            text = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
            own = _event_columns(event)
            event_rows.append(
                (log_index, tx_id, height, signer, record_time, record_us, text, *own)
            )
            ident_rows += [(i, r, log_index) for i, r in sorted(event_identifiers(event))]
            party_rows += [(p, log_index) for p in sorted(event_parties(event))]
        with self.engine.begin() as conn:
            _insert_many(conn, events, _EVENT_COLUMNS, event_rows)
            _insert_many(conn, identifiers, ("identifier", "role", "log_index"), ident_rows)
            _insert_many(conn, membership_txs, _MEMBER_COLUMNS, member_rows)
            _insert_many(conn, parties, ("party", "log_index"), party_rows)
            scanbook.index_block(conn, height, observed)
            _set_meta(conn, "height", str(height))
        self._height = height

    # -- reads ---------------------------------------------------------------------------
    def memo(self, key: Hashable, make: Callable[[], T]) -> T:
        """`make()`, a value derived from the index alone, computed once per index height:
        the index changes only when it follows a new block, so until then it is exact.
        The most recently used `MEMO_SIZE` values are kept."""
        with self._lock:
            self.sync()
            found = self._memo.get(key)
            if found is not None and found[0] == self._height:
                self._memo.move_to_end(key)
                return found[1]
            value = make()
            self._memo[key] = (self._height, value)
            self._memo.move_to_end(key)
            while len(self._memo) > MEMO_SIZE:
                self._memo.popitem(last=False)
            return value

    def run(self, statement: Any) -> list[Any]:
        """Execute a read (after catching up) and return its rows."""
        with self._lock:
            self.sync()
            with self.engine.connect() as conn:
                return list(conn.execute(statement))

    def known_event_ids(self, event_ids: Iterable[str]) -> dict[str, str]:
        """eventID -> id of the committed transaction that recorded it, for those known."""
        wanted = sorted(set(event_ids))
        found: dict[str, str] = {}
        for chunk in _chunks(wanted, 500):
            rows = self.run(
                select(events.c.event_id, events.c.tx_id).where(events.c.event_id.in_(chunk))
            )
            found.update({r[0]: r[1] for r in rows})
        return found

    def by_log_index(self, log_indexes: Iterable[int]) -> list[IndexedEvent]:
        wanted = sorted(set(log_indexes))
        rows: list[Any] = []
        for chunk in _chunks(wanted, 500):
            rows += self.run(select(events).where(events.c.log_index.in_(chunk)))
        return [to_indexed(r) for r in sorted(rows, key=lambda r: r.log_index)]

    def membership_changes(self, before_height: int) -> list[MembershipChange]:
        """Membership transactions committed below `before_height`, in ledger order."""
        rows = self.run(
            select(membership_txs)
            .where(membership_txs.c.height < before_height)
            .order_by(membership_txs.c.log_index)
        )
        return [
            MembershipChange(
                r.tx_id, r.height, r.log_index, r.type, tuple(json.loads(r.certificates))
            )
            for r in rows
        ]

    def count(self) -> int:
        return self.run(select(func.count()).select_from(events))[0][0]


def to_indexed(row: Any) -> IndexedEvent:
    return IndexedEvent(
        row.log_index,
        row.tx_id,
        row.height,
        row.signer,
        row.record_time,
        row.event_id,
        json.loads(row.event),
    )


def _insert_many(
    conn: Any, table: Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    """INSERT `rows` (tuples in `columns` order) with the driver's executemany: the index
    takes a block's rows at a time, and per-row statement building would cost more than
    the insert itself."""
    if not rows:
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join(mark for _ in columns)})"
    )
    conn.exec_driver_sql(sql, rows)


def _set_meta(conn: Any, key: str, value: str) -> None:
    existing = conn.scalar(select(meta.c.key).where(meta.c.key == key))
    if existing is None:
        conn.execute(insert(meta).values(key=key, value=value))
    else:
        conn.execute(meta.update().where(meta.c.key == key).values(value=value))


def _engine(url: str | None) -> Engine:
    if not url or url in ("sqlite://", ":memory:"):
        return create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    from ledger.store.store import make_engine

    return make_engine(url)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


__all__ = [
    "CLASS_ROLES",
    "EPC_ROLES",
    "EventIndex",
    "IndexedEvent",
    "canonical_identifier",
    "event_identifiers",
    "events",
    "identifiers",
    "micros",
    "parties",
    "time_micros",
    "to_indexed",
]
