"""Storage of the chain through SQLAlchemy 2: SQLite (WAL) embedded, PostgreSQL in production.

Same code for both. A block and everything derived from it (its transactions, the product
index, the log nodes, the canonical certificate of the previous block) commit in one
database transaction, so a crash leaves either the whole block or none of it.
"""

from .store import RawBlock, RawTx, Store, StoredTx, StoreError

__all__ = ["RawBlock", "RawTx", "Store", "StoreError", "StoredTx"]
