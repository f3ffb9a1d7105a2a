"""`parktrace codes`: issue serialised codes for a lot and print them.

    parktrace codes issue --gtin 6901234000124 --lot GN26-1105-A --count 1000 --out DIR \\
        --consortium var/consortium --org ganzhou-packing-house [--attr 7007=261103]
    parktrace codes qr URI --out code.svg
    parktrace codes keygen --out resolver.key

`issue` draws the batch key here, seals it to the node's resolver key, signs the
`codes.issue` transaction with your key, records it through the node (one transaction,
whatever the count), then writes DIR/codes.csv, PNG and SVG QR codes (png/0000/…, a
directory per thousand) and PDF label sheets, with a progress bar. DIR holds every valid
code of the batch: guard it like the labels themselves.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from api.codes import render
from api.codes.sheets import LabelLayout, label_pdf
from cli.options import (
    Signer,
    Url,
    fail,
    with_signer,
)
from sdk.client import DEFAULT_URL, ApiClientError, ParkTraceClient
from traceability.codes import CodeError
from traceability.codes.batch import TX_TYPE, Batch, new_batch
from traceability.codes.digital_link import build, parse_uri
from traceability.codes.gtin import park_gtin
from traceability.codes.sealing import ResolverKey, ResolverPublicKey

app = typer.Typer(help="Serialised product codes: issue, render, resolver keys.")
console = Console()
#: Codes per PDF file (250 pages of 40 labels).
SHEET_CODES = 10_000
#: Files per directory of PNG/SVG output.
SHARD = 1000
FORMATS = ("png", "svg", "pdf")


@contextmanager
def _session(url: str) -> Iterator[httpx.Client]:
    """An HTTP client of the node (tests replace this with one of their own)."""
    with httpx.Client(base_url=url.rstrip("/"), timeout=60.0) as http:
        yield http


def _call(http: httpx.Client, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response = http.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        fail(f"cannot reach the node at {http.base_url}: {exc}")
    if response.status_code >= 400:
        try:
            body = response.json()
            message = f"{body.get('error')}: {body.get('message')}"
        except ValueError:
            message = f"HTTP {response.status_code}"
        fail(message)
    return response.json()


def _parse_attrs(attrs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in attrs:
        ai, sep, value = item.partition("=")
        if not sep:
            fail(f"--attr {item!r}: write AI=VALUE, e.g. 7007=261103")
        out[ai.strip()] = value.strip()
    return out


def _write_outputs(
    out: Path, batch: Batch, serials: list[str], formats: tuple[str, ...], scale: int, ec: str
) -> dict[str, int]:
    """codes.csv, PNG/SVG files and PDF sheets, with one progress bar for all of it."""
    out.mkdir(parents=True, exist_ok=True)
    host = batch.resolver
    with (out / "codes.csv").open("w", encoding="utf-8") as csv:
        csv.write("index,serial,uri\n")
        for i, serial in enumerate(serials):
            csv.write(f"{i},{serial},{batch.code(serial).uri(host)}\n")
    per_code = sum(f in formats for f in ("png", "svg", "pdf"))
    written = {f: 0 for f in formats}
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    started = time.perf_counter()
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("rendering", total=len(serials) * per_code, rate="")

        def advance(n: int = 1) -> None:
            bar.advance(task, n)
            done = bar.tasks[0].completed
            elapsed = time.perf_counter() - started
            if elapsed > 0 and int(done) % 200 == 0:
                bar.update(task, rate=f"{done / elapsed:,.0f} images/s")

        for i, serial in enumerate(serials):
            uri = batch.code(serial).uri(host)
            shard = f"{i // SHARD:04d}"
            stem = f"{i:07d}-{serial}"
            if "png" in formats:
                target = out / "png" / shard / f"{stem}.png"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(render.png(uri, ec=ec, scale=scale))
                written["png"] += 1
                advance()
            if "svg" in formats:
                target = out / "svg" / shard / f"{stem}.svg"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(render.svg(uri, ec=ec, scale=scale), encoding="utf-8")
                written["svg"] += 1
                advance()
        if "pdf" in formats:
            title = f"GTIN {batch.link.gtin} lot {batch.link.lot}"
            for part, start in enumerate(range(0, len(serials), SHEET_CODES), start=1):
                chunk = [batch.code(s) for s in serials[start : start + SHEET_CODES]]
                name = "labels.pdf" if len(serials) <= SHEET_CODES else f"labels-{part:03d}.pdf"
                data = label_pdf(
                    ((link, link.uri(host)) for link in chunk),
                    title=title,
                    ec=ec,
                    layout=LabelLayout(),
                    progress=advance,
                    names=batch.names,
                )
                (out / name).write_bytes(data)
                written["pdf"] += 1
    return written


@app.command("issue")
@with_signer
def issue(
    lot: Annotated[str, typer.Option("--lot", help="the lot (batch) number, AI 10")],
    count: Annotated[int, typer.Option("--count", help="how many serialised codes")],
    out: Annotated[Path, typer.Option("--out", help="directory for codes.csv, images, PDF")],
    gtin: Annotated[str | None, typer.Option("--gtin", help="GTIN-8/12/13/14")] = None,
    park_item: Annotated[
        str | None,
        typer.Option("--park-item", help="item reference under the park's GS1 prefix"),
    ] = None,
    attr: Annotated[
        list[str] | None,
        typer.Option("--attr", help="data attribute AI=VALUE, e.g. 7007=261103 (repeatable)"),
    ] = None,
    name_en: Annotated[str | None, typer.Option("--name-en", help="product name")] = None,
    name_zh: Annotated[str | None, typer.Option("--name-zh", help="产品名称")] = None,
    formats: Annotated[
        str, typer.Option("--formats", help="comma-separated: png, svg, pdf")
    ] = "png,svg,pdf",
    scale: Annotated[int, typer.Option("--scale", help="PNG/SVG pixels per module")] = 8,
    ec: Annotated[str, typer.Option("--ec", help="QR error correction: L, M, Q, H")] = "M",
    url: Url = DEFAULT_URL,
    *,
    signer: Signer,
    wait: Annotated[float, typer.Option("--wait", help="seconds to wait for the commit")] = 30,
) -> None:
    """Issue COUNT serialised codes for a lot: one ledger transaction, then the images."""
    chosen = tuple(f.strip() for f in formats.split(",") if f.strip())
    if not set(chosen) <= set(FORMATS):
        fail(f"--formats: choose from {', '.join(FORMATS)}")
    if ec not in render.EC_LEVELS:
        fail("--ec: choose L, M, Q or H")
    if not 1 <= scale <= 40:
        fail("--scale: 1 to 40 pixels per module")
    me = signer.identity()
    names = {k: v for k, v in (("en", name_en), ("zh", name_zh)) if v}
    with _session(url) as http:
        settings = _call(http, "GET", "/v1/codes/settings")
        try:
            if park_item is not None:
                if gtin is not None or not settings.get("parkPrefix"):
                    fail("--park-item needs a node with a park prefix, and no --gtin")
                gtin = park_gtin(settings["parkPrefix"], park_item)
            if gtin is None:
                fail("give --gtin (or --park-item)")
            link = build(gtin, lot, attributes=_parse_attrs(attr or []))
            keys = [ResolverPublicKey.from_json(k) for k in settings["resolverKeys"]]
            batch, batch_key = new_batch(
                link, count, keys, settings["resolverHost"], names=names or None
            )
        except CodeError as exc:
            fail(exc.message)
        except (KeyError, ValueError) as exc:
            fail(f"the node's code settings are unusable: {exc}")
        client = ParkTraceClient(http=http)
        started = time.perf_counter()
        serials = list(batch.serial_key(batch_key).serials(0, count))
        derived = time.perf_counter() - started
        tx = me.sign_tx(client.chain_id, TX_TYPE, batch.payload())
        accepted = _call(http, "POST", "/v1/codes", json={"transaction": tx.to_json()})
        console.print(
            f"batch {batch.id}: {count:,} codes derived in {derived:.2f}s; transaction "
            f"{accepted['transaction']} {accepted['state']}",
            highlight=False,
        )
        height = None
        if wait > 0:
            try:
                status = client.wait(tx.id, wait)
            except ApiClientError as exc:
                fail(f"{exc.code}: {exc.message}")
            if status["state"] == "rejected":
                fail(f"the batch was rejected: {status.get('reason')}")
            height = status.get("height")
            if status["state"] == "committed":
                console.print(f"[green]recorded[/] in block {height}", highlight=False)
            else:
                console.print(f"still {status['state']} after {wait:g}s", highlight=False)
    written = _write_outputs(out, batch, serials, chosen, scale, ec)
    (out / "batch.json").write_text(
        json.dumps(
            {**batch.to_json(), "transaction": tx.id, "height": height},
            ensure_ascii=False,
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    console.print(
        f"wrote {escape(str(out))}: codes.csv, batch.json"
        + "".join(f", {n:,} {f.upper()}" for f, n in written.items()),
        highlight=False,
    )


@app.command("qr")
def qr(
    uri: Annotated[str, typer.Argument(help="a GS1 Digital Link URI")],
    out: Annotated[Path, typer.Option("--out", help="FILE.png or FILE.svg")],
    scale: Annotated[int, typer.Option("--scale")] = 8,
    ec: Annotated[str, typer.Option("--ec")] = "M",
) -> None:
    """Render one code (checked first: a bad URI is refused with the reason)."""
    try:
        link = parse_uri(uri)
    except CodeError as exc:
        fail(exc.message)
    if ec not in render.EC_LEVELS:
        fail("--ec: choose L, M, Q or H")
    host = uri.split("/")[2].lower()
    text = link.uri(host)
    if out.suffix.lower() == ".svg":
        out.write_text(render.svg(text, ec=ec, scale=scale), encoding="utf-8")
    elif out.suffix.lower() == ".png":
        out.write_bytes(render.png(text, ec=ec, scale=scale))
    else:
        fail("--out: name a .png or .svg file")
    console.print(f"{escape(text)} -> {escape(str(out))}", highlight=False)


@app.command("keygen")
def keygen(
    out: Annotated[Path, typer.Option("--out", help="where to write the resolver key")],
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing file")] = False,
) -> None:
    """Create a resolver key (X25519) for the nodes that check scans. Keep it secret;
    give the same file to every node that resolves codes (PARKTRACE_RESOLVER_KEY)."""
    if out.exists() and not force:
        fail(f"{out} exists; pass --force to replace it")
    key = ResolverKey.generate()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key.text())
    console.print(f"resolver key {key.id} written to {escape(str(out))} (mode 0600)")
