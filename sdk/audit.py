"""The regulator's SDK: every audit request is signed here (RFC 9421) with the regulator's
key, which never leaves this process; recalls are signed here as transactions.

    from sdk.audit import AuditClient
    with AuditClient("http://127.0.0.1:8601", identity=regulator) as audit:
        report = audit.verify()
        tree = audit.trace("https://id.gs1.org/01/06904567000234/10/SQP-261028", "backward")
        audit.recall(lot, "lead above the limit", wait=30)

Composes `sdk.client.ParkTraceClient` (chain id, submission, waiting) rather than
extending it; failures are `ApiClientError` like the rest of the SDK.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

from sdk.client import ParkTraceClient
from sdk.signing import Identity

PREFIX = "/v1/audit"


class AuditClient:
    def __init__(
        self,
        url: str,
        *,
        identity: Identity,
        timeout: float = 120.0,
        http: httpx.Client | None = None,
    ) -> None:
        """`http`: an httpx client of your own (tests, TLS settings); left open by close()."""
        self.identity = identity
        self._owned = http is None
        self._http = http or httpx.Client(base_url=url.rstrip("/"), timeout=timeout)
        self.sdk = ParkTraceClient(url, identity=identity, http=self._http)

    def close(self) -> None:
        if self._owned:
            self._http.close()

    def __enter__(self) -> AuditClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    # -- plumbing ------------------------------------------------------------------------
    def request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None
    ) -> httpx.Response:
        """A signed request; raises ApiClientError for any error answer."""
        content = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        clean = {k: str(v) for k, v in (params or {}).items() if v is not None}
        return self.sdk.signed(method, path, content=content, params=clean or None, headers=headers)

    def _get(self, path: str, **params: Any) -> Any:
        return self.request("GET", PREFIX + path, params=params).json()

    # -- audit ---------------------------------------------------------------------------
    def verify(self) -> dict[str, Any]:
        return self._get("/verify")

    def blocks(self, start: int, end: int) -> dict[str, Any]:
        return self._get("/blocks", start=start, end=end)

    def compare(self) -> dict[str, Any]:
        return self._get("/compare")

    def receipt(self, tx_id: str) -> bytes:
        return self.request("GET", f"{PREFIX}/proofs/receipt/{tx_id}").content

    def consistency(self, first: int, second: int) -> bytes:
        path = f"{PREFIX}/proofs/consistency"
        return self.request("GET", path, params={"first": first, "second": second}).content

    def evidence(self) -> dict[str, Any]:
        return self._get("/evidence")

    def reports(self, code: str | None = None, limit: int = 100) -> dict[str, Any]:
        """Consumers' reports (举报) on the ledger, newest first."""
        return self._get("/reports", code=code, limit=limit)

    def report_photo(self, sha256: str) -> bytes:
        return self.request("GET", f"{PREFIX}/reports/photos/{sha256}").content

    def evidence_detail(self, key: str) -> dict[str, Any]:
        return self._get(f"/evidence/{quote(key, safe='')}")

    def search(self, **filters: Any) -> dict[str, Any]:
        return self._get("/events", **filters)

    def search_csv(self, **filters: Any) -> bytes:
        return self.request("GET", f"{PREFIX}/events.csv", params=filters).content

    def trace(self, identifier: str, direction: str) -> dict[str, Any]:
        return self._get(f"/trace/{direction}", identifier=identifier)

    def recall_plan(self, lot: str) -> dict[str, Any]:
        return self._get("/recalls/plan", lot=lot)

    def recalls(self) -> dict[str, Any]:
        return self._get("/recalls")

    def recall_status(self, identifier: str) -> dict[str, Any]:
        return self._get("/recalls/status", identifier=identifier)

    def trust(self) -> dict[str, Any]:
        return self._get("/trust")

    def trust_status(self, identifier: str) -> dict[str, Any]:
        return self._get("/trust/status", identifier=identifier)

    def report_draft(self) -> dict[str, Any]:
        return self._get("/report")

    def start_job(self, kind: str = "verify") -> dict[str, Any]:
        """Start a full verification ("verify") or a report's draft ("report") in the
        node; answers at once with the job (poll it with `job`)."""
        return self.request("POST", PREFIX + "/jobs", body={"kind": kind}).json()

    def job(self, job_id: str) -> dict[str, Any]:
        """A job's state, progress (events checked, total, rate, eta) and result."""
        return self._get(f"/jobs/{job_id}")

    def jobs(self) -> dict[str, Any]:
        return self._get("/jobs")

    def wait_job(
        self,
        job_id: str,
        *,
        every: float = 1.0,
        progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll a job until it is done or failed, each request short; returns the job."""
        while True:
            job = self.job(job_id)
            if progress is not None:
                progress(job)
            if job["state"] != "running":
                return job
            time.sleep(every)

    # -- recording a recall ----------------------------------------------------------------
    def recall(
        self,
        lot: str,
        reason: str,
        *,
        reference: str | None = None,
        wait: float = 0,
    ) -> list[dict[str, Any]]:
        """Ask the node which units the lot reached (`recall_plan`), sign the recall
        transaction(s) here and submit them; with `wait`, block until committed."""
        plan = self.recall_plan(lot)
        statuses = []
        for payload in plan["payloads"]:
            payload = {**payload, "reason": reason}
            if reference:
                payload["reference"] = reference
            tx = self.sdk.sign("recall", payload)
            statuses.append(self.sdk.submit(tx, wait=wait))
        return statuses
