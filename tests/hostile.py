"""Hostile clients over real sockets: what they send and what they get back. Shared by the
one-node tests (tests/test_hostile_clients.py) and the fault suite's attack on one node of
four (tests/test_faults.py), which judge the answers."""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

#: The attacked node's descriptor limit (a shell's usual soft limit): cheap to exhaust.
DESCRIPTORS = 1024
#: The attacked node's header timeout, shorter than the default so that tests are quick.
HEADER_TIMEOUT = 3.0
#: Connections a descriptor-exhaustion attack holds open: more than DESCRIPTORS.
IDLE_CONNECTIONS = 1100
MALFORMED = b"NOT HTTP AT ALL\r\n\r\n"

#: `python -c` arguments that run `node run --config CONFIG` with DESCRIPTORS descriptors.
LIMITED_NODE = (
    "import resource, runpy, sys; "
    f"resource.setrlimit(resource.RLIMIT_NOFILE, ({DESCRIPTORS}, {DESCRIPTORS})); "
    "sys.argv = ['parktrace', 'node', 'run', '--config', sys.argv[1]]; "
    "runpy.run_module('cli', run_name='__main__', alter_sys=True)"
)


def address_of(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("http://").rpartition(":")
    return host, int(port)


def with_header_timeout(config: Path, seconds: float = HEADER_TIMEOUT) -> str:
    """Give the node of `config` a header timeout of `seconds`; the text it had before."""
    before = config.read_text()
    section = re.search(r"^\[api\]$", before, flags=re.M)
    assert section is not None, f"no [api] section in {config}"
    at = section.end()
    config.write_text(f"{before[:at]}\nheader_timeout = {seconds}{before[at:]}")
    return before


def huge_batch() -> bytes:
    """A 30 MB batch of empty objects, under the old 32 MiB limit of batch bodies."""
    return b'{"transactions": [' + b"{}," * 10_000_000 + b"{}]}"


def amplifying_batch() -> Iterator[bytes]:
    """8 MB of `{}` (4 million dicts once parsed), streamed without Content-Length."""
    chunk = b",".join([b"{}"] * 100_000) + b","
    yield b'{"transactions": ['
    for _ in range(20):
        yield chunk
    yield b"{}]}"


def post(url: str, path: str, content: bytes | Iterator[bytes]) -> tuple[httpx.Response, float]:
    """POST a JSON body; the answer and how long it took."""
    start = time.monotonic()
    response = httpx.post(
        url + path, content=content, headers={"content-type": "application/json"}, timeout=30
    )
    return response, time.monotonic() - start


def raw_request(address: tuple[str, int], head: bytes, timeout: float = 10.0) -> bytes:
    """Send a request head (and no body) and read what the node answers."""
    with socket.create_connection(address, timeout=timeout) as conn:
        conn.sendall(head)
        chunks = []
        while True:
            try:
                chunk = conn.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def huge_status_head(address: tuple[str, int]) -> bytes:
    """The head of a 100 MB status query."""
    host, port = address
    return (
        f"POST /v1/transactions/status HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n"
    ).encode()


@contextlib.contextmanager
def idle_connections(
    address: tuple[str, int], count: int = IDLE_CONNECTIONS
) -> Iterator[list[socket.socket]]:
    """`count` connections that never send a byte, closed on leaving."""
    opened: list[socket.socket] = []
    try:
        for _ in range(count):
            opened.append(socket.create_connection(address, timeout=5))
        yield opened
    finally:
        for conn in opened:
            conn.close()


def turned_away(conns: list[socket.socket]) -> int:
    """How many of `conns` the node answered 503 (over its connection cap)."""
    count = 0
    for conn in conns:
        conn.settimeout(2)
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            count += conn.recv(100).startswith(b"HTTP/1.1 503")
    return count


def wait_until_served(url: str, within: float) -> bool:
    """Whether /healthz answers 200 within `within` seconds (503 while over the cap)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                return True
        time.sleep(0.2)
    return False


def slowloris(address: tuple[str, int], count: int = 50) -> dict[int, float]:
    """`count` connections each sending its head one byte a second; when the node closed
    each (seconds from the start), giving up after four header timeouts."""
    host, port = address
    head = f"GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\nX-Padding: {'a' * 100}\r\n"
    conns = [socket.create_connection(address, timeout=5) for _ in range(count)]
    start = time.monotonic()
    closed_at: dict[int, float] = {}
    try:
        for byte in head.encode():
            for i, conn in enumerate(conns):
                if i in closed_at:
                    continue
                try:
                    conn.send(bytes([byte]))
                    conn.setblocking(False)
                    if conn.recv(1) == b"":
                        closed_at[i] = time.monotonic() - start
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    closed_at[i] = time.monotonic() - start
                finally:
                    conn.setblocking(True)
            if len(closed_at) == len(conns) or time.monotonic() - start > 4 * HEADER_TIMEOUT:
                break
            time.sleep(1.0)
    finally:
        for conn in conns:
            conn.close()
    return closed_at
