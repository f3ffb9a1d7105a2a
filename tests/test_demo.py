"""The README's first command: the demo consortium comes up as real processes, the three
consumer pages answer with their journeys within two minutes, and Ctrl-C leaves no
process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from api import cluster
from api.cluster import free_ports

pytestmark = pytest.mark.slow


def test_demo_comes_up_serves_the_three_cases_and_stops_cleanly(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    started = time.monotonic()
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "api",
            "demo",
            "--dir",
            str(root),
            "--p2p-port",
            str(free_ports()),
            "--api-port",
            str(free_ports()),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            output.append(line)
            if "demo ready" in line:
                break
            assert time.monotonic() - started < 120, "".join(output)
        assert any("demo ready" in line for line in output), "".join(output)
        manifest = json.loads((root / "demo.json").read_text())
        with httpx.Client(timeout=30, headers={"Accept-Language": "en"}) as http:
            for name, case in manifest["cases"].items():
                assert case["page"] in "".join(output)  # printed for the user
                page = http.get(case["page"])
                assert page.status_code == 200, name
                assert "recorded on the park" in page.text, name
                assert len(case["steps"]) >= 5, name
        assert time.monotonic() - started < 120
        pids = [cluster.pid_of(root, m.id) for m in cluster.members(root)]
        assert all(pids)
    finally:
        demo.send_signal(signal.SIGINT)  # what Ctrl-C sends
        rest, _ = demo.communicate(timeout=60)
    assert demo.returncode == 0, rest
    for pid in pids:
        assert pid is not None and not _running(pid), f"node process {pid} left behind"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[-1].startswith("Z"))
