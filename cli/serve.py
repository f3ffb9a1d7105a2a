"""`parktrace serve --solo`: the whole consortium in one process, serving the API.

For development and trying the API: one node that holds every validator key (from a
consortium directory) and commits a block of pending transactions every
`--block-interval` seconds. Consortium members run the consensus runtime instead,
which mounts the same API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.options import err, fail, read_passphrase
from ledger.errors import LedgerError
from sdk.client import DEFAULT_PORT


def serve(
    solo: Annotated[bool, typer.Option("--solo", help="single-process dev node")] = False,
    consortium: Annotated[
        Path, typer.Option("--consortium", help="consortium directory (with validator keys)")
    ] = Path("var/demo/consortium"),
    db: Annotated[str, typer.Option("--db", help="database URL or SQLite path")] = "node.db",
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535)] = DEFAULT_PORT,
    block_interval: Annotated[float, typer.Option("--block-interval", min=0.001)] = 0.2,
    capture_signer: Annotated[
        list[str] | None,
        typer.Option(
            "--capture-signer",
            help="ORG[/USER]: sign /capture'd events of ORG with this user's key (repeatable)",
        ),
    ] = None,
    index_db: Annotated[
        str | None, typer.Option("--index-db", help="event index database (default: memory)")
    ] = None,
    public_url: Annotated[
        list[str] | None,
        typer.Option(
            "--public-url",
            help="URL clients reach this API at besides --host/--port (a proxy, a DNS "
            "name); request signatures must name one of these (repeatable)",
        ),
    ] = None,
    passphrase_file: Annotated[Path | None, typer.Option("--passphrase-file")] = None,
    log_level: Annotated[str, typer.Option("--log-level")] = "warning",
) -> None:
    """Serve the API of a single-process node (--solo), committing blocks itself."""
    from api.app import create_app
    from api.authorities import own_authorities
    from api.codes.service import install
    from api.edge.server import edge_server
    from api.services import ApiSettings
    from ledger.consortium import Consortium
    from ledger.store import Store
    from nodes.scanbatch import ScanBatcher
    from nodes.solo import SoloNode
    from sdk.signing import Identity

    if not solo:
        fail("only --solo is available here; consortium members serve the API from their node")
    passphrase = read_passphrase(passphrase_file)
    try:
        park = Consortium.load(consortium, passphrase)
        keys = park.validator_keys
        if len(keys) < park.genesis.validator_set().quorum:
            fail(f"{consortium} holds {len(keys)} validator keys; a quorum is needed for --solo")
        signers = {}
        for spec in capture_signer or []:
            org, _, user = spec.partition("/")
            signers[org] = Identity.from_consortium(consortium, org, user or None, passphrase)
        node = SoloNode(park.genesis, keys, Store(db), block_interval=block_interval)
        settings = ApiSettings(
            index_url=index_db,
            capture_signers=signers,
            # the batcher is made below, once the app holds its outbox; it runs with the app
            background=(node.run, lambda: batcher.run()),
            authorities=own_authorities((host, port), public_url or ()),
        )
        app = create_app(node, settings=settings)
        codes = install(app)
        validator = next(v for v in node.membership.validator_certs if v in keys)
        interval = codes.settings.scan_batch_seconds
        batcher = ScanBatcher.for_validator(
            node, codes.outbox, validator, keys[validator], interval=interval
        )
    except FileNotFoundError as exc:
        fail(f"{exc.filename} not found (is {consortium} a consortium directory?)")
    except OSError as exc:
        fail(f"{getattr(exc, 'filename', '') or consortium}: {exc.strerror or exc}")
    except (LedgerError, ValueError) as exc:
        fail(getattr(exc, "message", str(exc)))
    err.print(
        f"ParkTrace solo node for chain {park.genesis.chain_id} on http://{host}:{port} "
        f"(height {node.height}; API docs at /docs)",
        highlight=False,
    )
    edge_server(app, host, port, settings.limits, log_level=log_level).run()
