"""A running consortium for the console tests: four real node processes (tests.localnet),
the plots the journeys harvest from registered and approved, and each organisation's
user key written as the consortium tool writes it with a passphrase (PKCS#8, PBES2)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from api.histories import sgln
from ledger.timefmt import now
from ledger.tx import Transaction
from tests.localnet import LocalNet
from traceability.trust import PLOT_TX_TYPE

PASSPHRASE = "orchard-2026"
#: (organisation, plot id, GLN, crop, GI zone, centre, area ha, yield kg/ha)
PLOTS = (
    ("gannan-orchard-coop", "P07", sgln("0690123", 107), "navel-orange-fresh",
     "gannan-navel-orange", [115.45, 24.95], 8.0, 3000),
    ("wenshan-growers", "A12", sgln("0690456", 12), "notoginseng-root-fresh",
     "wenshan-notoginseng", [104.40, 23.02], 0.6, 1500),
    ("wenshan-growers", "B04", sgln("0690456", 4), "notoginseng-root-fresh",
     "wenshan-notoginseng", [104.36, 23.06], 0.5, 1500),
)  # fmt: skip


def commit(http: httpx.Client, url: str, tx: Transaction, timeout: float = 30) -> dict[str, Any]:
    answer = http.post(f"{url}/v1/transactions", json=tx.to_json())
    assert answer.status_code == 202, answer.text
    status = http.get(f"{url}/v1/transactions/{tx.id}", params={"wait": timeout}).json()
    assert status["state"] == "committed", status
    return status


def register_plots(net: LocalNet, url: str) -> None:
    park = net.consortium
    for org, plot_id, gln, crop, zone, centre, area, kg in PLOTS:
        change = {
            "plot": {
                "id": plot_id, "gln": gln, "crop": crop, "gi_zone": zone, "area_ha": area,
                "yield_kg_per_ha": kg, "centre": centre, "radius_m": 200,
            }
        }  # fmt: skip
        approvals = [park.approval("park-committee", PLOT_TX_TYPE, change)]
        tx = park.sign_tx(org, PLOT_TX_TYPE, {"change": change, "approvals": approvals}, now())
        commit(net.http, url, tx)
    time.sleep(0.2)  # a plot counts from the block after the one that registered it


def key_file(net: LocalNet, org: str, directory: Path, passphrase: str = PASSPHRASE) -> Path:
    """`org`'s first user key, encrypted with `passphrase` as `consortium init
    --passphrase` writes it."""
    key, _ = net.consortium.user_key(org)
    path = directory / f"{org}.key"
    key.save(path, passphrase.encode())
    return path


def raw_seed(net: LocalNet, org: str) -> bytes:
    """The 32 secret bytes of `org`'s key (what must never leave the browser)."""
    from cryptography.hazmat.primitives import serialization

    key, _ = net.consortium.user_key(org)
    return key.crypto_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def resolver_env(directory: Path) -> dict[str, str]:
    """The environment that gives every node the same resolver key, so that a node can
    issue codes and every node can check them."""
    import os

    from traceability.codes.sealing import ResolverKey

    path = directory / "resolver.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(ResolverKey.generate().text())
    return {"PARKTRACE_RESOLVER_KEY": str(path)}
