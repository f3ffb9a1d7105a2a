"""Producer commands of `parktrace`: submit, capture, import, events, history, receipt.

They talk to a node over HTTP through the SDK (`sdk.client`) and sign locally with the
organisation's key: give `--key` and `--cert`, or `--consortium DIR --org ORG` (a
consortium directory as `parktrace consortium init` lays it out). `--url` (or
PARKTRACE_URL) names the node. Every failure ends in one line on stderr and a non-zero
exit status: 2 for bad input or a refusal, 1 when a receipt fails verification or an
import leaves events unrecorded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.options import (
    AsJson,
    Signer,
    Url,
    Wait,
    err,
    fail,
    with_signer,
)
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.tx import Transaction
from sdk.client import DEFAULT_URL, ApiClientError, CaptureReport, ParkTraceClient, Refused
from sdk.signing import Identity
from traceability.epcis.document import check_document, parse_json
from traceability.epcis.records import EPCIS_TX_TYPE
from traceability.epcis.rules import EVENT_TYPES

console = Console()


def _read_json(path: Path, what: str) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    try:
        return parse_json(raw, what)
    except LedgerError as exc:
        fail(f"{path}: {exc.message}")


def _client(url: str, identity: Identity | None = None) -> ParkTraceClient:
    return ParkTraceClient(url, identity=identity)


def _refused(exc: ApiClientError) -> NoReturn:
    fail(f"{exc.code}: {exc.message}" if exc.code != "unreachable" else exc.message)


# -- submit ----------------------------------------------------------------------------


@with_signer
def submit(
    file: Annotated[Path, typer.Argument(help="a payload to sign, or a signed envelope")],
    tx_type: Annotated[str, typer.Option("--type", help="transaction type")] = EPCIS_TX_TYPE,
    url: Url = DEFAULT_URL,
    *,
    signer: Signer,
    wait: Wait = 0,
    receipt: Annotated[
        Path | None, typer.Option("--receipt", help="with --wait: save the receipt here")
    ] = None,
) -> None:
    """Sign a payload locally (or take an envelope already signed) and submit it.

    For the default type epcis.event a bare EPCIS event is wrapped as {"event": …}."""
    data = _read_json(file, "payload")
    with _client(url) as client:
        try:
            if isinstance(data, dict) and set(data) == {"body", "signature"}:
                tx = Transaction.from_json(data)
            else:
                if tx_type == EPCIS_TX_TYPE and isinstance(data, dict) and "event" not in data:
                    data = {"event": data}
                if not isinstance(data, dict):
                    fail(f"{file}: a payload is a JSON object")
                client.identity = signer.identity()
                tx = client.sign(tx_type, data)
            status = client.submit(tx, wait=wait)
            if receipt is not None and status.get("state") == "committed":
                receipt.write_bytes(client.receipt(tx.id))
        except LedgerError as exc:
            fail(f"{file}: {exc.message}")
        except ApiClientError as exc:
            _refused(exc)
    state = status.get("state", "pending")
    console.print(
        f"{tx.id} {state}" + (f" at height {status['height']}" if status.get("height") else "")
    )
    if state == "rejected":
        fail(f"rejected: {status.get('reason')}")
    if receipt is not None and state == "committed":
        console.print(f"receipt saved to {receipt}", style="dim")
    elif receipt is not None:
        fail(f"not committed within {wait:g} s: no receipt yet (parktrace receipt get {tx.id})", 1)


# -- capture and import ----------------------------------------------------------------


@with_signer
def capture(
    document: Annotated[Path, typer.Argument(help="EPCIS document (JSON / JSON-LD)")],
    url: Url = DEFAULT_URL,
    *,
    signer: Signer,
    proceed: Annotated[
        bool, typer.Option("--proceed", help="record the valid events even if some are not")
    ] = False,
    wait: Wait = 0,
    as_json: AsJson = False,
) -> None:
    """Validate an EPCIS document here, sign each event with your key, record them.

    All or nothing by default (like GS1-Capture-Error-Behaviour: rollback)."""
    doc = _read_json(document, "document")
    try:
        checked = check_document(doc)
    except LedgerError as exc:
        fail(f"{document}: {exc.message}")
    identity = signer.identity()
    with _client(url, identity) as client:
        try:
            report = client.capture(checked, behaviour="proceed" if proceed else "rollback")
            if wait > 0:
                client.follow(report, wait)
        except ApiClientError as exc:
            _refused(exc)
        except LedgerError as exc:
            fail(f"{document}: {exc.message}")
    _print_report(report, str(document), wait > 0, as_json)


@with_signer
def import_(
    file: Annotated[Path, typer.Argument(help="FILE.csv or FILE.jsonld / .json")],
    url: Url = DEFAULT_URL,
    *,
    signer: Signer,
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="CSV extension prefix: PREFIX=URI (repeatable)"),
    ] = None,
    batch: Annotated[
        int, typer.Option("--batch", min=1, max=1000, help="events per request")
    ] = 500,
    wait: Wait = 60,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="only validate, send nothing")] = False,
    jobs: Annotated[
        int, typer.Option("--jobs", min=1, max=64, help="processes checking CSV rows")
    ] = min(4, os.cpu_count() or 1),
    as_json: AsJson = False,
) -> None:
    """Bulk load events: every valid event is recorded, and the summary says how many were
    accepted and committed and why anything was refused (exit 1 if anything was)."""
    from traceability.epcis.bulk import plan_import

    namespaces = {}
    for item in namespace or []:
        prefix, sep, iri = item.partition("=")
        if not sep or not prefix or not iri:
            fail(f"--namespace {item!r}: expected PREFIX=URI")
        namespaces[prefix] = iri
    try:
        plan = plan_import(file, namespaces, chunk=batch)
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}")
    except (LedgerError, ValueError) as exc:
        fail(f"{file}: {getattr(exc, 'message', str(exc))}")
    identity = None if dry_run else signer.identity()
    report = CaptureReport()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with (
        _client(url, identity) as client,
        Progress(*columns, TimeElapsedColumn(), console=err, transient=True) as bar,
    ):
        task = bar.add_task(f"importing {file.name}", total=plan.total)
        advance = lambda n: bar.advance(task, n)  # noqa: E731
        try:
            for part in plan.parts(jobs):
                report.refused += [Refused(lb, None, c, m) for lb, c, m in part.unreadable]
                advance(len(part.unreadable))
                if part.checked is None:
                    continue
                if dry_run:
                    for index, error in part.checked.rejected:
                        where = part.checked.event_path(index)
                        report.refused.append(
                            Refused(part.labels[index], None, error.code, error.within(where))
                        )
                    advance(part.checked.total)
                    continue
                step = client.capture(
                    part.checked,
                    behaviour="proceed",
                    labels=part.labels,
                    batch_size=batch,
                    progress=advance,
                )
                report.accepted += step.accepted
                report.refused += step.refused
            if wait > 0 and report.accepted:
                bar.update(task, description="waiting for commit")
                client.follow(report, wait)
        except ApiClientError as exc:
            _refused(exc)
        except (LedgerError, ValueError) as exc:
            fail(f"{file}: {getattr(exc, 'message', exc)}")
    if dry_run:
        valid = plan.total - len(report.refused)
        invalid = len(report.refused)
        console.print(
            f"{file}: {plan.total} events, {valid} valid, {invalid} invalid (nothing sent)"
        )
        _print_reasons(report)
        raise typer.Exit(1 if report.refused else 0)
    _print_report(report, str(file), wait > 0, as_json)


def _print_report(report: CaptureReport, source: str, waited: bool, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"source": source, **report.to_json()}, ensure_ascii=False, indent=2))
    else:
        accepted, refused = len(report.accepted), len(report.refused)
        line = f"{source}: {report.total} events, {accepted} accepted, {refused} refused"
        if waited:
            line += f"; {report.committed} committed"
            if report.rejected_later:
                line += f", {len(report.rejected_later)} rejected at commit"
            if report.pending:
                line += f", {report.pending} still pending"
        console.print(escape(line), highlight=False)
        _print_reasons(report)
    if report.refused or report.rejected_later or (waited and report.pending):
        raise typer.Exit(1)


def _print_reasons(report: CaptureReport) -> None:
    reasons = report.reasons()
    if not reasons:
        return
    table = Table(title="Why events were not recorded")
    table.add_column("error")
    table.add_column("events", justify="right")
    table.add_column("example")
    for code, count, example in reasons:
        table.add_row(code, str(count), escape(example[:200]))
    console.print(table)


# -- queries ---------------------------------------------------------------------------


@with_signer
def events(
    url: Url = DEFAULT_URL,
    epc: Annotated[str | None, typer.Option("--epc", help="EPC anywhere in the event")] = None,
    epc_class: Annotated[str | None, typer.Option("--class", help="class or lot")] = None,
    biz_step: Annotated[str | None, typer.Option("--biz-step", help="e.g. shipping")] = None,
    disposition: Annotated[str | None, typer.Option("--disposition")] = None,
    read_point: Annotated[str | None, typer.Option("--read-point")] = None,
    biz_location: Annotated[str | None, typer.Option("--biz-location")] = None,
    event_type: Annotated[str | None, typer.Option("--type", help="|".join(EVENT_TYPES))] = None,
    since: Annotated[str | None, typer.Option("--since", help="eventTime >= (RFC 3339)")] = None,
    until: Annotated[str | None, typer.Option("--until", help="eventTime < (RFC 3339)")] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="any EPCIS query NAME=VALUE")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="at most this many")] = 100,
    as_json: AsJson = False,
    *,
    signer: Signer,
) -> None:
    """Query EPCIS events (EPCIS 2.0 query parameters; several values separated by '|').
    Signed with your member key: you see what the consortium's read rule lets you see."""
    query: dict[str, str] = {}
    for name, value in (
        ("MATCH_anyEPC", epc),
        ("MATCH_anyEPCClass", epc_class),
        ("EQ_bizStep", biz_step),
        ("EQ_disposition", disposition),
        ("EQ_readPoint", read_point),
        ("EQ_bizLocation", biz_location),
        ("eventType", event_type),
        ("GE_eventTime", since),
        ("LT_eventTime", until),
    ):
        if value:
            query[name] = value
    for item in param or []:
        name, sep, value = item.partition("=")
        if not sep:
            fail(f"--param {item!r}: expected NAME=VALUE")
        query[name] = value
    query.setdefault("perPage", str(min(limit, 1000)))
    found = []
    with _client(url, signer.identity()) as client:
        try:
            for event in client.iter_events(**query):
                found.append(event)
                if len(found) >= limit:
                    break
        except ApiClientError as exc:
            _refused(exc)
    if as_json:
        print(json.dumps(found, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{len(found)} event(s)")
    for column in ("eventTime", "type", "action", "bizStep", "disposition", "what", "transaction"):
        table.add_column(column)
    for e in found:
        what = " ".join(_what(e))
        ledger = e.get("parktrace:ledger", {})
        tx = ledger.get("parktrace:transaction", "")[:12]
        keys = ("eventTime", "type", "action", "bizStep", "disposition")
        cells = [*(e.get(k, "") for k in keys), what[:60], tx]
        table.add_row(*(escape(str(c)) for c in cells))
    console.print(table)


def _what(event: dict[str, Any]) -> list[str]:
    items: list[str] = []
    if event.get("parentID"):
        items.append(event["parentID"])
    for key in ("epcList", "childEPCs", "inputEPCList", "outputEPCList"):
        items += event.get(key) or []
    for key in ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"):
        items += [q.get("epcClass", "") for q in event.get(key) or []]
    return items


def history(
    identifier: Annotated[str, typer.Argument(help="EPC, class or lot URI")],
    url: Url = DEFAULT_URL,
    as_json: AsJson = False,
) -> None:
    """One product's history: its events, its containers' and its ingredients'."""
    with _client(url) as client:
        try:
            data = client.history(identifier)
        except ApiClientError as exc:
            _refused(exc)
    if as_json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"History of {identifier}")
    for column in ("eventTime", "relation", "subject", "type", "bizStep", "transaction"):
        table.add_column(column)
    for entry in data["events"]:
        e = entry["event"]
        cells = (e.get("eventTime", ""), entry["relation"], entry["subject"], e.get("type", ""),
                 e.get("bizStep", ""), entry["transaction"][:12])  # fmt: skip
        table.add_row(*(escape(str(c)) for c in cells))
    console.print(table)


# -- receipts --------------------------------------------------------------------------

receipt_app = typer.Typer(
    help="Receipts: proofs of inclusion, verifiable offline.", no_args_is_help=True
)


@receipt_app.command("get")
def receipt_get(
    tx_id: Annotated[str, typer.Argument(help="transaction id")],
    out: Annotated[Path, typer.Option("--out", "-o", help="file to write")],
    url: Url = DEFAULT_URL,
    wait: Wait = 0,
) -> None:
    """Fetch the receipt of a committed transaction and save it."""
    with _client(url) as client:
        try:
            if wait > 0:
                client.wait(tx_id, wait)
            data = client.receipt(tx_id)
        except ApiClientError as exc:
            _refused(exc)
    try:
        out.write_bytes(data)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror}")
    console.print(f"receipt of {tx_id} saved to {escape(str(out))}")


@receipt_app.command("verify")
def receipt_verify(
    receipt: Annotated[Path, typer.Argument(help="RECEIPT.json")],
    genesis: Annotated[Path, typer.Option("--genesis", help="the consortium's genesis.json")],
    as_json: AsJson = False,
) -> None:
    """Verify a receipt offline against the genesis file alone (exit 1 if it fails)."""
    from traceability.receipts import verify_receipt

    try:
        trusted = Genesis.load(genesis)
    except OSError as exc:
        fail(f"cannot read {genesis}: {exc.strerror}")
    except LedgerError as exc:
        fail(f"{genesis}: {exc.message}")
    try:
        raw = receipt.read_bytes()
    except OSError as exc:
        fail(f"cannot read {receipt}: {exc.strerror}")
    try:
        check = verify_receipt(parse_json(raw, "receipt", unique_keys=True), trusted)
    except LedgerError as exc:
        if as_json:
            print(json.dumps({"ok": False, "error": exc.code, "message": exc.message}))
        fail(f"receipt does NOT verify: {exc.message}", 1)
    if as_json:
        print(json.dumps(check.to_json(), indent=2))
        return
    console.print(
        f"[green]OK[/] transaction {check.tx_id} ({check.tx_type}, signed by "
        f"{escape(check.signer)}) is in block {check.height} of chain {trusted.chain_id} "
        f"(time {check.block_time}), at index {check.log_index} of the ledger log of "
        f"{check.log_size}; certified by {check.signatures} validator signatures "
        f"(quorum {check.quorum})" + (f"; {check.links} membership link(s)" if check.links else ""),
        highlight=False,
    )
    event = check.payload.get("event") if isinstance(check.payload, dict) else None
    if isinstance(event, dict):
        console.print(
            escape(
                f"EPCIS {event.get('type')} {event.get('bizStep', '')} at {event.get('eventTime')}"
                f" eventID {event.get('eventID', '-')}"
            ),
            highlight=False,
        )


def mount(app: typer.Typer) -> None:
    """Add these commands to the `parktrace` app (idempotent)."""
    names = {c.name for c in app.registered_commands}
    if "submit" in names:
        return
    app.command("submit")(submit)
    app.command("capture")(capture)
    app.command("import")(import_)
    app.command("events")(events)
    app.command("history")(history)
    app.add_typer(receipt_app, name="receipt")
    from cli.serve import serve

    app.command("serve")(serve)
