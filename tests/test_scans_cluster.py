"""Must-show (a): four real node processes share every scan. A code scanned on node A and
then on node B shows the same count and warnings on all four within 5 s; a scan whose
node is killed (SIGKILL) before its batch commits is still counted once the node is
back; and after all four restart, counts and warnings are unchanged."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.histories import Case, build_histories
from devtools import cluster
from devtools.demo import ClusterChain
from tests.localnet import LocalNet
from traceability.codes.digital_link import DigitalLink
from traceability.codes.sealing import ResolverKey

pytestmark = pytest.mark.slow

HOST = "id.parktrace.example"
RESOLVER = ResolverKey.from_seed(b"scans across nodes")
PHONE = {
    "User-Agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Mobile Safari",
    "Accept-Language": "en",
}
PROGRAM = {"Accept": "application/json"}
#: What "within seconds" means here: a batch every second, then a block.
AGREE_WITHIN = 5.0


class ScanNet(LocalNet):
    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        key = directory / "resolver.key"
        key.write_text(RESOLVER.text(), encoding="utf-8")
        self.env = {
            "PARKTRACE_RESOLVER_KEY": str(key),
            "PARKTRACE_RESOLVER_HOST": HOST,
            "PARKTRACE_SCAN_BATCH_MS": "1000",
        }
        self.ids = [m.id for m in self.members]

    def scan(self, node_id: str, code: DigitalLink, region: str) -> None:
        url = f"{self.url(node_id)}{code.path()}"
        page = self.http.get(url, headers=PHONE, params={"region": region})
        assert page.status_code == 200 and "Not a genuine" not in page.text, page.text[:300]

    def verdict(self, node_id: str, code: DigitalLink) -> dict[str, Any]:
        answer = self.http.get(f"{self.url(node_id)}{code.path()}", headers=PROGRAM)
        assert answer.status_code == 200, answer.text
        scans = answer.json()["scans"]
        return {"scans": scans["scans"], "warnings": [w["kind"] for w in scans["warnings"]]}

    def agree(self, code: DigitalLink, count: int, timeout: float) -> tuple[float, dict]:
        """Seconds until every node shows `count` scans of `code`, and their verdict."""
        started = time.monotonic()
        while True:
            verdicts = {n: self.verdict(n, code) for n in self.ids}
            if all(v["scans"] == count for v in verdicts.values()):
                assert len({str(v) for v in verdicts.values()}) == 1, verdicts
                return time.monotonic() - started, verdicts[self.ids[0]]
            assert time.monotonic() - started < timeout, verdicts
            time.sleep(0.1)

    def restart_all(self) -> None:
        for node_id in self.ids:
            cluster.stop(self.dir, node_id)
        self.start(env=self.env)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ScanNet, Case]]:
    net = ScanNet(tmp_path_factory.mktemp("scans-cluster"))
    net.start(env=net.env)
    chain = ClusterChain([m.url for m in net.members])
    cases = build_histories(
        net.consortium, chain, [RESOLVER.public], HOST, boxes=2, jars=2, masks=4
    )  # type: ignore[arg-type]
    yield net, cases["mask"]
    net.stop_all()


def test_must_show_a_every_node_counts_every_scan_across_restarts(
    net: tuple[ScanNet, Case],
) -> None:
    cluster_, mask = net
    a, b, c, _ = cluster_.ids
    code = mask.codes[1]
    cluster_.scan(a, code, "CN-JX")  # where the masks were made
    cluster_.scan(b, code, "CN-XJ")  # where they never went, an hour's flight away
    took, seen = cluster_.agree(code, 2, AGREE_WITHIN)
    assert seen["warnings"] == ["distant_regions", "unshipped_region"]
    print(f"scans on A and B seen on all four nodes after {took:.2f} s")

    # A node killed right after it served a scan loses nothing: its outbox is on disk.
    cluster_.scan(c, code, "CN-GD")
    cluster_.signal(c, signal.SIGKILL)
    cluster_.start(c, env=cluster_.env)
    took, seen = cluster_.agree(code, 3, 30)
    print(f"the scan on killed node C seen on all four {took:.2f} s after it restarted")

    cluster_.restart_all()
    for node_id in cluster_.ids:
        assert cluster_.verdict(node_id, code) == seen, node_id
