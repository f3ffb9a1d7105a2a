"""Capture jobs of the EPCIS REST binding: `POST /capture` answers 202 with the job's URL
and the job tells, as the events' transactions commit, whether it succeeded.

Behaviour follows the `GS1-Capture-Error-Behaviour` header:
  * rollback (the default): every event is checked — EPCIS rules, duplicates, the
    consortium's write policy — before any is submitted; one bad event rejects the
    whole document and nothing is recorded;
  * proceed: valid events are recorded, the others are listed in the job's errors.
A committed transaction cannot be rolled back, so the rare event that passes admission
and is then refused by the block (its signer was revoked meanwhile) is reported in the
job's errors whatever the behaviour.

Jobs are kept in this node's memory (the most recent `MAX_JOBS`); the events themselves
are on the ledger, and each job lists their transaction ids for receipts.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

from ledger.timefmt import now
from nodes.service import NodeCore

Behaviour = Literal["rollback", "proceed"]
MAX_JOBS = 1000


@dataclass
class CaptureJob:
    id: str
    created_at: str
    behaviour: Behaviour
    org: str
    total: int
    accepted: list[tuple[int, str | None, str]] = field(default_factory=list)  # idx, eventID, tx
    errors: list[dict[str, Any]] = field(default_factory=list)
    finished_at: str | None = None

    def view(self, node: NodeCore) -> dict[str, Any]:
        """The job as the EPCIS binding shows it, with this ledger's transaction states."""
        committed = node.store.known_tx_ids([tx for _, _, tx in self.accepted])
        transactions, errors, running = [], list(self.errors), False
        for index, event_id, tx_id in self.accepted:
            if tx_id in committed:
                state = "committed"
            elif tx_id in node.mempool:
                state, running = "pending", True
            else:
                status = node.status(tx_id)
                state = status.state
                if state == "rejected":
                    errors.append(
                        {
                            "eventIndex": index,
                            "eventID": event_id,
                            "error": status.error,
                            "message": status.reason,
                        }
                    )
            transactions.append(
                {"eventIndex": index, "eventID": event_id, "transaction": tx_id, "state": state}
            )
        if not running and self.finished_at is None:
            self.finished_at = now()
        return {
            "captureID": self.id,
            "createdAt": self.created_at,
            "finishedAt": None if running else self.finished_at,
            "running": running,
            "success": not errors,
            "captureErrorBehaviour": self.behaviour,
            "organization": self.org,
            "eventCount": self.total,
            "errors": sorted(errors, key=lambda e: e["eventIndex"]),
            "transactions": transactions,
        }


class CaptureJobs:
    """The most recent capture jobs of this node."""

    def __init__(self, limit: int = MAX_JOBS) -> None:
        self._jobs: OrderedDict[str, CaptureJob] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def create(self, behaviour: Behaviour, org: str, total: int) -> CaptureJob:
        job = CaptureJob("cap-" + secrets.token_hex(12), now(), behaviour, org, total)
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > self._limit:
                self._jobs.popitem(last=False)
        return job

    def get(self, job_id: str) -> CaptureJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def recent(self, limit: int) -> list[CaptureJob]:
        with self._lock:
            return list(reversed(self._jobs.values()))[:limit]
