"""A plain EPCIS client captures on the demo consortium: `curl`, with the request signed
by `openssl` (docs/tour/curl-capture.sh), against real node processes of a local
cluster, which delegates every tenant's capture."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from sdk.signing import Identity, SignedRequests
from tests.localnet import LocalNet
from tests.test_epcis_binding import MASKS, document, event

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "tour" / "curl-capture.sh"


@pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("openssl")), reason="needs curl and openssl"
)
def test_curl_captures_on_the_demo_consortium(tmp_path: Path) -> None:
    net = LocalNet(tmp_path / "net")
    try:
        net.start()
        # The factory runs a node of its own, which holds its delegated capture certificate.
        url = next(m.url for m in net.members if "mask" in m.id)
        users = net.dir / "consortium"
        doc = tmp_path / "doc.jsonld"
        doc.write_text(json.dumps(document(event(500, "shipping"))))
        key = users / "keys" / "orgs" / MASKS / "users" / "admin.key"
        cert = users / "certs" / "orgs" / MASKS / "users" / "admin.pem"
        out = subprocess.run(
            ["sh", str(SCRIPT), url, str(key), str(cert), str(doc)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        job = json.loads(out.stdout)
        assert "captureID" in job, job
        me = Identity.from_consortium(users, MASKS)
        with httpx.Client(base_url=url, auth=SignedRequests(me), timeout=10) as client:
            deadline = time.monotonic() + 60
            while job["running"] and time.monotonic() < deadline:
                time.sleep(0.2)
                job = client.get(f"/capture/{job['captureID']}").json()
            assert job["success"] and not job["running"], job
            assert {t["state"] for t in job["transactions"]} == {"committed"}
    finally:
        net.stop_all()
