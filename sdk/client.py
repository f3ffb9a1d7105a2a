"""The ParkTrace SDK: sign locally, submit, wait, fetch receipts, capture and query EPCIS.

    from sdk.client import ParkTraceClient
    from sdk.signing import Identity

    me = Identity.from_files(Path("admin.key"), Path("admin.pem"))
    with ParkTraceClient("http://127.0.0.1:8601", identity=me) as client:
        report = client.capture(document)                  # validate, sign, submit
        status = client.wait(report.accepted[0].tx_id, 30)  # block until committed
        receipt = client.receipt(status["id"])             # verify offline later

The private key never leaves this process: events are validated here with the same
rules the node applies, signed here, and sent as signed transactions. Every failure is
raised as `ApiClientError` with the node's error code and message.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from ledger.errors import LedgerError
from ledger.tx import Transaction
from sdk.signing import Identity, sign_request
from traceability.epcis.document import CheckedDocument, LedgerEvent, check_document
from traceability.epcis.records import EPCIS_TX_TYPE, payload_for

#: Where the CLI and SDK look when given no URL: the first node of `parktrace demo` and of
#: `parktrace cluster up` (their API ports start at 8601), and `parktrace serve`'s port.
DEFAULT_PORT = 8601
DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
BATCH_SIZE = 500


class ApiClientError(Exception):
    """The node refused a request (or could not be reached); `code` is the error code."""

    def __init__(
        self, status: int, code: str, message: str, body: Any = None, retry_after: float = 0
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.body = body
        #: Seconds the node asked to wait before trying again (503 Retry-After), or 0.
        self.retry_after = retry_after


@dataclass(frozen=True)
class Accepted:
    label: str  # where the event came from: "epcisBody.eventList[3]", "line 17"
    event_id: str | None
    tx_id: str
    #: the signed envelope, kept to resubmit it if the node that accepted it forgets it
    tx: Transaction | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Refused:
    label: str
    event_id: str | None
    code: str
    message: str


@dataclass
class CaptureReport:
    """What happened to each event of a capture or import."""

    accepted: list[Accepted] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    committed: int = 0
    rejected_later: list[Refused] = field(default_factory=list)
    pending: int = 0

    @property
    def total(self) -> int:
        return len(self.accepted) + len(self.refused)

    def reasons(self) -> list[tuple[str, int, str]]:
        """(error code, count, an example message), most frequent first."""
        counts = Counter(r.code for r in self.refused + self.rejected_later)
        example = {r.code: f"{r.label}: {r.message}" for r in self.refused + self.rejected_later}
        return [(code, n, example[code]) for code, n in counts.most_common()]

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "accepted": len(self.accepted),
            "refused": len(self.refused),
            "committed": self.committed,
            "rejected": len(self.rejected_later),
            "pending": self.pending,
            "reasons": [{"error": c, "count": n, "example": m} for c, n, m in self.reasons()],
            "refusals": [r.__dict__ for r in self.refused + self.rejected_later][:1000],
        }


class ParkTraceClient:
    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        identity: Identity | None = None,
        chain_id: str | None = None,
        timeout: float = 60.0,
        http: httpx.Client | None = None,
        busy_patience: float = 120.0,
    ) -> None:
        """`http`: an httpx client of your own (proxies, TLS settings, tests); it is
        used as given, with `url` ignored, and left open by `close()`. `busy_patience`:
        seconds a request is retried while the node answers 503 busy (0: never)."""
        self.identity = identity
        self.busy_patience = busy_patience
        self._chain_id = chain_id
        self._owned = http is None
        self._http = http or httpx.Client(base_url=url.rstrip("/"), timeout=timeout)

    def close(self) -> None:
        if self._owned:
            self._http.close()

    def __enter__(self) -> ParkTraceClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------------
    def send(self, request: httpx.Request) -> httpx.Response:
        """Send a built request; raises ApiClientError for any error answer."""
        try:
            response = self._http.send(request)
        except httpx.HTTPError as exc:
            raise ApiClientError(
                0, "unreachable", f"cannot reach {self._http.base_url}: {exc}"
            ) from None
        if response.status_code >= 400:
            raise _error(response)
        return response

    def signed(
        self,
        method: str,
        path: str,
        *,
        content: bytes = b"",
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """A request signed (RFC 9421) with this client's identity, which never leaves
        this process: what /capture and the regulator's /v1/audit require."""

        def build() -> httpx.Request:  # signed afresh each time: a signature is used once
            request = self._http.build_request(
                method, path, params=params, content=content, headers=headers
            )
            sign_request(request, self._identity(), content)
            return request

        return self._patiently(build)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self._patiently(lambda: self._http.build_request(method, path, **kwargs))

    def _patiently(self, build: Callable[[], httpx.Request]) -> httpx.Response:
        """Send, and again after the Retry-After a busy node (503) asks for, for up to
        `busy_patience` seconds: a node past what the consortium commits sheds load this
        way, and a client that waits as told loses nothing."""
        deadline = time.monotonic() + self.busy_patience
        while True:
            try:
                return self.send(build())
            except ApiClientError as exc:
                pause = min(exc.retry_after, MAX_BUSY_PAUSE)
                if exc.code != "busy" or not pause or time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    # -- chain and transactions --------------------------------------------------------
    def chain(self) -> dict[str, Any]:
        return self._json("GET", "/v1/chain")

    @property
    def chain_id(self) -> str:
        if self._chain_id is None:
            self._chain_id = self.chain()["chain_id"]
        return self._chain_id

    def _identity(self) -> Identity:
        if self.identity is None:
            raise ApiClientError(
                0, "no_identity", "signing needs an identity (key and certificate)"
            )
        return self.identity

    def sign(self, tx_type: str, payload: dict[str, Any]) -> Transaction:
        """A transaction signed with this client's identity, for this node's chain."""
        return self._identity().sign_tx(self.chain_id, tx_type, payload)

    def submit(self, tx: Transaction, *, wait: float = 0) -> dict[str, Any]:
        """Submit a signed transaction; with `wait`, block until it commits (or times out),
        resubmitting it if the node forgets it meanwhile (see `wait`)."""
        accepted = self._json(
            "POST", "/v1/transactions", content=_dumps(tx.to_json()), headers=_JSON
        )
        return self.wait(accepted["id"], wait, resubmit=tx) if wait > 0 else accepted

    def submit_batch(self, txs: list[Transaction], *, atomic: bool = False) -> dict[str, Any]:
        body = {"transactions": [tx.to_json() for tx in txs], "atomic": atomic}
        return self._json("POST", "/v1/transactions/batch", content=_dumps(body), headers=_JSON)

    def status(self, tx_id: str, *, wait: float = 0) -> dict[str, Any]:
        return self._json("GET", f"/v1/transactions/{tx_id}", params={"wait": wait})

    def wait(
        self, tx_id: str, timeout: float, *, resubmit: Transaction | None = None
    ) -> dict[str, Any]:
        """Block until `tx_id` is committed or rejected, or `timeout` seconds pass.

        A 202 is not durable: a node that crashes before the transaction commits forgets
        it. With `resubmit` (the signed envelope of `tx_id`), a transaction the node no
        longer knows is sent again, and a node that is down is waited for, until the
        deadline. Resubmitting is idempotent: the id is the hash of the signed body, so a
        copy that is pending or committed elsewhere is answered 409 and never recorded
        twice."""
        if resubmit is not None and resubmit.id != tx_id:
            raise ValueError("resubmit must be the transaction being waited for")
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.0, deadline - time.monotonic())
            try:
                status = self.status(tx_id, wait=min(left, 60.0))
            except ApiClientError as exc:
                if resubmit is None or left <= 0 or not self._retry(exc, resubmit):
                    raise
                continue
            if status["state"] != "pending" or left <= 0:
                return status

    def _retry(self, exc: ApiClientError, tx: Transaction) -> bool:
        """After a failed status request: resubmit `tx` if the node does not know it,
        pause if the node is unreachable or busy. False: the failure is final."""
        if exc.code == "not_found":
            try:
                self._json("POST", "/v1/transactions", content=_dumps(tx.to_json()), headers=_JSON)
            except ApiClientError as again:
                if again.code != "duplicate" and not _transient(again):
                    raise
                if _transient(again):
                    time.sleep(RETRY_PAUSE)
            return True
        if _transient(exc):
            time.sleep(RETRY_PAUSE)
            return True
        return False

    def statuses(self, tx_ids: list[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for start in range(0, len(tx_ids), 1000):
            body = {"ids": tx_ids[start : start + 1000]}
            out += self._json("POST", "/v1/transactions/status", json=body)["statuses"]
        return out

    def receipt(self, tx_id: str) -> bytes:
        """The receipt of a committed transaction, as the canonical bytes to keep."""
        return self._request("GET", f"/v1/transactions/{tx_id}/receipt").content

    # -- EPCIS -------------------------------------------------------------------------
    def capture(
        self,
        document: dict[str, Any] | CheckedDocument,
        *,
        behaviour: str = "rollback",
        labels: list[str] | None = None,
        batch_size: int = BATCH_SIZE,
        progress: Callable[[int], None] | None = None,
    ) -> CaptureReport:
        """Validate an EPCIS document here, sign each event here, submit them.

        rollback: if any event is invalid or refused, nothing is recorded (the node
        checks every batch all-or-nothing; with more than `batch_size` events, earlier
        batches stay recorded). proceed: the valid events are recorded, the others
        reported. `labels` name the events in the report (default: their JSON path).
        """
        checked = document if isinstance(document, CheckedDocument) else check_document(document)
        report = CaptureReport()
        label = (lambda i, path: labels[i]) if labels else (lambda i, path: path)
        for index, error in checked.rejected:
            where = checked.event_path(index)
            report.refused.append(
                Refused(label(index, where), None, error.code, error.within(where))
            )
        if behaviour == "rollback" and report.refused:
            if progress:
                progress(checked.total)
            return report
        if progress and report.refused:
            progress(len(report.refused))
        signed: list[tuple[LedgerEvent, Transaction]] = []
        for event in checked.events:
            try:
                signed.append((event, self.sign(EPCIS_TX_TYPE, payload_for(event.event))))
            except LedgerError as exc:  # e.g. an event too large for one transaction
                where = label(event.index, event.path)
                report.refused.append(
                    Refused(where, event.event.get("eventID"), exc.code, exc.message)
                )
        if behaviour == "rollback" and report.refused:
            if progress:
                progress(checked.total - len(checked.rejected))
            return report
        for start in range(0, len(signed), batch_size):
            chunk = signed[start : start + batch_size]
            events = [e for e, _ in chunk]
            self._submit_chunk(
                events, [tx for _, tx in chunk], report, behaviour == "rollback", label
            )
            if progress:
                progress(len(chunk))
        if progress and len(signed) < len(checked.events):
            progress(len(checked.events) - len(signed))
        return report

    def _submit_chunk(
        self,
        chunk: list[LedgerEvent],
        txs: list[Transaction],
        report: CaptureReport,
        atomic: bool,
        label: Callable[[int, str], str],
    ) -> None:
        try:
            result = self.submit_batch(txs, atomic=atomic)
        except ApiClientError as exc:
            if not atomic or exc.status in (0, 503) or exc.code == "unreachable":
                raise
            report.refused += _rolled_back(chunk, exc, label)
            return
        for item in result["results"]:
            e = chunk[item["index"]]
            where = label(e.index, e.path)
            if item["state"] == "pending":
                tx = txs[item["index"]]
                report.accepted.append(Accepted(where, e.event.get("eventID"), item["id"], tx))
            else:
                report.refused.append(
                    Refused(where, e.event.get("eventID"), item["error"], item["message"])
                )

    def follow(self, report: CaptureReport, timeout: float) -> CaptureReport:
        """Wait up to `timeout` seconds for the accepted transactions to commit; count them.
        Those the node forgets (it crashed before they committed) are resubmitted."""
        deadline = time.monotonic() + timeout
        if report.accepted:
            last = report.accepted[-1]
            self.wait(last.tx_id, timeout, resubmit=last.tx)
        by_id = {a.tx_id: a for a in report.accepted}
        while True:
            try:
                states = self.statuses(list(by_id))
            except ApiClientError as exc:
                if not _transient(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(RETRY_PAUSE)
                continue
            pending = [s for s in states if s["state"] in ("pending", "unknown")]
            if not pending or time.monotonic() >= deadline:
                break
            lost = [by_id[s["id"]].tx for s in states if s["state"] == "unknown"]
            if any(tx is not None for tx in lost):
                self._resubmit_batch([tx for tx in lost if tx is not None])
            time.sleep(0.2)
        report.committed = sum(s["state"] == "committed" for s in states)
        report.pending = len(pending)  # unknown ones too: not known to be recorded
        report.rejected_later = [
            Refused(
                by_id[s["id"]].label,
                by_id[s["id"]].event_id,
                s.get("error") or "rejected",
                s.get("reason") or "",
            )
            for s in states
            if s["state"] == "rejected"
        ]
        return report

    def _resubmit_batch(self, txs: list[Transaction]) -> None:
        for chunk in chunked(txs, BATCH_SIZE):
            try:
                self.submit_batch(chunk)  # each item: pending again, or duplicate
            except ApiClientError as exc:
                if not _transient(exc):
                    raise

    def capture_http(
        self, document: bytes | dict[str, Any], *, behaviour: str = "rollback"
    ) -> dict[str, Any]:
        """POST /capture as a plain EPCIS client: the request is signed (RFC 9421) with
        this client's identity, and the node records the events with the capture
        certificate the organisation delegated to it. Returns the capture job."""
        body = document if isinstance(document, bytes) else _dumps(document)
        headers = {"Content-Type": "application/ld+json", "GS1-Capture-Error-Behaviour": behaviour}
        return self.signed("POST", "/capture", content=body, headers=headers).json()

    def capture_job(self, capture_id: str) -> dict[str, Any]:
        return self.signed("GET", f"/capture/{quote(capture_id, safe='')}").json()

    def events(self, **params: str | int) -> dict[str, Any]:
        """One page of an EPCIS query (parameters as in the EPCIS REST binding), signed:
        the node answers members only, each with what the read rule lets it see."""
        return self.signed("GET", "/events", params={k: str(v) for k, v in params.items()}).json()

    def iter_events(self, **params: str | int) -> Iterator[dict[str, Any]]:
        """Every event matching the query, following the pages."""
        query: dict[str, str] = {k: str(v) for k, v in params.items()}
        while True:
            response = self.signed("GET", "/events", params=query)
            yield from response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
            token = _next_token(response.headers.get("link"))
            if token is None:
                return
            query = {"nextPageToken": token, "perPage": query.get("perPage", "30")}

    def history(self, identifier: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/products/{quote(identifier, safe='')}/history")


def _rolled_back(
    chunk: list[LedgerEvent], exc: ApiClientError, label: Callable[[int, str], str]
) -> list[Refused]:
    """The events of an all-or-nothing batch the node refused: the one it names
    ("transactions[3]: …") with the node's reason, the others as not recorded because of
    it (they were not refused themselves, so they do not carry its code)."""
    found = _ITEM.match(exc.message)
    culprit = int(found.group(1)) if found else -1
    if not 0 <= culprit < len(chunk):  # the node named no event: each shares its reason
        culprit, why = -1, exc.message
    else:
        why = found.group(2) if found else exc.message
    named = label(chunk[culprit].index, chunk[culprit].path) if culprit >= 0 else ""
    refused = []
    for i, e in enumerate(chunk):
        if culprit < 0 or i == culprit:
            code, message = exc.code, why
        else:
            code = "rolled_back"
            message = f"not recorded: the batch is all or nothing and {named} was refused"
        refused.append(Refused(label(e.index, e.path), e.event.get("eventID"), code, message))
    return refused


#: A batch item's refusal as the node words it: "transactions[3]: why".
_ITEM = re.compile(r"^transactions\[(\d+)\][.:]\s*(.*)$", re.DOTALL)
_JSON = {"Content-Type": "application/json"}
#: Seconds between attempts while a node is down or busy.
RETRY_PAUSE = 0.5
#: Longest pause a node's Retry-After makes the client take at once.
MAX_BUSY_PAUSE = 30.0


def _transient(exc: ApiClientError) -> bool:
    """A failure that may pass: the node is down, restarting or busy."""
    return exc.code == "unreachable" or exc.status in (502, 503, 504)


def _dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _error(response: httpx.Response) -> ApiClientError:
    try:
        body = response.json()
    except ValueError:
        body = None
    try:
        retry_after = float(response.headers.get("retry-after", 0))
    except ValueError:  # an HTTP date: not what a node sends
        retry_after = RETRY_PAUSE
    if isinstance(body, dict) and "error" in body:
        return ApiClientError(
            response.status_code, body["error"], body.get("message", ""), body, retry_after
        )
    text = response.text.strip()[:200] or response.reason_phrase
    return ApiClientError(response.status_code, f"http_{response.status_code}", text, body)


def _next_token(link: str | None) -> str | None:
    if not link or 'rel="next"' not in link:
        return None
    target = link.split(">", 1)[0].lstrip("<")
    query = httpx.URL(target).params
    return query.get("nextPageToken")


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
