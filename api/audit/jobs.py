"""Long audit checks as jobs: a full-chain verification (or a report's draft, which
starts with one) runs in the node, not in a request. Starting one answers at once with
the job; asking for the job answers at once with how far it is (events checked of the
total, the rate, the time left) and, when done, its result. The job goes on whether or
not anyone is asking, so a client that left (a closed page, a restarted CLI) comes back
to it by its id, or finds it in the list; no request waits for the chain, however long.

The verification itself runs in a worker process of its own (as api.audit.verification
explains), which drives the verifier's process pool over every core and sends its
progress back over a queue; a thread of the node waits for it. One job of a kind runs at
a time per node: starting another while one runs gives the running one. Finished jobs
are kept (the last few) until the node stops.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ledger.genesis import Genesis
from ledger.parallel import cores, shareable
from ledger.store import Store
from ledger.verify import Checked, verify_store
from nodes.service import NodeCore
from traceability.validity import trace_rules

from .verification import WORKER_NICENESS, finish_report

KINDS = ("verify", "report")
KEPT = 20
#: Seconds between two progress messages of the worker process.
PROGRESS_EVERY = 0.5


@dataclass
class Job:
    id: str
    kind: str
    node: str | None
    started_at: float
    state: str = "running"  # running, done, failed
    events: int = 0
    events_total: int = 0
    height: int = 0
    heights: int = 0
    finished_at: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def progress(self, checked: Checked) -> None:
        with self._lock:
            self.events, self.events_total = checked.events, checked.events_total
            self.height, self.heights = checked.height, checked.heights

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            end = self.finished_at or time.time()
            seconds = max(end - self.started_at, 1e-6)
            rate = self.events / seconds
            left = self.events_total - self.events
            return {
                "id": self.id,
                "kind": self.kind,
                "node": self.node,
                "state": self.state,
                "events_checked": self.events,
                "events_total": self.events_total,
                "height": self.height,
                "heights": self.heights,
                "seconds": round(seconds, 1),
                "events_per_second": round(rate),
                "eta_seconds": (
                    round(left / rate, 1) if self.state == "running" and rate > 0 else None
                ),
                "result": self.result,
                "error": self.error,
            }


def _in_process(
    url: str, genesis_doc: dict[str, Any], workers: int, out: Any
) -> None:  # pragma: no cover - runs in the worker process
    """The verification in the job's worker process: progress and the report on `out`."""
    os.nice(WORKER_NICENESS)
    last = [0.0]

    def tell(checked: Checked) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY or checked.height == checked.heights:
            last[0] = now
            out.put(("progress", checked))

    store = Store(url, migrate=False)
    try:
        report = verify_store(
            store,
            Genesis.from_json(genesis_doc),
            rules=trace_rules,
            workers=workers,
            on_checked=tell,
        )
        out.put(("done", report.to_json()))
    except Exception as exc:  # the job says it failed, and why
        out.put(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        store.close()


def _verify(node: NodeCore, job: Job) -> dict[str, Any]:
    """The node's verification report, its progress told to `job` as it goes."""
    url, genesis = node.store.url, node.genesis
    if not shareable(url):
        data = verify_store(node.store, genesis, rules=trace_rules, on_checked=job.progress)
        return finish_report(node, data.to_json())
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    worker = context.Process(
        target=_in_process, args=(url, genesis.to_json(), cores(), out), daemon=False
    )
    worker.start()
    try:
        while True:
            try:
                what, value = out.get(timeout=1.0)
            except queue.Empty:
                if not worker.is_alive():
                    raise RuntimeError(f"the verifier process ended ({worker.exitcode})") from None
                continue
            if what == "progress":
                job.progress(value)
            elif what == "done":
                return finish_report(node, value)
            else:
                raise RuntimeError(value)
    finally:
        worker.join(timeout=10)


class Jobs:
    """The audit jobs of one node."""

    def __init__(self, node: NodeCore, node_id: str | None) -> None:
        self.node, self.node_id = node, node_id
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, kind: str, draft: Callable[[dict[str, Any]], dict[str, Any]]) -> Job:
        """Start a job of `kind` (or give the one of that kind still running). `draft`
        turns a verification report into a report's draft (the "report" kind)."""
        with self._lock:
            for job in self._jobs.values():
                if job.kind == kind and job.state == "running":
                    return job
            job = Job(uuid.uuid4().hex, kind, self.node_id, time.time())
            self._jobs[job.id] = job
            while len(self._jobs) > KEPT:
                self._jobs.popitem(last=False)
        thread = threading.Thread(
            target=self._run, args=(job, draft), name=f"audit-job-{job.id[:8]}", daemon=True
        )
        thread.start()
        return job

    def _run(self, job: Job, draft: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        try:
            verification = _verify(self.node, job)
            result = draft(verification) if job.kind == "report" else verification
            state, error = "done", None
        except Exception as exc:  # reported in the job, never lost
            result, state, error = None, "failed", f"{type(exc).__name__}: {exc}"
        with job._lock:
            job.result, job.state, job.error = result, state, error
            job.finished_at = time.time()

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        with self._lock:
            return list(reversed(self._jobs.values()))


_registry: dict[int, Jobs] = {}
_registry_lock = threading.Lock()


def jobs_of(node: NodeCore, node_id: str | None) -> Jobs:
    """The job list of `node` (made on first use; lives as long as the node process)."""
    with _registry_lock:
        found = _registry.get(id(node))
        if found is None or found.node is not node:
            found = _registry[id(node)] = Jobs(node, node_id)
        return found
