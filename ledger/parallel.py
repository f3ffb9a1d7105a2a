"""The first stage of full-chain verification (`ledger.verify.precheck`) in a pool of
worker processes over ranges of blocks, so that `parktrace verify` uses every core.

What a block's check needs besides the block's own rows is the chain's state before it
(the previous header, the validator set, the whole-ledger log frontier, membership, the
domain's rules and running totals, the evidence already committed): that part stays in
one process, which replays the blocks in height order (`ledger.verify._Replay`) and so
also checks every hash link, including those across the ranges' boundaries. The workers
do what the stored rows decide alone: parse every byte and check it canonical, every id,
type, signer and log-index column, the product and claims index rows; and they verify
each transaction's signature with its signer's genesis key and run the domain's
`precheck_block` (payload shapes, and the committed claims the block's claims will be
compared with), handing the verdicts back as the process-local caches these checks
already keep (a hit is the verdict a fresh check gives: both are functions of the
stored bytes). The replay makes every check itself; the verdicts only spare it repeating one.

Ranges are read ahead at most two per worker, so memory stays bounded on any chain.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from . import tx as tx_module
from .crypto import PublicKey
from .genesis import Genesis
from .precheck import Prechecked, precheck
from .store import Store

#: Blocks per task when not told: enough work to outweigh a task's overhead, small
#: enough that the replay starts soon and the workers stay busy to the end.
TARGET_TASKS_PER_WORKER = 16
MAX_CHUNK = 64
#: Signature verdicts this process keeps while it replays (a block's, at least).
VERDICTS_KEPT = 65_536

_worker: dict[str, Any] = {}


def cores() -> int:
    """CPUs this process may run on (what `nproc` prints)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def shareable(url: str) -> bool:
    """Can another process open this store? Not SQLite in memory."""
    if not url.startswith("sqlite"):
        return True
    path = url.split("://", 1)[1].lstrip("/")
    return bool(path) and path != ":memory:" and "mode=memory" not in url


def _open(
    url: str, genesis_doc: dict[str, Any], rules: Callable[[Store], Any] | None, check_indexes: bool
) -> None:
    store = Store(url, migrate=False)
    domain = rules(store) if rules is not None else None  # also keys the product index
    members = Genesis.from_json(genesis_doc).membership().members
    _worker.update(
        store=store,
        keys={fp: m.public_key for fp, m in members.items()},
        precheck=getattr(domain, "precheck_block", None),
        check_indexes=check_indexes,
    )


def _check_range(low: int, high: int) -> list[Prechecked]:
    store: Store = _worker["store"]
    keys: dict[str, PublicKey] = _worker["keys"]
    pure: Callable[[Store, int, tuple[Any, ...]], Any] | None = _worker["precheck"]
    out: list[Prechecked] = []
    for raw in store.raw_blocks(low, high):
        pre = precheck(store, raw, _worker["check_indexes"])
        if pre.block is not None:
            verified: list[bytes] = []
            for tx in pre.block.txs:
                key = keys.get(tx.signer)
                if (
                    key is not None
                    and key.scheme == tx.scheme
                    and key.verify(tx.signature, tx.signing_bytes())
                ):
                    verified.append(tx_module._verified_token(tx, key))
            found = pure(store, pre.height, pre.block.txs) if pure is not None else None
            for tx in pre.block.txs:
                _travel_light(tx)
            pre = replace(pre, verified=tuple(verified), domain=found)
        out.append(pre)
    return out


def _travel_light(tx: Any) -> None:
    """Keep the id and leaf hash the replay needs and drop the cached encodings it does
    not (two thirds of a transaction's pickled size; a cache, recomputed if ever asked)."""
    tx.id, tx.leaf_hash()
    tx.__dict__.pop("_canonical", None)
    tx.__dict__.pop("_signing", None)


def _ranges(first: int, total: int, workers: int, chunk: int | None) -> Iterator[tuple[int, int]]:
    blocks = total - first + 1
    size = chunk or max(1, min(MAX_CHUNK, blocks // (workers * TARGET_TASKS_PER_WORKER) or 1))
    for low in range(first, total + 1, size):
        yield low, min(total, low + size - 1)


def take_verdicts(pre: Prechecked, domain: Any) -> None:
    """Give this process the verdicts a worker made for this block (see the module doc)."""
    for token in pre.verified:
        tx_module._remember_verified(token)
    if pre.domain is not None and hasattr(domain, "prechecked"):
        domain.prechecked(pre.height, pre.domain)


@contextmanager
def prechecked(
    store: Store,
    genesis: Genesis,
    first: int,
    total: int,
    *,
    workers: int,
    rules: Callable[[Store], Any] | None,
    check_indexes: bool,
    chunk: int | None = None,
) -> Iterator[Iterator[Prechecked]]:
    """The first stages of blocks first..total, in height order: from `workers` processes,
    or made here, as they are needed, when one worker is asked for or the store is this
    process's alone."""
    if workers <= 1 or total < first or not shareable(store.url):
        yield (precheck(store, raw, check_indexes) for raw in store.raw_blocks(first, total))
        return
    # spawn, not fork: the caller may be a node process with threads and an event loop.
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        workers,
        mp_context=context,
        initializer=_open,
        initargs=(store.url, genesis.to_json(), rules, check_indexes),
    )
    capacity = tx_module._VERIFIED_MAX  # verdicts are given just before their block's replay
    tx_module.cache_verified_signatures(max(capacity, VERDICTS_KEPT))
    try:
        yield _in_order(pool, _ranges(first, total, workers, chunk), 2 * workers)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        tx_module.cache_verified_signatures(capacity)


def _in_order(
    pool: ProcessPoolExecutor, ranges: Iterator[tuple[int, int]], ahead: int
) -> Iterator[Prechecked]:
    pending: deque[Future[list[Prechecked]]] = deque()
    for _ in range(ahead):
        low_high = next(ranges, None)
        if low_high is not None:
            pending.append(pool.submit(_check_range, *low_high))
    while pending:
        results = pending.popleft().result()
        low_high = next(ranges, None)
        if low_high is not None:
            pending.append(pool.submit(_check_range, *low_high))
        yield from results
