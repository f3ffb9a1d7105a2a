"""Node-local records in the node's store (table `local_records`): state an API keeps
beside the chain, durable across restarts but never part of it, so never hashed, signed
or compared between nodes. Each record is a JSON body under (kind, key), with an owner
and a position (a ledger log index) that only moves forward."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from .models import LocalRecordRow
from .store import Store, StoreError

_TABLE = LocalRecordRow.__table__


@dataclass(frozen=True)
class LocalRecord:
    kind: str
    key: str
    owner: str
    body: dict[str, Any]
    position: int


class LocalRecords:
    def __init__(self, store: Store) -> None:
        self._engine = store.engine

    def create(self, kind: str, key: str, owner: str, body: dict[str, Any], position: int) -> bool:
        """Add a record; False if (kind, key) exists already."""
        row = {
            "kind": kind,
            "key": key,
            "owner": owner,
            "body": json.dumps(body),
            "position": position,
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(_TABLE), row)
        except IntegrityError:
            return False
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot record {kind} {key!r}: {exc}") from exc
        return True

    def get(self, kind: str, key: str) -> LocalRecord | None:
        found = self.list(kind, key=key)
        return found[0] if found else None

    def list(
        self, kind: str, *, key: str | None = None, prefix: str | None = None
    ) -> list[LocalRecord]:
        """Records of `kind` in key order (one `key`, or those whose key starts `prefix`)."""
        statement = select(_TABLE).where(_TABLE.c.kind == kind).order_by(_TABLE.c.key)
        if key is not None:
            statement = statement.where(_TABLE.c.key == key)
        if prefix is not None:
            statement = statement.where(_TABLE.c.key.startswith(prefix, autoescape=True))
        with self._engine.connect() as conn:
            rows = conn.execute(statement).all()
        return [LocalRecord(r.kind, r.key, r.owner, json.loads(r.body), r.position) for r in rows]

    def delete(self, kind: str, key: str) -> bool:
        with self._engine.begin() as conn:
            done = conn.execute(delete(_TABLE).where(_TABLE.c.kind == kind, _TABLE.c.key == key))
        return done.rowcount > 0

    def advance(
        self, kind: str, key: str, position: int, body: dict[str, Any] | None = None
    ) -> None:
        """Move the record's position forward to `position` (never back), and replace its
        body if given, in one database transaction."""
        values: dict[str, Any] = {"position": position}
        if body is not None:
            values["body"] = json.dumps(body)
        with self._engine.begin() as conn:
            conn.execute(
                update(_TABLE)
                .where(_TABLE.c.kind == kind, _TABLE.c.key == key, _TABLE.c.position <= position)
                .values(**values)
            )
