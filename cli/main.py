"""The `parktrace` command line.

Every failure a user can cause (bad file, bad URL, tampered chain) ends in a one-line
message on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from cli.options import err, fail
from ledger.errors import LedgerError

app = typer.Typer(
    name="parktrace",
    help="ParkTrace: a permissioned traceability ledger for the companies of an industrial park.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Help text is plain text, never Rich markup: option help such as "ORG[/USER]" or
    # "[role]" must print as written. Set on the root, it holds for every sub-command.
    rich_markup_mode=None,
)
console = Console(soft_wrap=True)  # URLs stay whole when output is piped


def _mount_subcommands() -> None:
    from cli.audit import app as audit_app
    from cli.audit import public_report_app
    from cli.codes import app as codes_app
    from cli.consortium import app as consortium_app
    from cli.node import cluster_app, node_app
    from cli.producer import mount as mount_producer

    app.add_typer(consortium_app, name="consortium")
    mount_producer(app)
    app.add_typer(node_app, name="node")
    app.add_typer(cluster_app, name="cluster")
    app.add_typer(codes_app, name="codes")
    app.add_typer(audit_app, name="audit")
    app.add_typer(public_report_app, name="report")


@app.command()
def verify(
    db: str = typer.Option(..., help="Database URL (sqlite:///path or postgresql://…) or path"),
    genesis: Path | None = typer.Option(
        None, help="Trusted genesis.json; without it the store's own copy is used"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
    workers: int = typer.Option(
        0, min=0, help="Worker processes (0: one per core; 1: this process alone)"
    ),
) -> None:
    """Recompute every hash, Merkle root, chain link and signature of a node's store.

    Uses every core (a process pool over block ranges) and shows progress on stderr.
    Exits 0 when the chain is intact, 1 naming the first bad height otherwise.
    """
    from cli.progress import verification_bar
    from ledger.genesis import Genesis
    from ledger.parallel import cores
    from ledger.store import Store
    from ledger.verify import Checked, verify_store
    from traceability.validity import trace_rules

    workers = workers or cores()

    try:
        trusted = Genesis.load(genesis) if genesis else None
        store = Store(db, migrate=False)
    except LedgerError as exc:
        fail(exc.message)
    except OSError as exc:
        fail(f"cannot read {exc.filename}: {exc.strerror}")
    try:
        with verification_bar() as bar:

            def show(checked: Checked) -> None:
                bar.update(checked.events, checked.events_total)

            report = verify_store(
                store, trusted, rules=trace_rules, workers=workers, on_checked=show
            )
    except LedgerError as exc:
        fail(exc.message)
    finally:
        store.close()
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    elif report.ok:
        rate = report.transactions / report.seconds if report.seconds else 0.0
        console.print(
            f"[green]OK[/] chain {report.chain_id}: {report.blocks} blocks, "
            f"{report.transactions} transactions, {report.signatures} signatures verified "
            f"in {report.seconds:.2f}s ({rate:,.0f} tx/s, {workers} worker process"
            f"{'es' if workers > 1 else ''}); head {report.head_height} "
            f"{report.head_hash[:16]}…, log size {report.log_size}",
            highlight=False,
        )
        console.print(f"genesis from {report.genesis_source}", style="dim")
    if not report.ok:
        assert report.problem is not None
        err.print(
            f"[bold red]FAILED[/] at height {report.problem.height}: {escape(report.problem.what)}",
            highlight=False,
        )
        raise typer.Exit(1)


@app.command()
def demo(
    data_dir: Path = typer.Option(
        Path("var/demo"), "--dir", help="Where the demo keeps its files", resolve_path=True
    ),
    reset: bool = typer.Option(False, "--reset", help="Start over instead of reusing data"),
    p2p_port: int = typer.Option(26600, help="Peer ports are this plus 1..4"),
    api_port: int = typer.Option(8600, help="API ports are this plus 1..4"),
    public_url: str | None = typer.Option(
        None,
        "--public-url",
        envvar="PARKTRACE_PUBLIC_URL",
        help="Base URL the printed codes and pages point at "
        "(default: http://<this machine's LAN address>:<first API port>)",
    ),
) -> None:
    """Run the park's consortium here: 4 nodes on SQLite, the three cases recorded, the
    pages to open printed. Stays up until Ctrl-C, then stops every node."""
    import qrcode

    from devtools import demo as demo_module

    try:
        manifest = demo_module.start(
            data_dir,
            reset=reset,
            p2p_port=p2p_port,
            api_port=api_port,
            public_url=public_url,
            say=console.print,
        )
    except LedgerError as exc:
        fail(exc.message)
    except OSError as exc:
        fail(f"{exc.filename}: {exc.strerror}")
    titles = {
        "orange": "Gannan navel orange box 赣南脐橙礼盒",
        "notoginseng": "Wenshan notoginseng powder jar 文山三七粉",
        "mask": "KN95 mask 口罩",
    }
    shown = _shown(data_dir)
    console.print("\n[bold]Consumer pages[/] (what a phone opens when it scans the code):")
    for name, case in manifest["cases"].items():
        console.print(f"  {titles.get(name, name)}\n    {case['page']}", highlight=False)
    console.print(f"\n[bold]API docs[/]   {manifest['docs']}", highlight=False)
    console.print("[bold]Nodes[/]      " + "  ".join(manifest["nodes"].values()), highlight=False)
    console.print("[bold]Regulator[/]  (signed with the bureau's own key)", highlight=False)
    for line in (
        f"parktrace verify --db {shown}/park-committee-node/node.db "
        f"--genesis {shown}/consortium/genesis.json",
        f"parktrace audit compare --cluster {shown} --consortium {shown}/consortium "
        "--org market-supervision-bureau",
    ):
        console.print(f"    {line}", highlight=False)
    mask = manifest["cases"]["mask"]
    console.print(f"\nThe mask's code, {mask['code']}:")
    code = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(mask["code"])
    code.print_ascii(tty=False, invert=True)
    console.print("\n[green]demo ready[/] — Ctrl-C stops every node", highlight=False)
    sys.stdout.flush()
    demo_module.wait_for_signal(data_dir, say=console.print)


def _shown(path: Path) -> str:
    """`path` as the user would type it: relative to the working directory when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main() -> None:  # pragma: no cover - `python -m cli`
    sys.exit(app())


_mount_subcommands()
