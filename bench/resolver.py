"""Resolver and read API with 1,000,000 events in the store: requests per second and
latency of the consumer page (HTML) and its JSON, of the JSON product history and of a
transaction with its receipt, next to a bare FastAPI endpoint served the same way and
measured in the same run (the ratio is the figure to compare).

    .venv/bin/python bench/resolver.py [--events 1000000] [--seconds 5] [--concurrency 4]
    .venv/bin/python bench/resolver.py --keep var/bench-resolver   # reuse the dataset
    .venv/bin/python bench/resolver.py --quick

The store: the park's three cases as recorded histories with their serialised codes
(`api.histories`, 1,000 mask codes, 24 orange boxes, 60 powder jars), followed by
`--events` signed ~500-byte sample EPCIS events, 1,000 to a block. The API's event index
is built on disk alongside (`ApiSettings.index_url`, what `--index-db` does), so the server
starts warm. Each server is one uvicorn process on loopback, configured as a node serves
its API (h11, no access log): the node's app over a read-only `NodeCore` with the
resolver key installed, and a bare FastAPI app whose endpoint returns a small JSON object
(`def`, run in the thread pool like the resolver's route; an `async def` one is measured
too). Load: `--concurrency` keep-alive connections, each sending its next request when
the answer is in (closed loop), from a minimal HTTP/1.1 client in this process; latency
is also measured on one connection (no queueing). Every answer must be 200.
A scan of an item code is logged and judged for copying, as on a phone: codes are
spread over the 1,084 issued ones. The API computes a page, its JSON and a product's
history once per chain height and keeps a transaction's answer once its certificate is
fixed, so repeated lookups are cheaper than the first: before any repeats, the first
request of every distinct target is timed on its own (`first_request_each`, of which the
first 300 also as `first_request_first_300`, the figure of earlier rows); the loaded and
one-connection figures are of repeats at one chain height (a popular code's burst of
scans), each scan still recorded and judged.

Prints one JSON object; appends a row to bench/RESULTS.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import common

from devtools.cluster import free_ports

HOST = "id.parktrace.example"
RESOLVER_SEED = b"parktrace bench resolver"
DATASET = "dataset.json"
TARGET_RATIO = 0.5
TARGET_P99_MS = 20
FIRST_PASS = 300  # the once-each figure of earlier rows: the first this many targets


# -- the servers (this script run with --serve) ---------------------------------------------
def serve(kind: str, port: int, directory: Path) -> None:
    import uvicorn

    if kind == "bare":
        from fastapi import FastAPI

        app = FastAPI()

        @app.get("/bare")
        def bare() -> dict[str, Any]:
            return {"status": "ok", "node": "bare"}

        @app.get("/bare-async")
        async def bare_async() -> dict[str, Any]:
            return {"status": "ok", "node": "bare"}

    else:
        from api.app import create_app
        from api.codes.service import CodesSettings, install
        from api.services import ApiSettings
        from ledger.genesis import Genesis
        from ledger.store import Store
        from nodes.config import ApiLimits
        from nodes.service import NodeCore
        from traceability.codes.sealing import ResolverKey

        genesis = Genesis.load(directory / "consortium" / "genesis.json")
        store = Store(f"sqlite:///{directory / 'node.db'}")  # a kept dataset: migrated
        node = NodeCore(genesis, store, genesis.membership())
        # One load generator is one client address: without a per-client rate, so what is
        # measured is the cost of a lookup (the other edge limits stay as a node has them).
        settings = ApiSettings(index_url=_index_url(directory), limits=ApiLimits(rate=0))
        app = create_app(node, settings=settings)
        key = ResolverKey.from_seed(RESOLVER_SEED)
        install(app, CodesSettings(resolver_host=HOST, resolver_keys=(key,)))
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off"
    )
    uvicorn.Server(config).run()


def _index_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'index.db'}"


# -- the dataset -----------------------------------------------------------------------------
def _follow(store_url: str, index_url: str, stop: Any) -> None:
    """Keep the on-disk event index up with the store while it is being built."""
    from ledger.store import Store
    from traceability.epcis.index import EventIndex

    store = Store(store_url, migrate=False)
    index = EventIndex(store, index_url)
    while not stop.is_set():
        if index.sync() == index.height:
            stop.wait(0.5)
    index.close()
    store.close()


def _in_events(store: Any, index_url: str, wanted: list[str]) -> set[str]:
    """Those of `wanted` that some indexed event names."""
    from sqlalchemy import select

    from traceability.epcis.index import EventIndex, canonical_identifier, identifiers

    index = EventIndex(store, index_url)
    by_canonical = {canonical_identifier(i): i for i in wanted}
    rows = index.run(
        select(identifiers.c.identifier).where(identifiers.c.identifier.in_(list(by_canonical)))
    )
    index.close()
    return {by_canonical[r[0]] for r in rows}


def build(directory: Path, events: int, masks: int) -> dict[str, Any]:
    import multiprocessing

    from api.histories import build_histories
    from ledger.store import Store
    from nodes.devchain import DevChain
    from traceability.codes.sealing import ResolverKey
    from traceability.epcis.index import EventIndex

    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    consortium = common.sample_consortium(directory / "consortium")
    store_url = f"sqlite:///{directory / 'node.db'}"
    store = Store(store_url)
    chain = DevChain(consortium.genesis, consortium.validator_keys, store)
    key = ResolverKey.from_seed(RESOLVER_SEED)
    cases = build_histories(consortium, chain, [key.public], HOST, masks=masks)
    EventIndex(store, _index_url(directory)).close()  # create its tables before following

    stop = multiprocessing.Event()
    follower = multiprocessing.Process(
        target=_follow, args=(store_url, _index_url(directory), stop), daemon=True
    )
    follower.start()
    try:
        common.build_chain(
            store,
            directory / "consortium",
            events,
            chain=chain,
            verify=False,  # 1,000,000 signatures this script just made: audit.py verifies
            progress=lambda n: n % 100_000 == 0 and common.log(f"  {n} events"),
        )
    finally:
        stop.set()
        follower.join()
    index = EventIndex(store, _index_url(directory))
    index.sync()
    indexed = index.count()
    index.close()

    codes, identifiers = [], []
    for case in cases.values():
        for link in case.codes:
            uri = urlsplit(link.uri(HOST))
            codes.append(uri.path + (f"?{uri.query}" if uri.query else ""))
            identifiers.append(link.instance_id)
    named = _in_events(store, _index_url(directory), identifiers)
    identifiers = [i for i in identifiers if i in named]  # histories of what events name
    rng = random.Random(7)
    height = store.height()
    tx_ids = []
    for raw in store.raw_blocks(rng.randrange(1, height), None, batch=1):
        tx_ids += [t.id.hex() for t in raw.txs]
        if len(tx_ids) >= 500:
            break
    more = [h for h in (rng.randrange(1, height + 1) for _ in range(50))]
    for h in more:
        raw = next(store.raw_blocks(h, h), None)
        if raw and raw.txs:
            tx_ids.append(raw.txs[rng.randrange(len(raw.txs))].id.hex())
    store.close()
    dataset = {
        "events": events,
        "masks": masks,
        "height": height,
        "indexed_events": indexed,
        "codes": codes,
        "identifiers": identifiers,
        "tx_ids": tx_ids,
    }
    (directory / DATASET).write_text(json.dumps(dataset), encoding="utf-8")
    return dataset


# -- the load ----------------------------------------------------------------------------------
def request(path: str, accept: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAccept: {accept}\r\n"
        "Accept-Language: en-US,en;q=0.9\r\nUser-Agent: parktrace-bench\r\n\r\n"
    ).encode("latin-1")


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
) -> tuple[int, int]:
    """Send one request, read the whole answer: (status, body bytes)."""
    writer.write(data)
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("server closed the connection")
    status = int(status_line.split()[1])
    length, chunked = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        await reader.readexactly(length)
        return status, length
    total = 0
    while True:
        size = int((await reader.readline()).split(b";")[0], 16)
        await reader.readexactly(size + 2)
        total += size
        if size == 0:
            return status, total


async def _load(
    port: int, requests: list[bytes], seconds: float, connections: int
) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sizes: list[int] = []
    deadline = time.perf_counter() + seconds

    async def client(offset: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = offset
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                status, size = await _exchange(reader, writer, requests[i % len(requests)])
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
                sizes.append(size)
                i += connections
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(connections)))
    wall = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "requests_per_second": round(len(latencies) / wall, 1),
        "p50_ms": common.ms(common.percentile(latencies, 50)),
        "p99_ms": common.ms(common.percentile(latencies, 99)),
        "max_ms": common.ms(max(latencies) if latencies else None),
        "mean_body_bytes": round(sum(sizes) / len(sizes)) if sizes else 0,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


async def _once_each(port: int, requests: list[bytes]) -> list[tuple[float, int]]:
    """Each distinct request once, in order, on one connection: answers nothing has asked
    for before at this height. (seconds, status) of each."""
    timed: list[tuple[float, int]] = []
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for data in dict.fromkeys(requests):
            started = time.perf_counter()
            status, _ = await _exchange(reader, writer, data)
            timed.append((time.perf_counter() - started, status))
    finally:
        writer.close()
    return timed


def _once_figures(timed: list[tuple[float, int]]) -> dict[str, Any]:
    latencies = [t for t, _ in timed]
    statuses: dict[int, int] = {}
    for _, status in timed:
        statuses[status] = statuses.get(status, 0) + 1
    return {
        "requests": len(latencies),
        "requests_per_second": round(len(latencies) / sum(latencies), 1) if latencies else 0,
        "p50_ms": common.ms(common.percentile(latencies, 50)),
        "p99_ms": common.ms(common.percentile(latencies, 99)),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def measure(
    server: Server, requests: list[bytes], seconds: float, concurrency: int
) -> dict[str, Any]:
    port = server.port
    timed = asyncio.run(_once_each(port, requests))  # every distinct target, once
    first, first_300 = _once_figures(timed), _once_figures(timed[:FIRST_PASS])
    asyncio.run(_load(port, requests, min(1.0, seconds / 4), concurrency))  # warm up
    cpu = server.cpu_seconds()
    loaded = asyncio.run(_load(port, requests, seconds, concurrency))
    # What a request costs the server's CPU, whatever else the machine runs meanwhile.
    loaded["server_cpu_ms_per_request"] = round(
        (server.cpu_seconds() - cpu) * 1000 / max(1, loaded["requests"]), 3
    )
    single = asyncio.run(_load(port, requests, seconds / 2, 1))
    runs = (first, loaded, single)
    ok = all(k == "200" for run in runs for k in run["statuses"])
    return {
        "ok": ok,
        "requests_per_second": loaded["requests_per_second"],
        "cpu_ms_per_request": loaded["server_cpu_ms_per_request"],
        "loaded": loaded,
        "p50_ms": single["p50_ms"],
        "p99_ms": single["p99_ms"],
        "single_connection": single,
        "first_request_each": first,
        "first_request_first_300": first_300,
    }


class Server:
    def __init__(self, kind: str, directory: Path) -> None:
        self.port = free_ports(0)
        self.log = open(directory / f"server-{kind}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, "--port", str(self.port), str(directory)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.kind, self.directory = kind, directory

    def wait(self, path: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                status, _ = asyncio.run(self._once(path))
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        tail = (self.directory / f"server-{self.kind}.log").read_text(errors="replace")[-3000:]
        raise SystemExit(f"the {self.kind} server never answered {path}:\n{tail}")

    async def _once(self, path: str) -> tuple[int, int]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            return await _exchange(reader, writer, request(path, "application/json"))
        finally:
            writer.close()

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(") ", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--masks", type=int, default=1000, help="mask codes issued (and scanned)")
    p.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    p.add_argument("--concurrency", type=int, default=4, help="keep-alive connections")
    p.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="build the dataset in this directory and keep it; reuse it when it matches",
    )
    p.add_argument("--serve", choices=("bare", "node"), help=argparse_hidden())
    p.add_argument("--port", type=int, help=argparse_hidden())
    p.add_argument("directory", nargs="?", type=Path, help=argparse_hidden())
    args = p.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.directory)
        return
    if args.quick:
        args.events, args.masks, args.seconds, args.concurrency = 1000, 20, 0.15, 2

    directory = args.keep or Path(tempfile.mkdtemp(prefix="parktrace-bench-resolver-"))
    marker = directory / DATASET
    dataset = json.loads(marker.read_text()) if marker.exists() else None
    reused = bool(dataset and dataset["events"] == args.events and dataset["masks"] == args.masks)
    build_seconds = None
    if not reused:
        common.log(f"building {args.events} events (+ the three cases) in {directory}")
        with common.Stopwatch() as watch:
            dataset = build(directory, args.events, args.masks)
        build_seconds = round(watch.wall, 1)
        common.log(f"built in {build_seconds} s")
    assert dataset is not None

    rng = random.Random(11)
    codes = dataset["codes"][:]
    rng.shuffle(codes)
    identifiers = dataset["identifiers"][:]
    rng.shuffle(identifiers)
    targets = {
        "page_html": [request(c, "text/html") for c in codes],
        "page_json": [request(c, "application/json") for c in codes],
        "history_json": [
            request(f"/v1/products/{quote(i, safe='')}/history", "application/json")
            for i in identifiers
        ],
        "transaction_json": [
            request(f"/v1/transactions/{t}", "application/json") for t in dataset["tx_ids"]
        ],
    }
    bare = Server("bare", directory)
    node = Server("node", directory)
    results: dict[str, Any] = {}
    try:
        bare.wait("/bare")
        node.wait("/v1/chain")
        secs, conc = args.seconds, args.concurrency
        common.log("measuring")
        load_before = os.getloadavg()[0]  # the machine may be shared: say how busy it was
        bare_runs = [measure(bare, [request("/bare", "application/json")], secs, conc)]
        bare_async = measure(bare, [request("/bare-async", "application/json")], secs, conc)
        cpu0 = node.cpu_seconds()
        for name, requests in targets.items():
            results[name] = measure(node, requests, secs, conc)
            common.log(f"  {name}: {results[name]['requests_per_second']} req/s")
        node_cpu = node.cpu_seconds() - cpu0
        load = (load_before, os.getloadavg()[0])
        bare_runs.append(measure(bare, [request("/bare", "application/json")], secs, conc))
    finally:
        bare.stop()
        node.stop()
        if args.keep is None:
            shutil.rmtree(directory, ignore_errors=True)

    bare_rps = sum(r["requests_per_second"] for r in bare_runs) / len(bare_runs)
    bare_cpu = sum(r["cpu_ms_per_request"] for r in bare_runs) / len(bare_runs)
    for data in results.values():
        data["cpu_ratio_to_bare"] = common.ratio(bare_cpu, data["cpu_ms_per_request"])
    for data in results.values():
        data["ratio_to_bare"] = common.ratio(data["requests_per_second"], bare_rps)
    result = {
        "events": dataset["events"],
        "indexed_events": dataset["indexed_events"],
        "height": dataset["height"],
        "issued_codes": len(dataset["codes"]),
        "dataset_reused": reused,
        "build_seconds": build_seconds,
        "seconds_per_measurement": args.seconds,
        "concurrency": args.concurrency,
        "bare": {
            "requests_per_second": round(bare_rps, 1),
            "cpu_ms_per_request": round(bare_cpu, 3),
            "runs": bare_runs,
            "async_endpoint": bare_async,
        },
        "lookups": results,
        "node_server_cpu_seconds": round(node_cpu, 1),
        "load_average_1min": {"before": load[0], "after": load[1]},
        "targets": {"ratio_to_bare": TARGET_RATIO, "p99_ms": TARGET_P99_MS},
    }
    figures = {
        "events": dataset["events"],
        "bare req/s": round(bare_rps),
        **{
            f"{name} req/s (ratio)": f"{d['requests_per_second']:.0f} ({d['ratio_to_bare']})"
            for name, d in results.items()
        },
        "p50/p99 ms (1 conn)": "; ".join(
            f"{name} {d['p50_ms']}/{d['p99_ms']}" for name, d in results.items()
        ),
        "first request of every target: req/s, p99 ms": "; ".join(
            f"{name} {d['first_request_each']['requests_per_second']:.0f}, "
            f"{d['first_request_each']['p99_ms']}"
            for name, d in results.items()
        ),
        "server CPU ms/request (bare)": "; ".join(
            [f"bare {bare_cpu:.2f}"]
            + [f"{name} {d['cpu_ms_per_request']:.2f}" for name, d in results.items()]
        ),
        "all 200": all(d["ok"] for d in results.values()),
        "load avg before/after": f"{load[0]:.1f}/{load[1]:.1f}",
    }
    common.emit(
        "resolver",
        result,
        figures,
        args,
        title="Consumer page, its JSON, product history and transaction lookups per second "
        "with the store full, next to a bare FastAPI endpoint (same run, same server setup).",
    )


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
