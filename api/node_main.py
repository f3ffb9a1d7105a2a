"""`parktrace node run`: one consortium member's node and its public API in one process.

The node and the API share one event loop. SIGTERM and SIGINT stop the API from taking
requests, then the node (peer links closed, store closed); nothing committed is lost
because every block is durable before it is acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from fastapi import FastAPI
from pythonjsonlogger.json import JsonFormatter

from nodes.config import NodeConfig
from nodes.runtime import Node
from nodes.scanbatch import ScanBatcher
from sdk.signing import Identity

from .codes.service import CodesService, CodesSettings, install
from .edge.server import EdgeServer, edge_server
from .routes import ops

log = logging.getLogger("parktrace.node")


class _EmbeddedServer(EdgeServer):
    """uvicorn without its own signal handling: the node process owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def setup_logging(level: str = "INFO") -> None:
    """One JSON object per line on stderr: easy to ship and to grep."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    # Libraries that log their chatter on the root logger: keep only their warnings.
    handler.addFilter(lambda record: record.name != "root" or record.levelno >= logging.WARNING)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("uvicorn.access").setLevel("WARNING")


def capture_signers(config: NodeConfig) -> dict[str, Identity]:
    """The identities `[capture] signers` names, by organisation."""
    assert config.consortium is not None or not config.capture_signers
    signers = {}
    for spec in config.capture_signers:
        org, _, user = spec.partition("/")
        signers[org] = Identity.from_consortium(
            config.consortium, org, user or None, config.key_passphrase
        )
    return signers


def codes_settings(config: NodeConfig) -> CodesSettings:
    """The resolver's settings from the environment; the outbox of consumer observations
    not yet committed is in the node's data_dir unless PARKTRACE_SCAN_DB names another."""
    settings = CodesSettings.from_env()
    if settings.scan_log_url is not None:
        return settings
    return replace(settings, scan_log_url=f"sqlite:///{config.data_dir / 'scans-outbox.db'}")


def scan_batcher(node: Node, codes: CodesService) -> ScanBatcher | None:
    """What seals this validator's observations into transactions (None if genesis no
    longer lists it as a validator: a node that cannot sign them keeps them)."""
    if node.config.id not in node.membership.validator_certs:
        return None
    return ScanBatcher.for_validator(
        node,
        codes.outbox,
        node.config.id,
        node.key,
        interval=codes.settings.scan_batch_seconds,
    )


def build_app(node: Node) -> FastAPI:
    from .app import create_app
    from .authorities import own_authorities
    from .services import ApiSettings

    config = node.config
    settings = ApiSettings(
        limits=config.api,
        authorities=own_authorities(config.api_listen, config.public_urls),
        capture_signers=capture_signers(config),
    )
    app = create_app(node, settings=settings)
    app.state.node = node
    install(app, codes_settings(config))
    app.include_router(ops.router)
    return app


async def serve(node: Node, *, install_signals: bool = True) -> None:
    host, port = node.config.api_listen
    app = build_app(node)
    server = edge_server(
        app,
        host,
        port,
        node.config.api,
        kind=_EmbeddedServer,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    stop = asyncio.Event()
    if install_signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    node_task = asyncio.create_task(node.run(), name="node")
    api_task = asyncio.create_task(server.serve(), name="api")
    stop_task = asyncio.create_task(stop.wait(), name="signal")
    batcher = scan_batcher(node, app.state.codes)
    batch_task = asyncio.create_task(batcher.run(), name="scans") if batcher else None
    done, _ = await asyncio.wait({node_task, api_task, stop_task}, return_when="FIRST_COMPLETED")
    log.info("shutting down")
    server.should_exit = True
    with contextlib.suppress(Exception):
        await asyncio.wait_for(api_task, 10)
    for task in (batch_task, node_task):
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    stop_task.cancel()
    if node_task in done and node_task.exception() is not None:
        raise node_task.exception()  # type: ignore[misc]
    log.info("stopped cleanly")


def run(config_path: Path) -> None:
    """Load the configuration, start the node, serve until a signal."""
    config = NodeConfig.load(config_path)
    setup_logging()
    node = Node(config)
    asyncio.run(serve(node))
