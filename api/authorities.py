"""Which `@authority` values name this node: a request signed (RFC 9421) for another
node's address is refused here, so a signed request cannot be replayed across nodes.

The authorities come from where the API listens and from the public URLs clients use to
reach it (a reverse proxy, a LAN or DNS name, a container port mapping), normalised the
way RFC 9421 derives `@authority` from a request: host in lower case, the scheme's
default port left out.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from ledger.errors import SchemaError

_DEFAULT_PORTS = {"http": 80, "https": 443}
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def _host(host: str) -> str:
    """A host as it appears in an authority: lower case, IPv6 in brackets."""
    host = host.strip("[]").lower()
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]"
    except ValueError:
        pass
    return host


def _join(host: str, port: int) -> set[str]:
    """`host:port`, and the bare host too when the port is a scheme's default (the client
    then leaves it out of the Host header)."""
    found = {f"{_host(host)}:{port}"}
    if port in _DEFAULT_PORTS.values():
        found.add(_host(host))
    return found


def authority_of_url(url: str) -> str:
    """The `@authority` a client derives when it sends a request to `url`."""
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise SchemaError(f"public URL {url!r}: expected http(s)://host[:port][/path]")
    try:
        port = parts.port
    except ValueError:
        raise SchemaError(f"public URL {url!r}: bad port") from None
    host = _host(parts.hostname)
    return host if port in (None, _DEFAULT_PORTS[parts.scheme]) else f"{host}:{port}"


def listen_authorities(host: str, port: int) -> set[str]:
    """What clients on this machine or network call a server bound to `host:port`."""
    bare = host.strip("[]").lower()
    wildcard = bare in ("", "0.0.0.0", "::")
    loopback = bare == "localhost" or _is_loopback(bare)
    found: set[str] = set()
    if wildcard or loopback:
        for name in _LOOPBACK_NAMES:
            found |= _join(name, port)
    if wildcard:
        for name in {socket.gethostname(), socket.getfqdn()}:
            if name:
                found |= _join(name, port)
    else:
        found |= _join(bare, port)
    return found


def own_authorities(listen: tuple[str, int], public_urls: Iterable[str] = ()) -> frozenset[str]:
    """Every authority this node answers to: its listen address and its public URLs."""
    found = listen_authorities(*listen)
    found.update(authority_of_url(url) for url in public_urls)
    return frozenset(found)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
