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

from ledger.errors import LedgerError

app = typer.Typer(
    name="parktrace",
    help="ParkTrace: a permissioned traceability ledger for the companies of an industrial park.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _mount_subcommands() -> None:
    from .cli_codes import app as codes_app
    from .cli_consortium import app as consortium_app
    from .cli_node import cluster_app, node_app
    from .cli_producer import mount as mount_producer

    app.add_typer(consortium_app, name="consortium")
    mount_producer(app)
    app.add_typer(node_app, name="node")
    app.add_typer(cluster_app, name="cluster")
    app.add_typer(codes_app, name="codes")


@app.command()
def verify(
    db: str = typer.Option(..., help="Database URL (sqlite:///path or postgresql://…) or path"),
    genesis: Path | None = typer.Option(
        None, help="Trusted genesis.json; without it the store's own copy is used"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
) -> None:
    """Recompute every hash, Merkle root, chain link and signature of a node's store.

    Exits 0 when the chain is intact, 1 naming the first bad height otherwise.
    """
    from ledger.genesis import Genesis
    from ledger.store import Store
    from ledger.verify import verify_store

    try:
        trusted = Genesis.load(genesis) if genesis else None
        store = Store(db, migrate=False)
    except LedgerError as exc:
        raise fail(exc.message) from None
    except OSError as exc:
        raise fail(f"cannot read {exc.filename}: {exc.strerror}") from None
    try:
        report = verify_store(store, trusted)
    except LedgerError as exc:
        raise fail(exc.message) from None
    finally:
        store.close()
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    elif report.ok:
        rate = report.transactions / report.seconds if report.seconds else 0.0
        console.print(
            f"[green]OK[/] chain {report.chain_id}: {report.blocks} blocks, "
            f"{report.transactions} transactions, {report.signatures} signatures verified "
            f"in {report.seconds:.2f}s ({rate:,.0f} tx/s); head {report.head_height} "
            f"{report.head_hash[:16]}…, log size {report.log_size}",
            highlight=False,
        )
        console.print(f"genesis from {report.genesis_source}", style="dim")
    if not report.ok:
        assert report.problem is not None
        err.print(
            f"[bold red]FAILED[/] at height {report.problem.height}: {report.problem.what}",
            highlight=False,
        )
        raise typer.Exit(1)


@app.command()
def demo(
    data_dir: Path = typer.Option(Path("demo-data"), help="Where the demo keeps its files"),
    reset: bool = typer.Option(False, "--reset", help="Start over instead of reusing data"),
) -> None:
    """Build the park's sample consortium and a chain of its three cases on SQLite, then
    verify the whole chain and print the report."""
    from rich.table import Table

    from . import demo as demo_module

    try:
        consortium, store = demo_module.prepare(data_dir, reset=reset, say=console.print)
        report = demo_module.verify(consortium, store)
    except LedgerError as exc:
        raise fail(exc.message) from None
    except OSError as exc:
        raise fail(f"{exc.filename}: {exc.strerror}") from None
    table = Table(title=f"Consortium {consortium.genesis.chain_id}")
    table.add_column("organisation")
    table.add_column("机构")
    table.add_column("roles")
    for org, _creds in consortium.genesis.organizations:
        table.add_row(org.id, org.name_zh, ", ".join(org.roles))
    console.print(table)
    db = store.safe_url
    store.close()
    if not report.ok:
        assert report.problem is not None
        raise fail(
            f"verification FAILED at height {report.problem.height}: {report.problem.what}", 1
        )
    console.print(
        f"[green]chain verified[/]: {report.blocks} blocks, {report.transactions} transactions, "
        f"{report.signatures} signatures in {report.seconds:.2f}s; head {report.head_hash[:16]}…",
        highlight=False,
    )
    console.print(
        f"verify it again: parktrace verify --db {db} "
        f"--genesis {data_dir / 'consortium' / 'genesis.json'}",
        highlight=False,
    )


def main() -> None:  # pragma: no cover - `python -m api`
    sys.exit(app())


_mount_subcommands()
