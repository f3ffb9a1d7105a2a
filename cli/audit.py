"""`parktrace audit …`: the regulator's commands.

Every command that talks to a node signs its requests with the regulator's key (give
`--key/--cert` or `--consortium/--org`, as for the producer commands); `proof verify`
and `report verify` work offline with the genesis file alone. Errors are one line on
stderr: exit 2 for bad input or a refusal, 1 when what was checked does not hold (a
chain that fails verification, nodes that diverge, a proof or report that does not
verify).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
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
from sdk.audit import AuditClient
from sdk.client import DEFAULT_URL, ApiClientError
from traceability.epcis.document import parse_json

app = typer.Typer(help="The regulator's audit: verify, compare, prove, trace, recall, report.")
proof_app = typer.Typer(help="Receipts and consistency proofs, verifiable offline.")
recall_app = typer.Typer(help="Record recalls and see what they reach.")
report_app = typer.Typer(help="Signed audit reports (JSON and PDF).")
app.add_typer(proof_app, name="proof")
app.add_typer(recall_app, name="recall")
app.add_typer(report_app, name="report")
console = Console()

GenesisFile = Annotated[Path, typer.Option("--genesis", help="the consortium's genesis.json")]


def _client(url: str, signer: Signer) -> AuditClient:
    return AuditClient(url, identity=signer.identity())


def _call(client: AuditClient, method: str, *args: Any, **kwargs: Any) -> Any:
    """One SDK call; a refusal or an unreachable node ends the command in one line."""
    with client:
        try:
            return getattr(client, method)(*args, **kwargs)
        except ApiClientError as exc:
            _refused(exc)


def _refused(exc: ApiClientError) -> NoReturn:
    fail(f"{exc.code}: {exc.message}" if exc.code != "unreachable" else exc.message)


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror}")


def _load_genesis(path: Path) -> Genesis:
    try:
        return Genesis.load(path)
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    except LedgerError as exc:
        fail(f"{path}: {exc.message}")


def _load_json(path: Path, what: str) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    try:
        return parse_json(raw, what, unique_keys=True)
    except LedgerError as exc:
        fail(f"{path}: {exc.message}")


# -- verify and compare ---------------------------------------------------------------------


def _run_job(client: AuditClient, kind: str, job_id: str | None) -> Any:
    """Start a job of `kind` in the node (or take job `job_id`), follow it with a progress
    bar, short requests each, and give its result."""
    from cli.progress import verification_bar

    with client:
        try:
            job = client.job(job_id) if job_id else client.start_job(kind)
            err.print(
                f"job {job['id']} (come back to it with --job {job['id']})",
                style="dim",
                highlight=False,
            )
            with verification_bar("verifying" if kind == "verify" else "drafting") as bar:
                job = client.wait_job(
                    job["id"], progress=lambda j: bar.update(j["events_checked"], j["events_total"])
                )
        except ApiClientError as exc:
            _refused(exc)
    if job["state"] != "done":
        fail(f"the {job['kind']} job failed: {job['error']}")
    return job["result"]


@app.command()
@with_signer
def verify(
    url: Url = DEFAULT_URL,
    job: Annotated[
        str | None, typer.Option("--job", help="come back to this running or finished job")
    ] = None,
    *,
    signer: Signer,
    as_json: AsJson = False,
) -> None:
    """Full-chain verification of the node's store, as a job in the node (progress shown;
    if this command is stopped, the job goes on: come back with --job ID). Exit 1 naming
    the first bad height."""
    report = _run_job(_client(url, signer), "verify", job)
    if as_json:
        _print_json(report)
    elif report["ok"]:
        console.print(
            f"[green]OK[/] {report.get('node') or url}: {report['blocks']} blocks, "
            f"{report['transactions']} transactions, {report['signatures']} signatures "
            f"verified in {report['seconds']:.2f}s; head {report['head_height']} "
            f"{report['head_hash'][:16]}…",
            highlight=False,
        )
    if not report["ok"]:
        problem = report["problem"]
        err.print(
            f"[bold red]FAILED[/] {escape(str(report.get('node') or url))} at height "
            f"{problem['height']}: {escape(problem['what'])}",
            highlight=False,
        )
        raise typer.Exit(1)


@app.command()
@with_signer
def compare(
    node: Annotated[
        list[str] | None,
        typer.Option("--node", help="a validator to ask: ID=URL (repeat for each)"),
    ] = None,
    cluster: Annotated[
        Path | None, typer.Option("--cluster", help="a cluster directory (cluster.json)")
    ] = None,
    url: Url = DEFAULT_URL,
    *,
    signer: Signer,
    as_json: AsJson = False,
) -> None:
    """Ask every validator for its block digests; name the heights and nodes that differ.

    With --node or --cluster this machine asks each node itself; without, the node at
    --url compares itself with the nodes it is configured with. Exit 1 on divergence."""
    from api.audit.settings import parse_nodes
    from traceability.audit.compare import HttpSource
    from traceability.audit.compare import compare as run_compare

    nodes: dict[str, str] = {}
    try:
        if cluster is not None:
            from devtools import cluster as cluster_module

            nodes.update({m.id: m.url for m in cluster_module.members(cluster)})
        nodes.update(parse_nodes(",".join(node or [])))
    except LedgerError as exc:
        fail(exc.message)
    base = _client(url, signer)
    if nodes:
        clients = {k: AuditClient(v, identity=base.identity) for k, v in nodes.items()}
        try:
            result = run_compare({k: HttpSource(c) for k, c in clients.items()}).to_json()
        finally:
            for c in clients.values():
                c.close()
            base.close()
    else:
        result = _call(base, "compare")
    if as_json:
        _print_json(result)
    else:
        _print_comparison(result)
    if not result["ok"]:
        raise typer.Exit(1)


def _print_comparison(result: dict[str, Any]) -> None:
    heights = ", ".join(f"{n} {h if h is not None else '-'}" for n, h in result["heights"].items())
    console.print(escape(f"nodes and heights: {heights}"), highlight=False)
    for node_id, problem in result["unreachable"].items():
        err.print(escape(f"{node_id} did not answer: {problem}"), highlight=False)
    if not result["diverging_heights"]:
        console.print(
            f"[green]OK[/] all nodes agree on every block up to height {result['compared_up_to']}",
            highlight=False,
        )
        return
    table = Table(title=f"{result['diverging_heights']} diverging height(s)")
    for column in ("height", "diverging", "majority", "digests"):
        table.add_column(column)
    for d in result["divergences"]:
        digests = "; ".join(f"{','.join(g['nodes'])}: {g['digest'][:12]}…" for g in d["groups"])
        majority = ", ".join(d["majority"]) if d["majority"] else "none"
        table.add_row(str(d["height"]), ", ".join(d["diverging"]), majority, digests)
    console.print(table)
    err.print(
        f"[bold red]DIVERGED[/] {escape(', '.join(result['diverging_nodes']))} "
        f"first at height {result['first_divergence']}",
        highlight=False,
    )


# -- proofs ------------------------------------------------------------------------------------


@proof_app.command("receipt")
@with_signer
def proof_receipt(
    tx_id: Annotated[str, typer.Argument(help="transaction id")],
    out: Annotated[Path, typer.Option("--out", "-o", help="file to write")],
    url: Url = DEFAULT_URL,
    *,
    signer: Signer,
) -> None:
    """Save the receipt of any committed transaction."""
    data = _call(_client(url, signer), "receipt", tx_id)
    _write(out, data)
    console.print(escape(f"receipt of {tx_id} saved to {out}"), highlight=False)


@proof_app.command("consistency")
@with_signer
def proof_consistency(
    first: Annotated[int, typer.Option("--first", min=1, help="earlier block height")],
    second: Annotated[int, typer.Option("--second", min=1, help="later block height")],
    out: Annotated[Path, typer.Option("--out", "-o", help="file to write")],
    url: Url = DEFAULT_URL,
    *,
    signer: Signer,
) -> None:
    """Save a proof that the ledger at block --second extends the ledger at block --first."""
    client = _client(url, signer)
    _write(out, _call(client, "consistency", first, second))
    console.print(escape(f"consistency proof {first} → {second} saved to {out}"), highlight=False)


@proof_app.command("verify")
def proof_verify(
    file: Annotated[Path, typer.Argument(help="a receipt or consistency proof (JSON)")],
    genesis: GenesisFile,
    as_json: AsJson = False,
) -> None:
    """Verify a receipt or a consistency proof offline (exit 1 if it does not verify)."""
    from traceability.audit.proofs import CONSISTENCY_TYPE, verify_consistency_proof
    from traceability.receipts import verify_receipt

    trusted = _load_genesis(genesis)
    data = _load_json(file, "proof")
    kind = data.get("type") if isinstance(data, dict) else None
    try:
        if kind == CONSISTENCY_TYPE:
            check = verify_consistency_proof(data, trusted).to_json()
            line = (
                f"[green]OK[/] the ledger at block {check['second_height']} "
                f"({check['second_size']} transactions) extends the ledger at block "
                f"{check['first_height']} ({check['first_size']}): nothing was rewritten"
            )
        else:
            receipt = verify_receipt(data, trusted)
            check = receipt.to_json()
            line = (
                f"[green]OK[/] transaction {receipt.tx_id} ({receipt.tx_type}, "
                f"{escape(receipt.signer)}) is in block {receipt.height}"
            )
    except LedgerError as exc:
        if as_json:
            _print_json({"ok": False, "error": exc.code, "message": exc.message})
        fail(f"{file} does NOT verify: {exc.message}", 1)
    if as_json:
        _print_json(check)
    else:
        console.print(line, highlight=False)


# -- evidence, search, export ------------------------------------------------------------------


@app.command()
@with_signer
def evidence(
    key_: Annotated[str | None, typer.Argument(metavar="KEY", help="one record's key")] = None,
    url: Url = DEFAULT_URL,
    *,
    signer: Signer,
    as_json: AsJson = False,
) -> None:
    """Committed evidence of misbehaving validators (or one record, with its votes)."""
    client = _client(url, signer)
    if key_ is not None:
        _print_json(_call(client, "evidence_detail", key_))
        return
    data = _call(client, "evidence")
    if as_json:
        _print_json(data)
        return
    if not data["evidence"]:
        console.print("no evidence of misbehaviour is committed")
        return
    table = Table(title=f"{data['count']} evidence record(s)")
    for column in ("validator", "height", "round", "step", "committed at", "valid", "key"):
        table.add_column(column)
    for e in data["evidence"]:
        cells = (e.get("validator"), e.get("height"), e.get("round"), e.get("step"),
                 e.get("committed_at"), e.get("valid"), e.get("key"))  # fmt: skip
        table.add_row(*(escape(str(c)) for c in cells))
    console.print(table)


def _filters(
    organization: str | None,
    identifier: str | None,
    lot: str | None,
    biz_step: str | None,
    since: str | None,
    until: str | None,
    limit: int,
) -> dict[str, Any]:
    values = {
        "organization": organization,
        "identifier": identifier,
        "lot": lot,
        "bizStep": biz_step,
        "since": since,
        "until": until,
        "limit": limit,
    }
    return {k: v for k, v in values.items() if v is not None}


OrgFilter = Annotated[
    str | None, typer.Option("--of", help="organisation id that recorded the events")
]
IdentifierFilter = Annotated[str | None, typer.Option("--identifier", help="EPC or class")]
LotFilter = Annotated[str | None, typer.Option("--lot", help="lot identifier")]
StepFilter = Annotated[str | None, typer.Option("--biz-step", help="e.g. shipping")]
SinceFilter = Annotated[str | None, typer.Option("--since", help="eventTime >= (RFC 3339)")]
UntilFilter = Annotated[str | None, typer.Option("--until", help="eventTime < (RFC 3339)")]
LimitFilter = Annotated[int, typer.Option("--limit", min=1, max=10_000)]


@app.command()
@with_signer
def search(
    of: OrgFilter = None,
    identifier: IdentifierFilter = None,
    lot: LotFilter = None,
    biz_step: StepFilter = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
    limit: LimitFilter = 1000,
    url: Url = DEFAULT_URL,
    *,
    signer: Signer,
    as_json: AsJson = False,
) -> None:
    """Events by organisation (--of), identifier, lot, bizStep and time range."""
    client = _client(url, signer)
    data = _call(client, "search", **_filters(of, identifier, lot, biz_step, since, until, limit))
    if as_json:
        _print_json(data)
        return
    table = Table(title=f"{data['count']} event(s)")
    for column in ("eventTime", "bizStep", "organization", "what", "height", "transaction"):
        table.add_column(column)
    for e in data["events"]:
        cells = (e["eventTime"], e["bizStep"], e["organization"], " ".join(e["identifiers"])[:60],
                 e["height"], e["transaction"][:12])  # fmt: skip
        table.add_row(*(escape(str(c)) for c in cells))
    console.print(table)


@app.command()
@with_signer
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV file to write")],
    of: OrgFilter = None,
    identifier: IdentifierFilter = None,
    lot: LotFilter = None,
    biz_step: StepFilter = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
    limit: LimitFilter = 10_000,
    url: Url = DEFAULT_URL,
    *,
    signer: Signer,
) -> None:
    """Save a search as CSV (same filters as `search`)."""
    client = _client(url, signer)
    filters = _filters(of, identifier, lot, biz_step, since, until, limit)
    data = _call(client, "search_csv", **filters)
    _write(out, data)
    rows = max(0, data.count(b"\r\n") - 1)
    console.print(escape(f"{rows} event(s) saved to {out}"), highlight=False)


# -- trace ---------------------------------------------------------------------------------------


def tree_lines(node: dict[str, Any], prefix: str = "", last: bool = True, top: bool = True):
    """The plain-text tree of a trace: each identifier, its events, then what it leads to."""
    label = f"{node['identifier']}  [{node['relation']}]"
    lines = [label if top else f"{prefix}{'└── ' if last else '├── '}{label}"]
    inner = prefix if top else prefix + ("    " if last else "│   ")
    entries: list[tuple[str, Any]] = [("event", e) for e in node["events"]]
    entries += [("node", c) for c in node["children"]]
    for i, (kind, item) in enumerate(entries):
        end = i == len(entries) - 1
        if kind == "event":
            where = item.get("bizLocation") or item.get("readPoint") or ""
            text = (
                f"{item.get('eventTime')} {item.get('bizStep') or item.get('eventType')} "
                f"by {item.get('organization')}"
                + (f" at {where}" if where else "")
                + f" (block {item.get('height')})"
            )
            lines.append(f"{inner}{'└── ' if end else '├── '}· {text}")
        else:
            lines += tree_lines(item, inner, end, top=False)
    return lines


@app.command()
@with_signer
def trace(
    identifier: Annotated[str, typer.Argument(help="lot, class or EPC to trace")],
    forward: Annotated[
        bool, typer.Option("--forward/--backward", help="where it went / what went into it")
    ] = False,
    url: Url = DEFAULT_URL,
    *,
    signer: Signer,
    as_json: AsJson = False,
) -> None:
    """Backward (default): plots, harvests, input lots, containers. --forward: units,
    boxes, cartons, outputs, shipments and where they arrived or were sold."""
    client = _client(url, signer)
    data = _call(client, "trace", identifier, "forward" if forward else "backward")
    if as_json:
        _print_json(data)
        return
    for line in tree_lines(data["tree"]):
        print(line)
    if forward:
        units = data["units"]
        if units["issued"]:
            print(f"units: {units['issued']} issued, {units['with_events']} with events")
        for note in units["notes"]:
            print(f"note: {note}")
        for loc in data["locations"]:
            print(f"{loc['kind']}: {loc['location']} ({loc.get('place') or loc['organization']})")
    else:
        for origin in data["origins"]:
            plot = f" plot {origin['plot']}" if origin.get("plot") else ""
            print(
                f"{origin['kind']}: {origin['identifier']} at {origin['location']}{plot} "
                f"on {origin['eventTime']}"
            )
    if data["truncated"]:
        print("(truncated: the trace is larger than one answer)")


# -- recalls --------------------------------------------------------------------------------------


@recall_app.command("create")
@with_signer
def recall_create(
    lot: Annotated[str, typer.Argument(help="the lot (or any identifier) to recall")],
    reason: Annotated[str, typer.Option("--reason", help="why, as the consumer will read it")],
    reference: Annotated[str | None, typer.Option("--reference", help="your file number")] = None,
    url: Url = DEFAULT_URL,
    *,
    signer: Signer,
    wait: Wait = 30,
) -> None:
    """Trace the lot forward, sign the recall here and record it: from the next
    transaction on, shipping or selling anything it reaches is refused."""
    client = _client(url, signer)
    try:
        statuses = _call(client, "recall", lot, reason, reference=reference, wait=wait)
    except LedgerError as exc:
        fail(exc.message)
    for status in statuses:
        state = status.get("state", "pending")
        console.print(
            f"recall {status['id']} {state}"
            + (f" at height {status['height']}" if status.get("height") else ""),
            highlight=False,
        )
        if state == "rejected":
            fail(f"rejected: {status.get('reason')}")


@recall_app.command("list")
@with_signer
def recall_list(
    url: Url = DEFAULT_URL,
    *,
    signer: Signer,
    as_json: AsJson = False,
) -> None:
    """Committed recalls and how many identifiers each reaches."""
    data = _call(_client(url, signer), "recalls")
    if as_json:
        _print_json(data)
        return
    table = Table(title=f"{data['count']} recall(s)")
    for column in ("height", "lot", "reason", "affected", "transaction"):
        table.add_column(column)
    for r in data["recalls"]:
        cells = (r["height"], r["lot"], r["reason"], r["affected"], r["transaction"][:16])
        table.add_row(*(escape(str(c)) for c in cells))
    console.print(table)


@recall_app.command("status")
@with_signer
def recall_status(
    identifier: Annotated[str, typer.Argument(help="any unit, container or lot")],
    url: Url = DEFAULT_URL,
    *,
    signer: Signer,
    as_json: AsJson = False,
) -> None:
    """Whether an identifier is affected by a recall (exit 1 if it is)."""
    client = _client(url, signer)
    data = _call(client, "recall_status", identifier)
    if as_json:
        _print_json(data)
    elif data["recalled"]:
        console.print(escape(data["message"]["en"]), highlight=False)
    else:
        console.print(escape(f"{identifier} is not recalled"), highlight=False)
    if data["recalled"]:
        raise typer.Exit(1)


# -- reports --------------------------------------------------------------------------------------


@report_app.command("create")
@with_signer
def report_create(
    out: Annotated[Path, typer.Option("--out", "-o", help="the signed report (JSON)")],
    pdf: Annotated[Path | None, typer.Option("--pdf", help="also write a PDF here")] = None,
    lang: Annotated[str, typer.Option("--lang", help="language of the PDF: zh or en")] = "zh",
    url: Url = DEFAULT_URL,
    *,
    signer: Signer,
) -> None:
    """Have the node verify its chain, sign the report here, save it (and a sealed PDF)."""
    from api.audit.report import sign
    from ledger import codec

    client = _client(url, signer)
    draft = _run_job(client, "report", None)
    try:
        signed = sign(draft, client.identity)
    except LedgerError as exc:
        fail(exc.message)
    _check_lang(lang)
    _write(out, codec.canonical(signed))
    if pdf is not None:
        _write(pdf, _sealed_pdf(signed, client.identity, lang))
    verdict = "[green]PASS[/]" if signed["report"]["ok"] else "[bold red]FAIL[/]"
    console.print(
        f"{verdict} {escape(signed['report']['result'])}; signed report saved to "
        f"{escape(str(out))}" + (f" and {escape(str(pdf))}" if pdf else ""),
        highlight=False,
    )


def _check_lang(lang: str) -> None:
    from api.audit.pdf import LANGUAGES

    if lang not in LANGUAGES:
        fail(f"--lang must be one of {', '.join(LANGUAGES)}")


def _sealed_pdf(signed: dict[str, Any], identity: Any, lang: str) -> bytes:
    from api.audit.pdf import render_pdf
    from api.audit.sealed import seal_pdf

    try:
        return seal_pdf(render_pdf(signed, lang), signed, identity)
    except LedgerError as exc:
        fail(exc.message)


def report_verify(
    file: Annotated[Path, typer.Argument(help="REPORT.json or REPORT.pdf")],
    genesis: GenesisFile,
    as_json: AsJson = False,
) -> None:
    """Check a signed report (JSON) or a sealed report PDF offline: a regulator of this
    consortium signed exactly these bytes (exit 1 if not). Prints what it says."""
    from api.audit.report import verify_report
    from api.audit.sealed import verify_pdf

    trusted = _load_genesis(genesis)
    number = None
    try:
        head = file.read_bytes()[:5]
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    try:
        if head == b"%PDF-":
            check, signed = verify_pdf(file.read_bytes(), trusted)
            number = signed["report"].get("number")
        else:
            data = _load_json(file, "report")
            check = verify_report(data, trusted)
            number = data["report"].get("number")
    except LedgerError as exc:
        if as_json:
            _print_json({"verified": False, "error": exc.code, "message": exc.message})
        fail(f"report does NOT verify: {exc.message}", 1)
    if as_json:
        _print_json({**check.to_json(), "number": number})
        return
    console.print(
        f"[green]OK[/] report {number or '-'} signed by {escape(check.signer)} at "
        f"{check.signed_at}; it says: chain {check.chain_id} up to height {check.head_height} "
        f"is {escape(check.result)}",
        highlight=False,
    )


report_app.command("verify")(report_verify)
#: `parktrace report verify`: the same check, for whoever holds a report and the genesis.
public_report_app = typer.Typer(help="Check signed audit reports (JSON or PDF) offline.")
public_report_app.command("verify")(report_verify)


@report_app.command("pdf")
@with_signer
def report_pdf(
    file: Annotated[Path, typer.Argument(help="REPORT.json (signed)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="PDF to write")],
    lang: Annotated[str, typer.Option("--lang", help="zh or en")] = "zh",
    *,
    signer: Signer,
) -> None:
    """Render a signed report as a sealed PDF again (sealed with the key that signed it)."""
    _check_lang(lang)
    data = _load_json(file, "report")
    if not isinstance(data, dict) or set(data) != {"report", "signature"}:
        fail(f"{file} is not a signed audit report")
    _write(out, _sealed_pdf(data, signer.identity(), lang))
    console.print(escape(f"{out} written"), highlight=False)
