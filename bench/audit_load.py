"""Does a regulator's `/v1/audit/verify` starve a node's other clients? A node
(`parktrace serve --solo`) over a chain of a few thousand signed events answers a steady
client load (`GET /v1/chain`, each with a 1 s timeout) while the audit replays the chain.

    .venv/bin/python bench/audit_load.py [--events 5000] [--clients 4] [--timeout 1.0]
    .venv/bin/python bench/audit_load.py --quick

Reports, for the seconds the audit ran: client requests answered and timed out, latency
p50/p99, and next to it the same load with no audit (the baseline, same run); the node
process's CPU seconds and RSS growth over the audit (its worker process counted apart).

Prints one JSON object; appends a row to bench/RESULTS.md.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import common
import httpx

from ledger.store import Store
from sdk.audit import AuditClient
from sdk.signing import Identity

REGULATOR = "market-supervision-bureau"


@dataclass
class Load:
    """Clients asking the node, each request timed; `window` selects what counts."""

    url: str
    clients: int
    timeout: float
    samples: list[tuple[float, float | None]] = field(default_factory=list)  # start, latency
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._client, daemon=True) for _ in range(self.clients)]
        for thread in threads:
            thread.start()
        return threads

    def _client(self) -> None:
        with httpx.Client(base_url=self.url, timeout=self.timeout) as http:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    http.get("/v1/chain").raise_for_status()
                    latency: float | None = time.monotonic() - started
                except httpx.HTTPError:
                    latency = None
                self.samples.append((started, latency))
                time.sleep(0.01)

    def window(self, start: float, end: float) -> dict[str, float | int | None]:
        inside = [lat for t, lat in list(self.samples) if start <= t < end]
        answered = sorted(lat for lat in inside if lat is not None)
        return {
            "requests": len(inside),
            "timed_out": len(inside) - len(answered),
            "p50_ms": common.ms(common.percentile(answered, 50)),
            "p99_ms": common.ms(common.percentile(answered, 99)),
        }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _cpu_seconds(pid: int) -> tuple[float, float]:
    """(own, waited-for children) CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--events", type=int, default=5000)
    p.add_argument("--per-block", type=int, default=50)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--timeout", type=float, default=1.0, help="client request timeout (s)")
    p.add_argument("--baseline", type=float, default=5.0, help="seconds of load with no audit")
    args = p.parse_args()
    if args.quick:
        args.events, args.baseline = 300, 1.0

    tmp = Path(tempfile.mkdtemp(prefix="parktrace-bench-audit-load-"))
    node: subprocess.Popen[bytes] | None = None
    try:
        directory = tmp / "consortium"
        common.sample_consortium(directory)
        db = tmp / "node.db"
        store = Store(f"sqlite:///{db}")
        common.log(f"building a chain of {args.events} events")
        common.build_chain(store, directory, args.events, per_block=args.per_block)
        store.close()
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log = open(tmp / "node.log", "wb")  # noqa: SIM115 - closed with the process
        serve = ["serve", "--solo", "--consortium", str(directory), "--db", str(db)]
        node = subprocess.Popen(
            [sys.executable, "-m", "cli", *serve, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/v1/chain", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or node.poll() is not None:
                raise SystemExit((tmp / "node.log").read_text()[-3000:])
            time.sleep(0.3)
        load = Load(url, args.clients, args.timeout)
        threads = load.run()
        base_start = time.monotonic()
        time.sleep(args.baseline)
        base_end = time.monotonic()
        rss_before = _rss_mib(node.pid)
        cpu_before = _cpu_seconds(node.pid)
        regulator = Identity.from_consortium(directory, REGULATOR)
        with AuditClient(url, identity=regulator, timeout=600) as audit:
            audit_start = time.monotonic()
            report = audit.verify()
            audit_end = time.monotonic()
        cpu_after = _cpu_seconds(node.pid)
        time.sleep(1.0)
        rss_after = _rss_mib(node.pid)
        load.stop.set()
        for thread in threads:
            thread.join()
    finally:
        if node is not None:
            node.terminate()
            node.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)
    if not report["ok"]:
        raise SystemExit(f"the chain fails verification: {report['problem']}")
    during = load.window(audit_start, audit_end)
    baseline = load.window(base_start, base_end)
    result = {
        "events": report["transactions"],
        "blocks": report["blocks"],
        "clients": args.clients,
        "client_timeout_seconds": args.timeout,
        "audit_wall_seconds": round(audit_end - audit_start, 2),
        "during_audit": during,
        "baseline_no_audit": {**baseline, "seconds": round(base_end - base_start, 1)},
        "node_cpu_seconds_during_audit": round(cpu_after[0] - cpu_before[0], 2),
        "worker_cpu_seconds_during_audit": round(cpu_after[1] - cpu_before[1], 2),
        "node_rss_growth_mib": round(rss_after - rss_before, 1),
    }
    figures = {
        "events": result["events"],
        "audit s": result["audit_wall_seconds"],
        "requests during audit": during["requests"],
        "timed out": during["timed_out"],
        "p99 ms during": during["p99_ms"],
        "p99 ms baseline": baseline["p99_ms"],
        "node CPU s": result["node_cpu_seconds_during_audit"],
        "node RSS +MiB": result["node_rss_growth_mib"],
    }
    common.emit(
        "audit_load",
        result,
        figures,
        args,
        title="Client requests during `/v1/audit/verify` on a live node (1 s timeout).",
    )


if __name__ == "__main__":
    sys.exit(main())
