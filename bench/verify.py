"""Verifier throughput: transactions verified per second per core on a 10,000-tx chain,
next to the raw Ed25519 verify rate measured in the same run (machines are noisy, so the
ratio is the figure to compare across runs).

    .venv/bin/python bench/verify.py [--txs 10000] [--per-block 100] [--db URL]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from devtools.samples import sample_event_tx
from ledger.consortium import Consortium
from ledger.crypto import PrivateKey
from ledger.store import Store
from ledger.verify import verify_store
from nodes.devchain import DevChain
from traceability.validity import trace_rules


def raw_verify_rate(seconds: float = 2.0) -> float:
    key = PrivateKey.from_seed(bytes(32))
    message = os.urandom(600)
    signature = key.sign(message)
    public = key.public_key
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(500):
            public.verify(signature, message)
        count += 500
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=10_000)
    parser.add_argument("--per-block", type=int, default=100)
    parser.add_argument("--db", default=None, help="database URL (default: a temporary SQLite)")
    args = parser.parse_args()

    consortium = Consortium.sample(seed=b"bench-verify")
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        store = Store(url)
        chain = DevChain(consortium.genesis, consortium.validator_keys, store)
        build_started = time.perf_counter()
        made = 0
        while made < args.txs:
            n = min(args.per_block, args.txs - made)
            chain.commit_block([sample_event_tx(consortium, made + i) for i in range(n)])
            made += n
        build_seconds = time.perf_counter() - build_started

        raw = raw_verify_rate()
        cpu_started = time.process_time()
        report = verify_store(store, consortium.genesis, rules=trace_rules)
        cpu = time.process_time() - cpu_started
        store.close()
    assert report.ok, report.problem
    per_core = report.transactions / cpu
    print(
        json.dumps(
            {
                "benchmark": "verify",
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "db": "sqlite" if args.db is None else args.db.split(":", 1)[0],
                "transactions": report.transactions,
                "blocks": report.blocks,
                "signatures": report.signatures,
                "build_seconds": round(build_seconds, 2),
                "verify_wall_seconds": report.seconds,
                "verify_cpu_seconds": round(cpu, 3),
                "verified_tx_per_second_per_core": round(per_core),
                "raw_signature_verifies_per_second": round(raw),
                "ratio_tx_to_raw_signatures": round(per_core / raw, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
