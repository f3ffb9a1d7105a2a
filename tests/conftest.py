"""Shared fixtures: databases (SQLite always, PostgreSQL when reachable) and a sample
consortium. PostgreSQL tests are skipped with the reason when no server answers, never
silently passed."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from ledger.consortium import Consortium
from ledger.store import Store
from nodes.devchain import DevChain

PG_ADMIN_URL = os.environ.get("PARKTRACE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_unreachable() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except Exception as exc:  # any failure to connect means: skip, and say why
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}".splitlines()[0]


@pytest.fixture(scope="session")
def pg_admin() -> str:
    reason = _pg_unreachable()
    if reason:
        pytest.skip(reason)
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_admin: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    name = f"parktrace_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = pg_admin.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """Each store test runs on both databases."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'node.db'}"
    return request.getfixturevalue("pg_url")


#: Every test consortium is built at this instant, so keys, certificates, genesis and
#: block hashes are the same on every run (block times follow the genesis time).
FIXED_NOW = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def park() -> Consortium:
    """The park's sample consortium with seeded keys."""
    return Consortium.sample(now=FIXED_NOW)


@pytest.fixture
def chain(park: Consortium, tmp_path) -> Iterator[DevChain]:
    """The sample park's chain over a SQLite store at `tmp_path / "node.db"`, committed by
    its validator keys without consensus; closed afterwards."""
    store = Store(f"sqlite:///{tmp_path / 'node.db'}")
    yield DevChain(park.genesis, park.validator_keys, store)
    store.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The fault suite's one summary line, in CI output even when output is captured."""
    from tests.fault_record import RECORD

    if RECORD.faults:
        terminalreporter.write_line(RECORD.line())
