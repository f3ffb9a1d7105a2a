"""The benchmark scripts still run: each one's `--quick` mode on tiny sizes exits 0, prints
its JSON with the figures it promises, and appends its row to the results file it is
given. Speed is never asserted here; the figures are in bench/RESULTS.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_ADMIN_URL, _pg_unreachable

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent

EXPECTED = {
    "cluster": (
        "ceiling_tx_per_s",
        "raw_signature_verifies_per_second_per_core",
        "saturation",
        "steps",
    ),
    "audit": ("events_per_second_per_core", "ratio_events_to_raw_signatures", "events"),
    "audit_load": ("during_audit", "baseline_no_audit", "node_rss_growth_mib"),
    "storage": ("sqlite", "events", "signed_envelope_bytes"),
    "resolver": ("events", "bare", "lookups"),
    "codes": ("issuance", "rendering"),
    "restart": ("full_verify_start", "checkpoint_restart", "speedup"),
}


def _run(script: str, tmp_path: Path, *extra: str) -> dict:
    results = tmp_path / "RESULTS.md"
    run = subprocess.run(
        [sys.executable, f"bench/{script}.py", "--quick", "--results", str(results), *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    data = json.loads(run.stdout)
    assert data["benchmark"] == script
    assert {"machine", "command", "date"} <= set(data)
    for key in EXPECTED[script]:
        assert key in data, f"{script}: no {key!r} in its JSON"
    text = results.read_text(encoding="utf-8")
    assert f"## {script}" in text and "(quick)" in text and f"bench/{script}.py" in text
    return data


def test_cluster_quick(tmp_path: Path) -> None:
    data = _run("cluster", tmp_path)
    step = data["steps"][0]
    for key in ("offered_tx_per_s", "committed_tx_per_s", "commit_latency_ms"):
        assert key in step
    assert {"p50", "p99"} <= set(step["commit_latency_ms"])


def test_audit_quick(tmp_path: Path) -> None:
    _run("audit", tmp_path)


def test_audit_load_quick(tmp_path: Path) -> None:
    data = _run("audit_load", tmp_path)
    assert data["during_audit"]["requests"] > 0


def test_storage_quick(tmp_path: Path) -> None:
    pg = "none" if _pg_unreachable() else PG_ADMIN_URL
    data = _run("storage", tmp_path, "--pg", pg)
    assert "bytes_per_event" in data["sqlite"]
    if pg != "none":
        assert "bytes_per_event" in data["postgresql"]


def test_resolver_quick(tmp_path: Path) -> None:
    data = _run("resolver", tmp_path)
    assert all(d["ok"] for d in data["lookups"].values())


def test_codes_quick(tmp_path: Path) -> None:
    data = _run("codes", tmp_path)
    assert data["rendering"]["content_identical"] is True


def test_restart_quick(tmp_path: Path) -> None:
    data = _run("restart", tmp_path)
    assert data["full_verify_start"]["restarted_from"] is None
    fast = data["checkpoint_restart"]
    assert fast["restarted_from"] == fast["height"] == data["full_verify_start"]["height"]
    assert fast["rehashed_s"] is not None  # the re-hash below the checkpoint finished
