"""Authenticated peer links between validators: mutual TLS 1.3 over TCP, framed messages.

Why mutual TLS rather than signed frames: every validator already holds an X.509
certificate from the consortium CA, TLS 1.3 authenticates both ends with it in the
handshake, and the link is encrypted as well (supply-chain data is commercially
sensitive), with no protocol of our own to get wrong. After the handshake the peer's
certificate key must belong to the current validator set, or the link is refused.

Each node dials every other validator and sends on the links it dialled; it receives on
the links it accepted. Two one-way links per pair need no tie-breaking and reconnect
independently. Frames are a 4-byte big-endian length and a JSON object; an oversized,
malformed or non-object frame closes that link (and is counted), never the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

log = logging.getLogger("parktrace.transport")

MAX_FRAME = 32 * 1024 * 1024
HEADER = 4
SEND_QUEUE = 10_000

#: Given the peer's raw Ed25519 public key, the validator id it belongs to, or None.
Identify = Callable[[bytes], str | None]
Handler = Callable[[str, dict[str, Any]], Awaitable[None] | None]


class FrameError(ValueError):
    """A frame that breaks the protocol: the link carrying it is closed."""


def encode_frame(message: dict[str, Any]) -> bytes:
    payload = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(payload) > MAX_FRAME:
        raise FrameError(f"message of {len(payload)} bytes exceeds the {MAX_FRAME}-byte limit")
    return len(payload).to_bytes(HEADER, "big") + payload


async def read_frame(reader: asyncio.StreamReader, limit: int = MAX_FRAME) -> dict[str, Any]:
    size = int.from_bytes(await reader.readexactly(HEADER), "big")
    if size > limit:
        raise FrameError(f"frame of {size} bytes exceeds the {limit}-byte limit")
    payload = await reader.readexactly(size)
    try:
        message = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FrameError(f"frame is not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise FrameError("frame is not a JSON object")
    return message


@dataclass(frozen=True)
class TlsFiles:
    """A node's certificate and key, and the CA its peers must chain to: a file, or the
    PEM text itself (the node takes it from genesis, so it needs no file of it)."""

    certificate: Path
    key: Path
    ca: Path | None
    key_passphrase: bytes | None = None
    ca_pem: str | None = None

    def context(self, server: bool) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(self.certificate, self.key, password=self.key_passphrase)
        ctx.load_verify_locations(cafile=self.ca, cadata=self.ca_pem)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.check_hostname = False  # peers are identified by their certificate key, below
        return ctx


def peer_public_key(writer: asyncio.StreamWriter) -> bytes | None:
    ssl_object = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
    if der is None:
        return None
    key = x509.load_der_x509_certificate(der).public_key()
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass
class LinkStats:
    sent: int = 0
    received: int = 0
    dropped_frames: int = 0
    refused_peers: int = 0
    connected: set[str] = field(default_factory=set)


class PeerNetwork:
    """This node's links to the other validators."""

    def __init__(
        self,
        me: str,
        tls: TlsFiles,
        peers: dict[str, tuple[str, int]],
        identify: Identify,
        handler: Handler,
        *,
        retry_delay: float = 0.5,
    ) -> None:
        self.me = me
        self.tls = tls
        self.peers = {pid: addr for pid, addr in peers.items() if pid != me}
        self.identify = identify
        self.handler = handler
        self.retry_delay = retry_delay
        self.stats = LinkStats()
        self._queues: dict[str, asyncio.Queue[bytes]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._server: asyncio.Server | None = None
        self._inbound: set[asyncio.StreamWriter] = set()

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self, host: str, port: int) -> int:
        """Listen for peers and start dialling them. Returns the port listened on."""
        self._server = await asyncio.start_server(
            self._accept, host, port, ssl=self.tls.context(server=True), limit=2**16
        )
        for peer in self.peers:
            self._queues[peer] = asyncio.Queue(SEND_QUEUE)
            self._tasks.append(asyncio.create_task(self._dial(peer), name=f"dial-{peer}"))
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop dialling, close every link. Inbound handlers end on their closed stream
        (cancelling them instead makes asyncio's stream callbacks log errors)."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._inbound):
            writer.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    # -- sending -----------------------------------------------------------------------------
    def send(self, peer: str, message: dict[str, Any]) -> None:
        """Queue a message for one peer; when its queue is full the oldest is dropped
        (consensus re-gossips, so a lost message costs time, not safety)."""
        self._enqueue(peer, encode_frame(message))

    def broadcast(self, message: dict[str, Any]) -> None:
        frame = encode_frame(message)
        for peer in self._queues:
            self._enqueue(peer, frame)

    def _enqueue(self, peer: str, frame: bytes) -> None:
        queue = self._queues.get(peer)
        if queue is None:
            return
        if queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()
        queue.put_nowait(frame)

    async def _dial(self, peer: str) -> None:
        host, port = self.peers[peer]
        queue = self._queues[peer]
        while True:
            writer = None
            try:
                _, writer = await asyncio.open_connection(
                    host, port, ssl=self.tls.context(server=False)
                )
                key = peer_public_key(writer)
                if key is None or self.identify(key) != peer:
                    log.warning("peer at %s:%s is not validator %s; not sending", host, port, peer)
                    raise ConnectionError("wrong peer")
                self.stats.connected.add(peer)
                log.info("link to %s up", peer)
                while True:
                    frame = await queue.get()
                    writer.write(frame)
                    await writer.drain()
                    self.stats.sent += 1
            except asyncio.CancelledError:
                raise
            except (OSError, ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
                pass
            finally:
                self.stats.connected.discard(peer)
                if writer is not None:
                    writer.close()
            await asyncio.sleep(self.retry_delay)

    # -- receiving ---------------------------------------------------------------------------
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._inbound.add(writer)
        peer = None
        try:
            key = peer_public_key(writer)
            peer = self.identify(key) if key is not None else None
            if peer is None or peer == self.me:
                self.stats.refused_peers += 1
                log.warning("refused a link from a certificate outside the validator set")
                return
            while True:
                message = await read_frame(reader)
                self.stats.received += 1
                result = self.handler(peer, message)
                if result is not None:
                    await result
        except FrameError as exc:
            self.stats.dropped_frames += 1
            log.warning("closing link from %s: %s", peer, exc)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, OSError):
            pass
        except Exception:  # a message the node could not handle: drop the link, not the node
            self.stats.dropped_frames += 1
            log.exception("closing link from %s after an error handling its message", peer)
        finally:
            writer.close()
            self._inbound.discard(writer)
