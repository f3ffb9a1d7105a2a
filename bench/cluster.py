"""Consortium throughput and commit latency: 4 node processes on this machine, producers
offering signed ~500-byte EPCIS events at a rate swept upward until committed throughput
stops following it (the saturation point), next to the machine's ceiling measured in the
same run (single-core Ed25519 verify rate x cores / nodes: every node verifies every
transaction once, and the nodes share the cores).

    .venv/bin/python bench/cluster.py [--rates 250,500,1000,...] [--step-seconds 15]
    .venv/bin/python bench/cluster.py --quick        # two short steps, a smoke run

How it measures. Transactions are signed beforehand in a process pool and sent as
pre-encoded `POST /v1/transactions/batch` bodies by one open-loop asyncio producer,
round-robin over the nodes, a batch every `--tick-ms` (it never waits for an answer
before sending the next, so a slow cluster cannot slow the offered load down). A
transaction's commit latency is from the moment its batch was sent to the moment the
node it was sent to logged the commit of the block holding it ("committed block N" is
logged once the block is durable, just before waiting clients are woken); the block of
each transaction is read from that node's store. The raw verify rate is measured again
right before each step, which gets its own ceiling (the shared host's speed drifts by
10-20% within minutes). Committed throughput at a step counts
the transactions of blocks committed in the step's window after a warm-up; between
steps the cluster drains. The sweep stops at the first step that commits less than 90%
of the offered rate, does not drain, or shows p50 latency above 2 s.

Prints one JSON object; appends a row to bench/RESULTS.md.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import common
import httpx
from verify import raw_verify_rate  # bench/verify.py: the same raw rate it reports

from devtools import cluster
from nodes.config import BlockConfig

SATURATED_FRACTION = 0.9
SATURATED_P50 = 2.0


@dataclass
class Sent:
    node: int
    at: float  # time.time() when the batch left
    ids: list[str]
    accepted: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    refused_ids: set[str] = field(default_factory=set)
    answered: float | None = None

    def refuse(self, error: str, ids: list[str]) -> None:
        self.refused[error] = self.refused.get(error, 0) + len(ids)
        self.refused_ids.update(ids)


# -- what the nodes say ------------------------------------------------------------------------
class CommitLog:
    """Commit time of each height on one node, read from its JSON log as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.at: dict[int, float] = {}
        self.txs: dict[int, int] = {}

    def read(self) -> None:
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        for line in data[:end].splitlines():
            if b"committed block" not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            words = entry.get("message", "").split()
            if len(words) < 5 or words[:2] != ["committed", "block"]:
                continue
            stamp = entry["asctime"]  # local time, "YYYY-MM-DD HH:MM:SS,mmm"
            seconds = time.mktime(time.strptime(stamp[:19], "%Y-%m-%d %H:%M:%S"))
            height = int(words[2])
            self.at[height] = seconds + int(stamp[20:23]) / 1000
            self.txs[height] = int(words[4])


def heights_of(db: Path, ids: list[str]) -> dict[str, int]:
    """tx id -> height, for the ids this node's store has committed."""
    found: dict[str, int] = {}
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        for i in range(0, len(ids), 900):
            keys = [bytes.fromhex(t) for t in ids[i : i + 900]]
            marks = ",".join("?" * len(keys))
            rows = connection.execute(
                f"select id, height from transactions where id in ({marks})", keys
            )
            found.update({bytes(k).hex(): h for k, h in rows})
    finally:
        connection.close()
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """CPU seconds every process of the machine has used (Linux /proc/stat, all cores)."""
    import os

    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


# -- the producer ------------------------------------------------------------------------------
async def offer(urls: list[str], batches: list[tuple[list[str], bytes]], tick: float) -> list[Sent]:
    """Send batch k to node k % n at start + k * tick, never waiting for earlier answers."""
    sent: list[Sent] = []
    # Idle connections expire before the server's 5 s keep-alive timeout, so that a batch
    # is never sent on a connection the server is closing.
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=2)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def post(record: Sent, body: bytes) -> None:
            try:
                response = await client.post(
                    f"{urls[record.node]}/v1/transactions/batch",
                    content=body,
                    headers={"content-type": "application/json"},
                )
                if response.status_code != 200:
                    record.refuse(f"http_{response.status_code}", record.ids)
                else:
                    for item in response.json()["results"]:
                        if item["state"] == "pending":
                            record.accepted += 1
                        else:
                            error = item.get("error") or "refused"
                            record.refuse(error, [record.ids[item["index"]]])
            except httpx.HTTPError as exc:
                record.refuse(type(exc).__name__, record.ids)
            record.answered = time.time()

        tasks = []
        start = time.perf_counter() + 0.05
        for k, (ids, body) in enumerate(batches):
            delay = start + k * tick - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            record = Sent(k % len(urls), time.time(), ids)
            sent.append(record)
            tasks.append(asyncio.create_task(post(record, body)))
        await asyncio.gather(*tasks)
    return sent


def make_batches(
    envelopes: list[tuple[str, str]], rate: float, seconds: float, tick: float
) -> list[tuple[list[str], bytes]]:
    """Split signed envelopes into one pre-encoded batch body per tick."""
    batches = []
    ticks = round(seconds / tick)
    done = 0
    for k in range(ticks):
        upto = min(len(envelopes), round(rate * tick * (k + 1)))
        chunk = envelopes[done:upto]
        done = upto
        if not chunk:
            continue
        body = '{"transactions":[' + ",".join(e for _, e in chunk) + "]}"
        batches.append(([i for i, _ in chunk], body.encode()))
    return batches


# -- one step of the sweep ---------------------------------------------------------------------
class Bench:
    def __init__(self, directory: Path, args: Any) -> None:
        self.dir = directory
        self.args = args
        self.members = cluster.create(
            directory,
            nodes=args.nodes,
            p2p_port=cluster.free_ports(),
            api_port=cluster.free_ports(),
            blocks=BlockConfig(max_txs=args.max_txs, batch_ms=args.batch_ms, idle_ms=args.idle_ms),
        )
        self.urls = [m.url for m in self.members]
        self.logs = [CommitLog(directory / m.id / "node.log") for m in self.members]
        self.http = httpx.Client(timeout=30)
        self.next_tx = 0

    def start(self) -> None:
        for member in self.members:
            cluster.start(self.dir, member.id)
        missing = cluster.wait_ready(self.dir, self.members, 120)
        if missing:
            tail = (self.dir / missing[0] / "node.log").read_text()[-2000:]
            raise SystemExit(f"nodes never ready: {missing}\n{tail}")
        self.pids = [cluster.pid_of(self.dir, m.id) for m in self.members]
        deadline = time.monotonic() + 60  # every node linked to every other one
        while time.monotonic() < deadline:
            peers = [len(self.http.get(f"{u}/healthz").json()["peers"]) for u in self.urls]
            if min(peers) == len(self.urls) - 1:
                break
            time.sleep(0.2)

    def stop(self) -> None:
        for member in self.members:
            cluster.stop(self.dir, member.id)
        self.http.close()

    def metrics(self) -> list[dict[str, float]]:
        out = []
        for url in self.urls:
            text = self.http.get(f"{url}/metrics").text
            out.append(
                {
                    "height": metric(text, "parktrace_height"),
                    "rounds": metric(text, "parktrace_consensus_rounds_started_total"),
                    "mempool": metric(text, "parktrace_mempool_size"),
                }
            )
        return out

    def step(self, rate: float, seconds: float) -> dict[str, Any]:
        args = self.args
        tick = args.tick_ms / 1000
        count = round(rate * seconds)
        common.log(f"step {rate:g} tx/s: signing {count} transactions")
        envelopes: list[tuple[str, str]] = []
        for chunk in common.signed_envelopes(self.dir / "consortium", self.next_tx, count):
            envelopes += chunk
        self.next_tx += count
        batches = make_batches(envelopes, rate, seconds, tick)
        del envelopes

        # The machine's speed drifts (shared host): its single-core verify rate, measured
        # right before the step, gives this step's own ceiling.
        raw = raw_verify_rate(1.0)
        ceiling = raw * common.cores() / len(self.urls)
        for log in self.logs:
            log.read()
        before = self.metrics()
        cpu0 = [cpu_seconds(p) for p in self.pids]
        machine0 = machine_cpu_seconds()
        producer0 = time.process_time()
        common.log(f"step {rate:g} tx/s: offering for {seconds:g} s")
        started = time.time()
        sent = asyncio.run(offer(self.urls, batches, tick))
        ended = started + seconds
        producer_cpu = time.process_time() - producer0
        cpu1 = [cpu_seconds(p) for p in self.pids]
        machine_cpu = machine_cpu_seconds() - machine0
        load_wall = time.time() - started
        after = self.metrics()

        accepted_ids = [i for s in sent for i in s.ids if i not in s.refused_ids]
        common.log(f"step {rate:g} tx/s: draining")
        deadline = time.monotonic() + args.drain
        heights: dict[str, int] = {}
        db = self.dir / self.members[0].id / "node.db"
        while True:
            missing = [i for i in accepted_ids if i not in heights]
            heights.update(heights_of(db, missing))
            if len(heights) == len(accepted_ids) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        time.sleep(0.5)  # the other nodes log their commits
        for log in self.logs:
            log.read()
        drained = len(heights) == len(accepted_ids)

        latencies = []
        uncommitted = 0
        refused: dict[str, int] = {}
        for record in sent:
            for error, n in record.refused.items():
                refused[error] = refused.get(error, 0) + n
            commit_log = self.logs[record.node]
            for tx_id in record.ids:
                if tx_id in record.refused_ids:
                    continue
                height = heights.get(tx_id)
                if height is None:
                    uncommitted += 1
                    continue
                at = commit_log.at.get(height)
                if at is None:  # caught up from a peer instead of deciding itself
                    at = max(log.at.get(height, 0.0) for log in self.logs)
                latencies.append(at - record.at)
        offered_total = sum(len(r.ids) for r in sent)
        refused_total = sum(refused.values())

        window0, window1 = started + args.warmup, ended
        reference = self.logs[0]
        in_window = [h for h, at in reference.at.items() if window0 <= at < window1]
        committed_rate = sum(reference.txs[h] for h in in_window) / (window1 - window0)
        blocks = len(in_window)
        heights_done = after[0]["height"] - before[0]["height"]
        rounds = sum(a["rounds"] - b["rounds"] for a, b in zip(after, before, strict=True))
        node_cpu = [b - a for a, b in zip(cpu0, cpu1, strict=True)]
        p50 = common.percentile(latencies, 50)
        result = {
            "offered_tx_per_s": rate,
            "sent_tx_per_s": round(offered_total / load_wall, 1),
            "committed_tx_per_s": round(committed_rate, 1),
            "committed_fraction_of_offered": common.ratio(committed_rate, rate),
            "raw_signature_verifies_per_second_per_core": round(raw),
            "ceiling_tx_per_s": round(ceiling),
            "committed_fraction_of_ceiling": common.ratio(committed_rate, ceiling),
            "commit_latency_ms": {
                "p50": common.ms(p50),
                "p90": common.ms(common.percentile(latencies, 90)),
                "p99": common.ms(common.percentile(latencies, 99)),
                "max": common.ms(max(latencies) if latencies else None),
            },
            "transactions": offered_total,
            "refused": refused,
            "uncommitted_after_drain": uncommitted,
            "blocks_in_window": blocks,
            "mean_block_txs": round(sum(reference.txs[h] for h in in_window) / blocks, 1)
            if blocks
            else 0,
            "rounds_per_height": common.ratio(rounds / len(self.urls), heights_done, 2),
            "node_cpu_seconds": [round(c, 2) for c in node_cpu],
            "cpu_busy_fraction": round(
                (sum(node_cpu) + producer_cpu) / (common.cores() * load_wall), 3
            ),
            "producer_cpu_seconds": round(producer_cpu, 2),
            # Everything else the machine ran meanwhile (other users' work skews a step).
            "other_processes_cpu_fraction": round(
                max(0.0, machine_cpu - sum(node_cpu) - producer_cpu) / (common.cores() * load_wall),
                3,
            ),
        }
        reasons = []
        if committed_rate < SATURATED_FRACTION * rate:
            reasons.append(f"committed {committed_rate:.0f} < {SATURATED_FRACTION:.0%} of offered")
        if not drained:
            reasons.append("did not drain")
        if p50 is None or p50 > SATURATED_P50:
            reasons.append("p50 latency above 2 s")
        if refused_total:
            reasons.append(f"{refused_total} refused")
        result["saturated"] = reasons or False
        common.log(
            f"step {rate:g}: committed {committed_rate:.0f} tx/s, p50 "
            f"{result['commit_latency_ms']['p50']} ms, p99 {result['commit_latency_ms']['p99']} ms"
            + (f", saturated: {'; '.join(reasons)}" if reasons else "")
        )
        return result


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--nodes", type=int, default=4)
    p.add_argument("--rates", default="250,500,750,1000,1250,1500,2000,2500,3000,4000,5000,6000")
    p.add_argument("--step-seconds", type=float, default=15.0)
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of each step not counted")
    p.add_argument("--drain", type=float, default=30.0, help="most seconds to wait after a step")
    p.add_argument("--tick-ms", type=float, default=25.0, help="one batch every this often")
    p.add_argument("--max-txs", type=int, default=BlockConfig.max_txs, help="[blocks] max_txs")
    p.add_argument("--batch-ms", type=int, default=BlockConfig.batch_ms, help="[blocks] batch_ms")
    p.add_argument("--idle-ms", type=int, default=BlockConfig.idle_ms, help="[blocks] idle_ms")
    p.add_argument("--keep", type=Path, default=None, help="keep the cluster directory here")
    p.add_argument(
        "--overload",
        type=float,
        default=2.0,
        help="after the sweep, offer this multiple of the best committed rate (0: skip)",
    )
    args = p.parse_args()
    if args.quick:
        args.rates, args.step_seconds, args.warmup, args.drain = "200", 2.0, 0.5, 20.0
    rates = [float(r) for r in args.rates.split(",")]

    raw = raw_verify_rate(0.5 if args.quick else 3.0)
    ceiling = raw * common.cores() / args.nodes
    common.log(f"raw verify {raw:.0f}/s per core; ceiling {ceiling:.0f} tx/s")

    directory = args.keep or Path(tempfile.mkdtemp(prefix="parktrace-bench-cluster-"))
    bench = Bench(directory, args)
    steps = []
    overload: dict[str, Any] | None = None
    try:
        bench.start()
        for rate in rates:
            steps.append(bench.step(rate, args.step_seconds))
            if steps[-1]["saturated"]:
                break
        if args.overload:
            most = max(s["committed_tx_per_s"] for s in steps)
            overload = bench.step(round(args.overload * most), args.step_seconds)
            overload["of_max_committed"] = common.ratio(overload["committed_tx_per_s"], most)
    finally:
        bench.stop()
        if args.keep is None:
            shutil.rmtree(directory, ignore_errors=True)

    best = max(steps, key=lambda s: s["committed_tx_per_s"])
    following = [s for s in steps if not s["saturated"]]
    at_1000 = next((s for s in steps if s["offered_tx_per_s"] == 1000), None)
    result = {
        "nodes": args.nodes,
        "blocks": {"max_txs": args.max_txs, "batch_ms": args.batch_ms, "idle_ms": args.idle_ms},
        "step_seconds": args.step_seconds,
        "raw_signature_verifies_per_second_per_core": round(raw),
        "ceiling_tx_per_s": round(ceiling),
        "ceiling_rule": "single-core Ed25519 verify rate x cores / nodes",
        "saturation": {
            "highest_offered_followed_tx_per_s": following[-1]["offered_tx_per_s"]
            if following
            else None,
            "max_committed_tx_per_s": best["committed_tx_per_s"],
            # Against the ceiling measured right before that step (the machine drifts).
            "max_committed_fraction_of_ceiling": best["committed_fraction_of_ceiling"],
            "reached": bool(steps[-1]["saturated"]),
        },
        "at_1000_tx_per_s": at_1000["commit_latency_ms"] if at_1000 else None,
        "targets": {
            "committed_tx_per_s": 1500,
            "latency_p50_ms_at_1000": 250,
            "latency_p99_ms_at_1000": 1000,
        },
        "steps": steps,
        # Past the maximum: committed should hold (>= 90% of it), what is accepted should
        # commit within 2 s (p99), the rest be refused 503, nothing accepted be lost.
        "overload": overload,
    }
    figures = {
        "max committed tx/s": best["committed_tx_per_s"],
        "ceiling tx/s": round(ceiling),
        "fraction of ceiling": result["saturation"]["max_committed_fraction_of_ceiling"],
        "saturated at offered": steps[-1]["offered_tx_per_s"] if steps[-1]["saturated"] else "—",
        "p50/p99 ms @1000": (
            f"{at_1000['commit_latency_ms']['p50']}/{at_1000['commit_latency_ms']['p99']}"
            if at_1000
            else "—"
        ),
        "steps (offered→committed, p50/p99 ms)": "; ".join(
            f"{s['offered_tx_per_s']:g}→{s['committed_tx_per_s']:.0f} "
            f"({s['commit_latency_ms']['p50']}/{s['commit_latency_ms']['p99']})"
            for s in steps
        ),
        "overload: offered→committed (of max), accepted p99 ms, 503 refused, lost": (
            f"{overload['offered_tx_per_s']:g}→{overload['committed_tx_per_s']:.0f} "
            f"({overload['of_max_committed']}), {overload['commit_latency_ms']['p99']}, "
            f"{overload['refused'].get('http_503', 0)}, {overload['uncommitted_after_drain']}"
            if overload
            else "—"
        ),
    }
    common.emit(
        "cluster",
        result,
        figures,
        args,
        title=f"{args.nodes} node processes on one machine; "
        "ceiling = raw verify/s x cores / nodes.",
    )


if __name__ == "__main__":
    sys.exit(main())
