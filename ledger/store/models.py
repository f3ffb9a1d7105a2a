"""Tables. Objects that are hashed or signed are stored as their canonical JSON text, byte
for byte, so the verifier checks exactly what was committed; the other columns are indexes
derived from that text (the verifier checks they agree)."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Meta(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class BlockRow(Base):
    __tablename__ = "blocks"
    height: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    time: Mapped[str] = mapped_column(String(24), index=True)
    header: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text)
    #: The certificate that committed this block: canonical once block height+1 carries it.
    commit: Mapped[str] = mapped_column(Text)


class TxRow(Base):
    __tablename__ = "transactions"
    id: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    height: Mapped[int] = mapped_column(BigInteger, ForeignKey("blocks.height"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    log_index: Mapped[int] = mapped_column(BigInteger, unique=True)
    type: Mapped[str] = mapped_column(String(64))
    signer: Mapped[str] = mapped_column(String(64))
    envelope: Mapped[str] = mapped_column(Text)


class ProductRow(Base):
    """Product identifier -> transactions naming it (EPC, class, lot, container)."""

    __tablename__ = "product_index"
    identifier: Mapped[str] = mapped_column(String(512), primary_key=True)
    log_index: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("transactions.log_index"), primary_key=True
    )


class ClaimRow(Base):
    """Claim (ledger.claims: an eventID, a batch id) -> transactions making it."""

    __tablename__ = "claims"
    key: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    log_index: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("transactions.log_index"), primary_key=True
    )


class TallyRow(Base):
    """A signed amount a transaction adds to a running total (`ledger.tallies`): derived
    by the domain's rules, checked by the verifier's replay like the other indexes."""

    __tablename__ = "tallies"
    key: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    log_index: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("transactions.log_index"), primary_key=True
    )
    amount: Mapped[int] = mapped_column(BigInteger)


class LogNodeRow(Base):
    """Perfect-subtree hashes of the whole-ledger RFC 6962 log, for O(log n) proofs."""

    __tablename__ = "log_nodes"
    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class SeenSignatureRow(Base):
    """A request signature the node accepted (its SHA-256), refused again until `expires`
    (unix seconds): node-local replay protection, not part of the chain."""

    __tablename__ = "seen_signatures"
    digest: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    expires: Mapped[int] = mapped_column(BigInteger, index=True)


class LocalRecordRow(Base):
    """A node-local record the API keeps beside the chain (not part of it): a named query or
    a subscription, with the ledger position its subscriber has acknowledged."""

    __tablename__ = "local_records"
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    owner: Mapped[str] = mapped_column(String(256))
    body: Mapped[str] = mapped_column(Text)
    #: log index of the last item acknowledged (-1: none yet)
    position: Mapped[int] = mapped_column(BigInteger)
