"""Rejections name the field as a user reads it: the event's missing identifier list, a
nested certification detail, the event and its field once in the CLI's report, and under
rollback only the refused event carries the node's reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.services import ApiSettings
from cli.main import app as cli
from ledger.consortium import Consortium
from ledger.store import Store
from nodes.solo import SoloNode
from sdk.client import ParkTraceClient
from sdk.signing import Identity
from tests.chains import CONTEXT
from traceability.epcis.document import check_document

MASKS = "ganzhou-mask-factory"


def event(serial: int, **fields: Any) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventTime": "2026-11-20T08:00:00.000+08:00",
        "eventTimeZoneOffset": "+08:00",
        "action": "ADD",
        "bizStep": "commissioning",
        "epcList": [f"urn:epc:id:sgtin:6907890.012345.{serial}"],
        **fields,
    }


def document(*events: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": [*CONTEXT, {"gs1": "https://gs1.org/voc/"}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-20T09:00:00.000+08:00",
        "epcisBody": {"eventList": list(events)},
    }


def first_problem(*events: dict[str, Any]) -> tuple[str, str]:
    checked = check_document(document(*events))
    assert checked.rejected, "expected a rejection"
    problem = checked.rejected[0][1].problems[0]
    return problem.path, problem.message


def test_an_object_event_without_identifiers_is_told_which_lists_name_them() -> None:
    bare = {k: v for k, v in event(1).items() if k != "epcList"}
    path, message = first_problem(bare)
    assert path == "epcisBody.eventList[0].epcList"
    assert "epcList" in message and "quantityList" in message
    assert "anyOf" not in message and "any of the schemas" not in message


def test_a_nested_certification_detail_is_named_where_it_is() -> None:
    detail = {"gs1:certificationAuditDate": "2026-13-45"}
    path, message = first_problem(event(2, certificationInfo=[detail]))
    assert path == "epcisBody.eventList[0].certificationInfo[0]"
    assert "gs1:certificationAuditDate" in message and "URI" in message
    assert "anyOf" not in message
    path, message = first_problem(event(3, certificationInfo=detail))
    assert path == "epcisBody.eventList[0].certificationInfo"
    assert (
        message.startswith("expected a list or a URI") and "gs1:certificationAuditDate" in message
    )


def test_the_cli_names_each_refused_event_and_its_field_once(tmp_path: Path) -> None:
    source = tmp_path / "doc.jsonld"
    source.write_text(json.dumps(document(event(4, bizStep="shippng"))))
    lines = tmp_path / "events.csv"
    lines.write_text("eventTime,action,bizStep,epcList\n2026-11-20T08:00,ADD,shippng,urn:x:1\n")
    for path, expected in (
        (source, "epcisBody.eventList[0]: bizStep: 'shippng' is not a CBV 2.0 business step"),
        (lines, "line 2: "),
    ):
        result = CliRunner().invoke(cli, ["import", str(path), "--dry-run"], env={"COLUMNS": "400"})
        assert result.exit_code == 1, result.output
        assert expected in result.output
        assert "eventList[0]: epcisBody" not in result.output
        assert path != lines or "epcisBody" not in result.output  # a CSV row is its line


@pytest.fixture
def sdk(park: Consortium, tmp_path: Path) -> Iterator[ParkTraceClient]:
    store = Store(f"sqlite:///{tmp_path / 'node.db'}")
    node = SoloNode(park.genesis, park.validator_keys, store, block_interval=0.02)
    with TestClient(create_app(node, settings=ApiSettings(background=(node.run,)))) as client:
        holder = park.user(MASKS)
        assert holder.key is not None
        yield ParkTraceClient(http=client, identity=Identity(holder.key, holder.fingerprint))
    store.close()


def test_under_rollback_only_the_refused_event_carries_the_refusal(sdk: ParkTraceClient) -> None:
    recorded = event(5, eventID="urn:uuid:5d1c0f1e-0000-4000-8000-000000000005")
    first = sdk.follow(sdk.capture(document(recorded)), 20)
    assert first.committed == 1
    report = sdk.capture(document(event(6), recorded), behaviour="rollback")
    assert not report.accepted
    by_label = {r.label: r for r in report.refused}
    innocent, again = by_label["epcisBody.eventList[0]"], by_label["epcisBody.eventList[1]"]
    assert again.code == "duplicate" and "already recorded" in again.message
    assert not again.message.startswith("transactions[")
    assert innocent.code == "rolled_back"
    assert "all or nothing and epcisBody.eventList[1] was refused" in innocent.message
    # an event refused here, before anything is sent, is named once with its field
    invalid = sdk.capture(document(event(7, bizStep="shippng")))
    assert [(r.label, r.message.split(":")[0]) for r in invalid.refused] == [
        ("epcisBody.eventList[0]", "bizStep")
    ]
