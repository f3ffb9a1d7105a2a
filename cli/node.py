"""`parktrace node run` and `parktrace cluster up|status|down`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cli.options import fail
from ledger.errors import LedgerError
from nodes.config import BlockConfig

node_app = typer.Typer(help="Run one consortium member's node.", no_args_is_help=True)
cluster_app = typer.Typer(help="A local consortium as separate processes.", no_args_is_help=True)
# Piped output (logs, scripts) gets full-width rows instead of truncated node ids.
console = Console(width=None if sys.stdout.isatty() else 160)


@node_app.command("run")
def node_run(
    config: Path = typer.Option(..., "--config", "-c", help="The node's node.toml"),
) -> None:
    """Run the node (consensus, peer links, store) and its public API until SIGTERM/SIGINT."""
    from api.node_main import run

    try:
        run(config)
    except LedgerError as exc:
        fail(exc.message)
    except OSError as exc:
        fail(f"{exc.filename or ''}: {exc.strerror}")
    except Exception as exc:  # a refusal is one line, never a traceback
        fail(f"{type(exc).__name__}: {exc}", 1)


@node_app.command("reset-signstate")
def node_reset_signstate(
    config: Path = typer.Option(..., "--config", "-c", help="The node's node.toml"),
    i_understand: bool = typer.Option(
        False,
        "--i-understand",
        help="Confirm: the node is stopped and no other process signs with its key",
    ),
) -> None:
    """Record that this validator may have signed up to the next height of its store, so
    that a node whose sign state is lost signs again only above it (run with the node
    stopped; without it the node waits for its peers to show that height instead)."""
    import logging

    from api.node_main import setup_logging
    from ledger.store import Store
    from nodes.config import NodeConfig
    from nodes.signguard import write_floor
    from nodes.signstore import SignStore

    if not i_understand:
        fail("refusing without --i-understand (stop the node first)")
    try:
        settings = NodeConfig.load(config)
        store = Store(settings.db)
        try:
            height = store.height()
        finally:
            store.close()
        held = SignStore(settings.data_dir / "signstate.json").load()
        signed_up_to = max(height + 1, held.height if held is not None else 0)
        path = write_floor(settings.data_dir, signed_up_to, "parktrace node reset-signstate")
    except LedgerError as exc:
        fail(exc.message)
    except OSError as exc:
        fail(f"{exc.filename or ''}: {exc.strerror}")
    setup_logging()
    logging.getLogger("parktrace.node").warning(
        "operator reset of the sign state of %s: signing only above height %d (%s)",
        settings.id,
        signed_up_to,
        path,
    )
    console.print(f"{settings.id}: will sign only above height {signed_up_to} ({path})")


@node_app.command("health")
def node_health(
    url: str = typer.Option(
        "http://127.0.0.1:8000", "--url", envvar="PARKTRACE_URL", help="The node's API"
    ),
    timeout: float = typer.Option(3.0, help="Seconds to wait for the answer"),
) -> None:
    """Exit 0 if the node answers /healthz (the container health check), 1 if not."""
    import httpx

    try:
        response = httpx.get(f"{url.rstrip('/')}/healthz", timeout=timeout)
        info = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        fail(f"{url}: {exc or type(exc).__name__}", 1)
    if not isinstance(info, dict) or info.get("status") != "ok":
        fail(f"{url}/healthz: not healthy (HTTP {response.status_code})", 1)
    console.print(f"ok: height {info.get('height')}, {len(info.get('peers', []))} peers")


@cluster_app.command("up")
def cluster_up(
    nodes: int = typer.Option(4, "--nodes", "-n", min=1, max=16, help="Validators to run"),
    directory: Path = typer.Option(Path("var/cluster"), "--dir", "-d", help="Cluster directory"),
    p2p_port: int = typer.Option(26600, help="Peer ports are this plus 1, 2, …"),
    api_port: int = typer.Option(8600, help="API ports are this plus 1, 2, …"),
    batch_ms: int = typer.Option(100, help="How long a proposer waits for a fuller block"),
    idle_ms: int = typer.Option(10_000, help="Heartbeat block interval when idle"),
    timeout: float = typer.Option(60.0, help="Seconds to wait for the nodes to be ready"),
) -> None:
    """Create what is missing (consortium, keys, configs), start every node, wait for them."""
    from devtools import cluster

    try:
        found = cluster.create(
            directory,
            nodes=nodes,
            p2p_port=p2p_port,
            api_port=api_port,
            blocks=BlockConfig(batch_ms=batch_ms, idle_ms=idle_ms),
        )
        for member in found:
            cluster.start(directory, member.id)
        missing = cluster.wait_ready(directory, found, timeout)
    except LedgerError as exc:
        fail(exc.message)
    if missing:
        logs = ", ".join(str(directory / m / "node.log") for m in missing)
        fail(f"not ready: {', '.join(missing)} (see {logs})", 1)
    _status_table(directory)


@cluster_app.command("init")
def cluster_init(
    nodes: int = typer.Option(4, "--nodes", "-n", min=1, max=16, help="Validators"),
    directory: Path = typer.Option(Path("var/cluster"), "--dir", "-d", help="Cluster directory"),
    compose: bool = typer.Option(
        False,
        "--compose",
        help="For docker-compose: service names, PostgreSQL per node, one bundle per node",
    ),
) -> None:
    """Write the consortium and every node's node.toml without starting anything."""
    from devtools import cluster

    try:
        found = cluster.create(directory, nodes=nodes, compose=compose)
    except LedgerError as exc:
        fail(exc.message)
    for member in found:
        console.print(f"{member.id}: {directory / member.id / 'node.toml'}", highlight=False)
    if compose:
        env_file = directory / cluster.compose_bundle.COMPOSE_ENV
        console.print(f"then: docker compose --env-file {env_file} up --build", highlight=False)


@cluster_app.command("status")
def cluster_status(
    directory: Path = typer.Option(Path("var/cluster"), "--dir", "-d", help="Cluster directory"),
) -> None:
    """Each node's height, peers and last block time."""
    try:
        down = _status_table(directory)
    except LedgerError as exc:
        fail(exc.message)
    if down:
        raise typer.Exit(1)


@cluster_app.command("down")
def cluster_down(
    directory: Path = typer.Option(Path("var/cluster"), "--dir", "-d", help="Cluster directory"),
) -> None:
    """Stop every node cleanly (SIGTERM; SIGKILL only if one does not stop in time)."""
    from devtools import cluster

    try:
        found = cluster.members(directory)
    except LedgerError as exc:
        fail(exc.message)
    for member in found:
        stopped = cluster.stop(directory, member.id)
        console.print(f"{member.id}: {'stopped' if stopped else 'was not running'}")


def _status_table(directory: Path) -> int:
    from devtools import cluster

    table = Table(title=f"Cluster {directory}")
    for column in ("node", "pid", "api", "height", "peers", "last block (UTC)", "mempool"):
        table.add_column(column)
    down = 0
    found = cluster.members(directory)
    for member in found:
        pid = cluster.pid_of(directory, member.id)
        info = cluster.health(member) if pid else None
        if info is None:
            down += 1
            table.add_row(member.id, str(pid or "-"), member.api, "[red]down[/]", "", "", "")
            continue
        table.add_row(
            member.id,
            str(pid),
            member.url,
            str(info["height"]),
            f"{len(info['peers'])}/{len(info['peer_heights']) or len(info['peers'])}",
            info.get("last_block_time") or "-",
            str(info["mempool"]),
        )
    console.print(table)
    return down
