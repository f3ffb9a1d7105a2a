"""Verification as a job (issue 21): starting a full verification or a report's draft
through the audit API answers at once with a job; the job runs in the node, not in the
request, so a client that leaves and another that comes later both find it by its id,
with its progress (events checked of the total, rate, time left) and, when done, its
result. Regulators only, like the rest of the audit API."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from api.audit.report import sign, verify_report
from cli import audit as cli_audit
from ledger.consortium import Consortium
from sdk.audit import AuditClient
from sdk.client import ApiClientError
from tests import test_audit_api as shared
from tests.test_audit_api import World, identity

# The audit API's fixtures: a solo node over the recorded cases, its private copy, the CLI.
recorded, world, own_world, cli = shared.recorded, shared.world, shared.own_world, shared.cli


def test_a_verification_job_is_started_at_once_and_found_again_by_another_client(
    world: World, park: Consortium
) -> None:
    started = world.audit.start_job("verify")
    assert started["kind"] == "verify" and started["state"] in ("running", "done")
    assert len(started["id"]) == 32
    # The client that started it leaves; another comes back to it by its id.
    later = AuditClient("http://t", identity=world.audit.identity, http=world.client)
    seen: list[dict] = []
    done = later.wait_job(started["id"], every=0.1, progress=seen.append)
    assert done["state"] == "done", done["error"]
    result = done["result"]
    assert result["ok"] and result["head_height"] == world.node.height
    assert done["events_checked"] == done["events_total"] == result["transactions"] > 0
    assert done["events_per_second"] > 0 and done["eta_seconds"] is None
    for polled in seen:
        assert set(polled) >= {"events_checked", "events_total", "events_per_second", "eta_seconds"}
        assert (
            0 <= polled["events_checked"] <= max(polled["events_total"], 0)
            or not polled["events_total"]
        )
    listed = [job["id"] for job in later.jobs()["jobs"]]
    assert started["id"] in listed


def test_a_report_job_gives_a_draft_to_sign(world: World, park: Consortium) -> None:
    job = world.audit.wait_job(world.audit.start_job("report")["id"], every=0.1)
    assert job["state"] == "done", job["error"]
    signed = sign(job["result"], world.audit.identity)
    check = verify_report(signed, park.genesis)
    assert check.ok and signed["report"]["number"].startswith("PT-")


def test_a_job_finds_a_changed_store(own_world: World) -> None:
    with own_world.node.store.engine.begin() as conn:
        conn.execute(text("update blocks set time = '2020-01-01T00:00:00Z' where height = 3"))
    job = own_world.audit.wait_job(own_world.audit.start_job()["id"], every=0.1)
    assert job["state"] == "done"
    assert not job["result"]["ok"] and job["result"]["problem"]["height"] == 3


def test_jobs_answer_regulators_only_and_unknown_ids_are_404(
    world: World, park: Consortium
) -> None:
    producer = AuditClient(
        "http://t", identity=identity(park, "ganzhou-mask-factory"), http=world.client
    )
    for call in (lambda: producer.start_job(), lambda: producer.jobs()):
        with pytest.raises(ApiClientError) as refused:
            call()
        assert refused.value.status == 403
    with pytest.raises(ApiClientError) as missing:
        world.audit.job("0" * 32)
    assert missing.value.status == 404
    with pytest.raises(ApiClientError) as bad:
        world.audit.job("not-a-job")
    assert 400 <= bad.value.status < 500
    with pytest.raises(ApiClientError) as wrong_kind:
        world.audit.start_job("everything")
    assert 400 <= wrong_kind.value.status < 500


def test_cli_audit_verify_runs_as_a_job_and_can_come_back(cli, world: World) -> None:
    runner, who = cli
    result = runner.invoke(cli_audit.app, ["verify", *who])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output and "--job" in result.output
    job_id = result.output.split("--job ", 1)[1].split(")", 1)[0]
    again = runner.invoke(cli_audit.app, ["verify", "--job", job_id, "--json", *who])
    assert again.exit_code == 0 and '"ok": true' in again.output
