"""Peer links on loopback: mutual TLS with the consortium's certificates, framing limits."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest

from ledger.consortium import Consortium
from nodes.transport import MAX_FRAME, PeerNetwork, TlsFiles, encode_frame


@pytest.fixture(scope="module")
def park_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import FIXED_NOW

    root = tmp_path_factory.mktemp("consortium")
    Consortium.sample(now=FIXED_NOW).write(root)
    return root


def tls_for(root: Path, org: str, kind: str, name: str, ca: Path | None = None) -> TlsFiles:
    return TlsFiles(
        root / "certs" / "orgs" / org / kind / f"{name}.pem",
        root / "keys" / "orgs" / org / kind / f"{name}.key",
        ca or root / "certs" / "ca.pem",
    )


NODES = {
    "park-committee-node": "park-committee",
    "testing-centre-node": "testing-centre",
}


def identify_from(park: Consortium):
    keys = {v.public_key.key: v.id for v in park.genesis.validator_set().validators}
    return keys.get


async def wait_for(predicate, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def test_validators_exchange_messages(park: Consortium, park_dir: Path) -> None:
    async def scenario() -> list[tuple[str, dict[str, Any]]]:
        received: list[tuple[str, dict[str, Any]]] = []
        identify = identify_from(park)
        # Reserve ports first so each side can dial the other.
        probe = {
            vid: await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0) for vid in NODES
        }
        ports = {vid: s.sockets[0].getsockname()[1] for vid, s in probe.items()}
        for s in probe.values():
            s.close()
            await s.wait_closed()
        nets = []
        for vid, org in NODES.items():
            peers = {p: ("127.0.0.1", port) for p, port in ports.items()}
            net = PeerNetwork(
                vid,
                tls_for(park_dir, org, "validators", vid),
                peers,
                identify,
                lambda peer, msg, me=vid: received.append((f"{peer}->{me}", msg)),
                retry_delay=0.05,
            )
            await net.start("127.0.0.1", ports[vid])
            nets.append(net)
        nets[0].broadcast({"kind": "hello", "n": 1})
        nets[1].send("park-committee-node", {"kind": "hello", "n": 2})
        await wait_for(lambda: len(received) == 2)
        for net in nets:
            await net.stop()
        return received

    received = asyncio.run(scenario())
    assert sorted((edge, msg["n"]) for edge, msg in received) == [
        ("park-committee-node->testing-centre-node", 1),
        ("testing-centre-node->park-committee-node", 2),
    ]


async def _server(park: Consortium, park_dir: Path, got: list) -> PeerNetwork:
    net = PeerNetwork(
        "park-committee-node",
        tls_for(park_dir, "park-committee", "validators", "park-committee-node"),
        {},
        identify_from(park),
        lambda peer, msg: got.append((peer, msg)),
    )
    net.port = await net.start("127.0.0.1", 0)  # type: ignore[attr-defined]
    return net


def test_member_certificate_that_is_not_a_validator_is_refused(
    park: Consortium, park_dir: Path
) -> None:
    async def scenario() -> tuple[int, list]:
        got: list = []
        net = await _server(park, park_dir, got)
        user = tls_for(park_dir, "gannan-orchard-coop", "users", "admin")
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", net.port, ssl=user.context(server=False)
        )
        writer.write(encode_frame({"kind": "hello"}))
        await writer.drain()
        await asyncio.wait_for(reader.read(), 5)  # the server closes the link
        await asyncio.sleep(0.05)
        await net.stop()
        return net.stats.refused_peers, got

    refused, got = asyncio.run(scenario())
    assert refused == 1 and got == []


def test_certificate_from_another_ca_fails_the_handshake(
    park: Consortium, park_dir: Path, tmp_path
) -> None:
    other_root = tmp_path / "other"
    Consortium.sample(seed=b"rogue park").write(other_root)

    async def scenario() -> list:
        got: list = []
        net = await _server(park, park_dir, got)
        rogue = tls_for(
            other_root,
            "park-committee",
            "validators",
            "park-committee-node",
            ca=park_dir / "certs" / "ca.pem",
        )
        with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", net.port, ssl=rogue.context(server=False)
            )
            writer.write(encode_frame({"kind": "hello"}))
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), 5)
            if not data:
                raise ConnectionError("closed")
        await net.stop()
        # Refused by TLS itself: the link never reached the validator-set check.
        assert net.stats.refused_peers == 0
        return got

    assert asyncio.run(scenario()) == []


@pytest.mark.parametrize(
    "frame",
    [
        (MAX_FRAME + 1).to_bytes(4, "big") + b"x" * 16,
        (7).to_bytes(4, "big") + b"{broken",
        (3).to_bytes(4, "big") + b"[1]",
    ],
    ids=["oversized", "not-json", "not-object"],
)
def test_bad_frame_closes_only_that_link(park: Consortium, park_dir: Path, frame: bytes) -> None:
    async def scenario() -> tuple[int, list]:
        got: list = []
        net = await _server(park, park_dir, got)
        peer = tls_for(park_dir, "testing-centre", "validators", "testing-centre-node")
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", net.port, ssl=peer.context(server=False)
        )
        writer.write(frame)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the node
        # The node still takes a well-behaved link afterwards.
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", net.port, ssl=peer.context(server=False)
        )
        writer.write(encode_frame({"kind": "hello"}))
        await writer.drain()
        await wait_for(lambda: len(got) == 1)
        writer.close()
        await net.stop()
        return net.stats.dropped_frames, got

    dropped, got = asyncio.run(scenario())
    assert dropped == 1
    assert got == [("testing-centre-node", {"kind": "hello"})]
