"""The regulator's full-chain verification as a job (issue 21, must-show 3): on a chain of
300,000 events, `POST /v1/audit/jobs` starts it and answers at once, the job is polled
(`GET /v1/audit/jobs/{id}`, once a second, as `parktrace audit verify` does) until done,
and the longest of these requests is what counts (the target: none over 30 s), next to
the job's own duration. The same run also times the old single request (`GET
/v1/audit/verify`, which waits for the whole verification) as the baseline.

    .venv/bin/python bench/audit_job.py [--events 300000] [--per-block 1000]
    .venv/bin/python bench/audit_job.py --quick

The node is the solo node of the park's sample consortium over a SQLite file, with the
audit API, in this process (FastAPI's test client: real ASGI requests, no network); the
job's verification runs in its worker processes, as on a real node. The chain is built
with `DevChain` as in bench/audit.py. Prints one JSON object; appends a row to
bench/RESULTS.md.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import common

MAX_REQUEST_SECONDS = 30.0


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--events", type=int, default=300_000)
    p.add_argument("--per-block", type=int, default=1000)
    args = p.parse_args()
    if args.quick:
        args.events, args.per_block = 2000, 200

    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.routes import audit
    from ledger.identity import Credential
    from ledger.store import Store
    from nodes.solo import SoloNode
    from sdk.audit import AuditClient
    from sdk.signing import Identity

    tmp = Path(tempfile.mkdtemp(prefix="parktrace-bench-audit-job-"))
    try:
        directory = tmp / "consortium"
        consortium = common.sample_consortium(directory)
        url = f"sqlite:///{tmp / 'chain.db'}"
        store = Store(url)
        common.log(f"building a chain of {args.events} events")
        common.build_chain(store, directory, args.events, per_block=args.per_block)
        store.close()
        common.log("starting the node")
        store = Store(url)
        node = SoloNode(consortium.genesis, consortium.validator_keys, store)
        app = create_app(node)
        audit.mount(app)
        holder = consortium.user("market-supervision-bureau")
        regulator = Identity(
            holder.key, holder.fingerprint, Credential.from_pem(holder.certificate)
        )
        with TestClient(app) as http:
            client = AuditClient("http://t", identity=regulator, http=http)
            common.log("one request: GET /v1/audit/verify")
            with common.Stopwatch() as single:
                whole = client.verify()
            common.log(f"  {single.wall:.1f} s; now as a job")
            longest, polls = 0.0, 0
            started = time.perf_counter()
            t0 = time.perf_counter()
            job = client.start_job("verify")
            longest = max(longest, time.perf_counter() - t0)
            while job["state"] == "running":
                time.sleep(1.0)
                t0 = time.perf_counter()
                job = client.job(job["id"])
                longest = max(longest, time.perf_counter() - t0)
                polls += 1
                if polls % 15 == 0:
                    common.log(
                        f"  {job['events_checked']}/{job['events_total']} events, "
                        f"{job['events_per_second']}/s, eta {job['eta_seconds']} s"
                    )
            job_seconds = time.perf_counter() - started
        store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if job["state"] != "done" or not job["result"]["ok"] or not whole["ok"]:
        raise SystemExit(f"the job did not verify the chain: {job['error'] or job['result']}")
    events = job["result"]["transactions"]
    result = {
        "events": events,
        "single_request_seconds": round(single.wall, 1),
        "job_seconds": round(job_seconds, 1),
        "job_events_per_second": round(events / job_seconds),
        "requests": polls + 1,
        "longest_request_seconds": round(longest, 3),
        "target_longest_request_seconds": MAX_REQUEST_SECONDS,
        "ratio_longest_request_to_single_request": common.ratio(longest, single.wall),
    }
    figures = {
        "events": events,
        "one request s": result["single_request_seconds"],
        "job s": result["job_seconds"],
        "requests": result["requests"],
        "longest request s": result["longest_request_seconds"],
        "ratio to one request": result["ratio_longest_request_to_single_request"],
    }
    common.emit(
        "audit_job",
        result,
        figures,
        args,
        title="Full-chain verification as a job (`POST /v1/audit/jobs`, polled): the longest "
        "request against the single `GET /v1/audit/verify` of the same run.",
    )


if __name__ == "__main__":
    sys.exit(main())
