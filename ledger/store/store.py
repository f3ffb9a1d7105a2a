"""The Store: write committed blocks atomically, read them back, serve proofs."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, delete, event, func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from .. import codec, merkle
from ..block import Block, CommitCertificate, Header
from ..claims import tx_claims
from ..errors import LedgerError
from ..identifiers import AS_SPELLED, ProductIndex
from ..tallies import Tally
from ..tx import Transaction
from .models import (
    BlockRow,
    ClaimRow,
    LogNodeRow,
    Meta,
    ProductRow,
    SeenSignatureRow,
    TallyRow,
    TxRow,
)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
_BLOCK = BlockRow.__table__.c
_TX = TxRow.__table__.c
_NODE_CACHE = 1 << 16  # log nodes kept in memory (32-byte hashes)
_KNOWN_CHUNK = 500  # ids per lookup statement (SQLite's host-parameter limit is far above)
_REINDEX_BATCH = 2000  # transactions read at a time while the product index is rebuilt
#: Meta key naming the ProductIndex the product_index rows were written with (absent: the
#: identifiers as spelled, what stores held before the index had a name).
INDEX_META = "product_index"


class StoreError(LedgerError):
    """The database is unreachable, belongs to another chain, or refuses a write."""

    code = "store_error"


@dataclass(frozen=True)
class RawTx:
    id: bytes
    height: int
    position: int
    log_index: int
    type: str
    signer: str
    envelope: str


@dataclass(frozen=True)
class RawBlock:
    """A block exactly as stored, for the verifier to re-check byte for byte."""

    height: int
    hash: bytes
    time: str
    header: str
    evidence: str
    commit: str
    txs: list[RawTx]


@dataclass(frozen=True)
class StoredTx:
    tx: Transaction
    height: int
    position: int
    log_index: int


def normalize_url(url: str) -> str:
    """Accept a bare path for SQLite and plain postgresql:// URLs (use psycopg 3)."""
    if "://" not in url:
        return f"sqlite:///{Path(url).resolve()}"
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # 8 KiB pages for a new database (ignored by an existing one, whose page size is fixed):
    # a stored transaction row is ~1.1 KiB, and 4 KiB pages hold only three of them, leaving
    # a quarter of every page empty. Must come before WAL mode, which fixes the page size.
    cursor.execute("PRAGMA page_size=8192")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # a committed block survives power loss
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _payload_of(envelope: str) -> Any:
    """The payload of a stored envelope; None if the text is not one (the verifier names
    such a row; re-indexing only skips it)."""
    try:
        return json.loads(envelope)["body"]["payload"]
    except (ValueError, KeyError, TypeError):
        return None


def _canon(obj: Any) -> str:
    return codec.canonical(obj).decode("utf-8")


class Store:
    """One node's copy of the chain.

    `index`: how the product index keys identifiers (the domain's, see
    `ledger.identifiers.ProductIndex`); without one, the store goes on with the index it
    recorded if that is the as-spelled one, and otherwise refuses to write blocks (it
    cannot compute their rows) until `use_index` names it."""

    def __init__(
        self, url: str, *, migrate: bool = True, index: ProductIndex | None = None
    ) -> None:
        self.url = normalize_url(url)
        self.engine = make_engine(self.url)
        self._nodes: dict[tuple[int, int], bytes] = {}
        self._index: ProductIndex | None = None
        try:
            if migrate:
                self.migrate()
            else:
                self._check_schema()
            if index is not None:
                self.use_index(index)
            elif self.indexed_by() == AS_SPELLED.name:
                self._index = AS_SPELLED
        except OperationalError as exc:
            raise StoreError(f"cannot open database {self.safe_url}: {exc.orig}") from exc

    @property
    def safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    # -- schema ---------------------------------------------------------------------------
    def _alembic_config(self) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        return cfg

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent), all or nothing.

        On SQLite the driver commits DDL as it goes (it opens transactions only before
        DML), so a crash in a new node's first moments left some tables and no stamp, and
        every later start failed on "table ... already exists". There the migration runs
        in a transaction of its own making: the driver's autocommit and one explicit
        BEGIN IMMEDIATE, as SQLAlchemy's pysqlite notes advise."""
        cfg = self._alembic_config()
        if self.engine.dialect.name != "sqlite":
            with self.engine.begin() as connection:
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, "head")
            return
        with self.engine.connect() as plain:
            connection = plain.execution_options(isolation_level="AUTOCOMMIT")
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, "head")
            except BaseException:
                connection.exec_driver_sql("ROLLBACK")
                raise
            connection.exec_driver_sql("COMMIT")

    def _check_schema(self) -> None:
        head = ScriptDirectory.from_config(self._alembic_config()).get_current_head()
        with self.engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
        if current != head:
            raise StoreError(
                f"database schema is at {current or 'nothing'}, expected {head}: run migrations"
            )

    def close(self) -> None:
        self.engine.dispose()

    # -- the product index's keys ---------------------------------------------------------
    @property
    def index(self) -> ProductIndex | None:
        """The ProductIndex the stored rows follow (None: a name this store was not given)."""
        return self._index

    def indexed_by(self) -> str:
        """Name of the ProductIndex the stored rows were written with."""
        return self.meta(INDEX_META) or AS_SPELLED.name

    def use_index(self, index: ProductIndex) -> None:
        """Key the product index with `index` from now on. Rows written with another one
        (a store of an earlier version keyed identifiers as spelled) are rebuilt from the
        stored transactions first, in one database transaction; idempotent."""
        if self._index is not None and self._index.name == index.name:
            self._index = index
            return
        with self.engine.begin() as conn:
            recorded = conn.scalar(select(Meta.value).where(Meta.key == INDEX_META))
            if (recorded or AS_SPELLED.name) != index.name:
                self._rebuild_products(conn, index)
                if recorded is None:
                    conn.execute(insert(Meta.__table__), {"key": INDEX_META, "value": index.name})
                else:
                    conn.execute(
                        update(Meta.__table__)
                        .where(Meta.__table__.c.key == INDEX_META)
                        .values(value=index.name)
                    )
        self._index = index

    @staticmethod
    def _rebuild_products(conn: Any, index: ProductIndex) -> None:
        conn.execute(ProductRow.__table__.delete())
        last = -1
        while True:
            batch = conn.execute(
                select(_TX.log_index, _TX.type, _TX.envelope)
                .where(_TX.log_index > last)
                .order_by(_TX.log_index)
                .limit(_REINDEX_BATCH)
            ).all()
            if not batch:
                return
            rows = [
                {"identifier": ident, "log_index": log_index}
                for log_index, tx_type, envelope in batch
                for ident in sorted(index.identifiers(tx_type, _payload_of(envelope)))
            ]
            if rows:
                conn.execute(insert(ProductRow.__table__), rows)
            last = batch[-1].log_index

    def _writing_index(self) -> ProductIndex:
        if self._index is None:
            raise StoreError(
                f"this store's product index is keyed by {self.indexed_by()!r}; open it "
                "with that index to write blocks"
            )
        return self._index

    # -- identity of the chain ------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        with Session(self.engine) as session:
            row = session.get(Meta, key)
            return row.value if row else None

    def bind_chain(self, chain_id: str, genesis_hash: str, genesis_doc: dict[str, Any]) -> None:
        """Record which chain this database holds; refuse to mix two chains in one store."""
        with Session(self.engine) as session, session.begin():
            existing = session.get(Meta, "genesis_hash")
            if existing is not None:
                if existing.value != genesis_hash:
                    raise StoreError(
                        f"database holds chain with genesis {existing.value[:16]}…, "
                        f"not {genesis_hash[:16]}…"
                    )
                return
            session.add_all(
                [
                    Meta(key="chain_id", value=chain_id),
                    Meta(key="genesis_hash", value=genesis_hash),
                    Meta(key="genesis", value=_canon(genesis_doc)),
                ]
            )

    def genesis_doc(self) -> dict[str, Any] | None:
        text = self.meta("genesis")
        return json.loads(text) if text else None

    # -- writes ---------------------------------------------------------------------------
    def save_block(
        self,
        block: Block,
        commit: CommitCertificate,
        log_nodes: list[tuple[int, int, bytes]],
        tallies: Collection[Tally] = (),
    ) -> None:
        """Commit a block and everything derived from it in one database transaction.
        `tallies`: the running-total rows the domain's rules derived from the block."""
        h = block.header
        first_index = h.log_size - len(block.txs)
        index = self._writing_index()
        # Core statements, not ORM objects: the same rows in the same order in one database
        # transaction, without building and flushing an ORM instance per transaction (that
        # was most of the cost of storing a block).
        txs, products, claims = [], [], []
        for position, tx in enumerate(block.txs):
            log_index = first_index + position
            txs.append(
                {
                    "id": bytes.fromhex(tx.id),
                    "height": h.height,
                    "position": position,
                    "log_index": log_index,
                    "type": tx.type,
                    "signer": tx.signer,
                    "envelope": tx.canonical().decode("utf-8"),
                }
            )
            products.extend(
                {"identifier": ident, "log_index": log_index}
                for ident in sorted(index.identifiers(tx.type, tx.payload))
            )
            claims.extend(
                {"key": key, "log_index": log_index}
                for key in sorted(tx_claims(tx.type, tx.payload))
            )
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(BlockRow.__table__),
                    {
                        "height": h.height,
                        "hash": bytes.fromhex(h.hash),
                        "time": h.time,
                        "header": _canon(h.to_json()),
                        "evidence": _canon(list(block.evidence)),
                        "commit": _canon(commit.to_json()),
                    },
                )
                if block.last_commit is not None:
                    # The previous block's certificate becomes the one the chain agreed on.
                    conn.execute(
                        update(BlockRow.__table__)
                        .where(BlockRow.__table__.c.height == h.height - 1)
                        .values(commit=_canon(block.last_commit.to_json()))
                    )
                if txs:
                    conn.execute(insert(TxRow.__table__), txs)
                if products:
                    conn.execute(insert(ProductRow.__table__), products)
                if claims:
                    conn.execute(insert(ClaimRow.__table__), claims)
                if tallies:
                    conn.execute(
                        insert(TallyRow.__table__),
                        [
                            {"key": key, "log_index": first_index + pos, "amount": amount}
                            for pos, key, amount in tallies
                        ],
                    )
                if log_nodes:
                    conn.execute(
                        insert(LogNodeRow.__table__),
                        [{"level": lv, "index": ix, "hash": hs} for lv, ix, hs in log_nodes],
                    )
        except IntegrityError as exc:
            raise StoreError(f"cannot store block {h.height}: {exc.orig}") from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot store block {h.height}: {exc}") from exc

    def claim_once(self, digest: bytes, expires: int, now: int) -> bool:
        """Record `digest` as used until `expires` (unix seconds); False if it is already
        recorded and not yet expired. Expired digests are pruned on the way, so the table
        holds only what is still inside its window."""
        seen = SeenSignatureRow.__table__
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(seen).where(seen.c.expires < now))
                conn.execute(insert(seen), {"digest": digest, "expires": expires})
        except IntegrityError:
            return False
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot record a request signature: {exc}") from exc
        return True

    # -- reads ----------------------------------------------------------------------------
    def height(self) -> int:
        # On the driver's cursor: the API's reads ask this before each query (catching up).
        with self.engine.connect() as conn:
            cursor = conn.connection.driver_connection.cursor()
            try:
                cursor.execute("SELECT MAX(height) FROM blocks")
                return cursor.fetchone()[0] or 0
            finally:
                cursor.close()

    def header(self, height: int) -> Header | None:
        with self.engine.connect() as conn:
            text = conn.scalar(select(_BLOCK.header).where(_BLOCK.height == height))
        return Header.from_json(json.loads(text)) if text else None

    def commit(self, height: int) -> CommitCertificate | None:
        with self.engine.connect() as conn:
            text = conn.scalar(select(_BLOCK.commit).where(_BLOCK.height == height))
        return CommitCertificate.from_json(json.loads(text)) if text else None

    def block(self, height: int) -> Block | None:
        """The block at `height` as it travels between nodes (with the previous commit)."""
        raw = next(self.raw_blocks(height, height), None)
        if raw is None:
            return None
        last_commit = self.commit(height - 1) if height > 1 else None
        return Block(
            Header.from_json(json.loads(raw.header)),
            tuple(Transaction.from_json(json.loads(t.envelope)) for t in raw.txs),
            tuple(json.loads(raw.evidence)),
            last_commit,
        )

    def raw_blocks(
        self, start: int = 1, end: int | None = None, batch: int = 256
    ) -> Iterator[RawBlock]:
        """Stream stored blocks in height order, a batch at a time (bounded memory)."""
        low = start
        while end is None or low <= end:
            high = low + batch - 1 if end is None else min(end, low + batch - 1)
            # Core rows, not ORM instances: the verifier and the event index read every
            # stored transaction through here.
            with self.engine.connect() as conn:
                b = _BLOCK
                blocks = conn.execute(
                    select(b.height, b.hash, b.time, b.header, b.evidence, b.commit)
                    .where(b.height.between(low, high))
                    .order_by(b.height)
                ).all()
                if not blocks:
                    return
                txs: dict[int, list[RawTx]] = {}
                t = _TX
                rows = conn.execute(
                    select(t.id, t.height, t.position, t.log_index, t.type, t.signer, t.envelope)
                    .where(t.height.between(low, high))
                    .order_by(t.height, t.position)
                )
                for row in rows:
                    txs.setdefault(row.height, []).append(RawTx(*row))
                for block in blocks:
                    yield RawBlock(
                        block.height,
                        block.hash,
                        block.time,
                        block.header,
                        block.evidence,
                        block.commit,
                        txs.get(block.height, []),
                    )
            # From the last block read, not the end of the range: a block stored while
            # this batch was read (a running node's store) must not be skipped.
            low = blocks[-1].height + 1

    def tx(self, tx_id: str) -> StoredTx | None:
        try:
            key = codec.hexdecode(tx_id, field="transaction id", size=32)
        except LedgerError:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(_TX.envelope, _TX.height, _TX.position, _TX.log_index).where(_TX.id == key)
            ).first()
        if row is None:
            return None
        return StoredTx(
            Transaction.from_json(json.loads(row.envelope)),
            row.height,
            row.position,
            row.log_index,
        )

    def known_tx_ids(self, tx_ids: list[str]) -> set[str]:
        """Which of these ids are already committed (for duplicate and replay checks)."""
        if not tx_ids:
            return set()
        rows = self._rows_for_keys(
            "SELECT id FROM transactions WHERE id {IN}", [bytes.fromhex(t) for t in tx_ids]
        )
        return {bytes(row[0]).hex() for row in rows}

    def txs_for_product(
        self, identifier: str, limit: int = 1000, types: Collection[str] | None = None
    ) -> list[StoredTx]:
        """Transactions naming `identifier` (any spelling of its key), in ledger order;
        only of `types` if given."""
        if self._index is not None:
            identifier = self._index.key(identifier)
        product = ProductRow.__table__.c
        statement = (
            select(_TX.envelope, _TX.height, _TX.position, _TX.log_index)
            .join(ProductRow.__table__, product.log_index == _TX.log_index)
            .where(product.identifier == identifier)
        )
        if types is not None:
            statement = statement.where(_TX.type.in_(list(types)))
        with self.engine.connect() as conn:
            rows = conn.execute(statement.order_by(_TX.log_index).limit(limit)).all()
        return [
            StoredTx(
                Transaction.from_json(json.loads(r.envelope)), r.height, r.position, r.log_index
            )
            for r in rows
        ]

    def product_rows(self, start_log_index: int, end_log_index: int) -> list[tuple[str, int]]:
        with self.engine.connect() as conn:  # Core: the verifier asks once per block
            rows = conn.execute(
                select(ProductRow.identifier, ProductRow.log_index).where(
                    ProductRow.log_index.between(start_log_index, end_log_index)
                )
            ).all()
        return [(r[0], r[1]) for r in rows]

    def claimed(
        self, keys: Collection[bytes], below_height: int | None = None
    ) -> dict[bytes, list[tuple[str, str]]]:
        """Claim -> (transaction id, signer) of the committed transactions making it, in
        ledger order; only in blocks below `below_height` if given (ledger.claims)."""
        bound = below_height if below_height is not None else 2**62
        rows = self._rows_for_keys(
            "SELECT c.key, t.id, t.signer FROM claims c "
            "JOIN transactions t ON t.log_index = c.log_index "
            "WHERE c.key {IN} AND t.height < {P} ORDER BY c.log_index",
            sorted(set(keys)),
            bound,
        )
        found: dict[bytes, list[tuple[str, str]]] = {}
        for key, tx_id, signer in rows:
            found.setdefault(bytes(key), []).append((bytes(tx_id).hex(), signer))
        return found

    def _rows_for_keys(self, query: str, keys: list[bytes], *after: Any) -> list[Any]:
        """Rows of `query` for `keys` (`{IN}`: the key set; `{P}`: each of `after`), a chunk
        of keys at a time, on the driver's own cursor: the admission and block rules ask this
        for every transaction, and SQLAlchemy's statement handling cost ~10x the indexed
        lookup itself."""
        sqlite = self.engine.dialect.name == "sqlite"
        mark = "?" if sqlite else "%s"
        rows: list[Any] = []
        with self.engine.connect() as conn:
            cursor = conn.connection.driver_connection.cursor()
            try:
                for i in range(0, len(keys), _KNOWN_CHUNK):
                    chunk = keys[i : i + _KNOWN_CHUNK]
                    keyset = f"IN ({','.join('?' * len(chunk))})" if sqlite else "= ANY(%s)"
                    sql = query.replace("{IN}", keyset).replace("{P}", mark)
                    cursor.execute(sql, [*chunk, *after] if sqlite else [chunk, *after])
                    rows += cursor.fetchall()
            finally:
                cursor.close()
        return rows

    def totals(self, keys: Collection[bytes], below_height: int | None = None) -> dict[bytes, int]:
        """Running total of each key (ledger.tallies) over blocks below `below_height` if
        given; keys without rows are absent."""
        bound = below_height if below_height is not None else 2**62
        rows = self._rows_for_keys(
            "SELECT c.key, SUM(c.amount) FROM tallies c "
            "JOIN transactions t ON t.log_index = c.log_index "
            "WHERE c.key {IN} AND t.height < {P} GROUP BY c.key",
            sorted(set(keys)),
            bound,
        )
        return {bytes(key): int(total) for key, total in rows}

    def tally_rows(self, start_log_index: int, end_log_index: int) -> list[tuple[bytes, int, int]]:
        """(key, log index, amount) of the tallies of a log range (the verifier's check)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(TallyRow.key, TallyRow.log_index, TallyRow.amount).where(
                    TallyRow.log_index.between(start_log_index, end_log_index)
                )
            ).all()
        return [(bytes(r[0]), r[1], r[2]) for r in rows]

    def claim_rows(self, start_log_index: int, end_log_index: int) -> list[tuple[bytes, int]]:
        with self.engine.connect() as conn:  # Core: the verifier asks once per block
            rows = conn.execute(
                select(ClaimRow.key, ClaimRow.log_index).where(
                    ClaimRow.log_index.between(start_log_index, end_log_index)
                )
            ).all()
        return [(bytes(r[0]), r[1]) for r in rows]

    # -- the whole-ledger log ---------------------------------------------------------------
    def node(self, level: int, index: int) -> bytes:
        """NodeSource for merkle.TreeProofs. A perfect-subtree node never changes once
        written, so it is kept in memory once read: the upper nodes are in every proof."""
        key = (level, index)
        value = self._nodes.get(key)
        if value is not None:
            return value
        with self.engine.connect() as conn:  # Core: a receipt reads O(log² n) of these
            value = conn.scalar(
                select(LogNodeRow.hash).where(LogNodeRow.level == level, LogNodeRow.index == index)
            )
        if value is None:
            raise StoreError(f"log node ({level}, {index}) is missing")
        if len(self._nodes) >= _NODE_CACHE:
            self._nodes.clear()
        self._nodes[key] = value
        return value

    def log_nodes(self, level: int, start: int, end: int) -> dict[int, bytes]:
        with self.engine.connect() as conn:  # Core: the verifier asks per level of each block
            rows = conn.execute(
                select(LogNodeRow.index, LogNodeRow.hash).where(
                    LogNodeRow.level == level, LogNodeRow.index.between(start, end)
                )
            ).all()
        return {r[0]: r[1] for r in rows}

    def log_size(self) -> int:
        """Leaves in the whole-ledger log (an index lookup, not a count)."""
        with self.engine.connect() as conn:
            last = conn.scalar(select(func.max(LogNodeRow.index)).where(LogNodeRow.level == 0))
        return 0 if last is None else last + 1

    def frontier(self) -> merkle.Frontier:
        """Rebuild the log frontier from the stored perfect-subtree roots: O(log n) reads."""
        size = self.log_size()
        hashes = []
        offset = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size & (1 << level):
                hashes.append(self.node(level, offset >> level))
                offset += 1 << level
        return merkle.Frontier.from_list(size, hashes)

    def proofs(self) -> merkle.TreeProofs:
        return merkle.TreeProofs(self)
