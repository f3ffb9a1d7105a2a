"""Corrections on the park's own journeys, through the HTTP API of a running node (one
process, FastAPI TestClient): the testing centre records a corrected orange inspection and
declares its first one erroneous (EPCIS 2.0 error declaration); the packing house may
not, nor may anyone declare an event the chain does not hold. The product history then
marks the inspection withdrawn, with its reason and a link to the corrective event, and
the consumer page says so in Chinese and English."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.codes.service import CodesSettings, install
from api.histories import Case, Recorder, build_histories
from api.services import ApiSettings
from ledger.consortium import Consortium
from ledger.store import Store
from nodes.devchain import DevChain
from nodes.solo import SoloNode
from sdk.client import ApiClientError, ParkTraceClient
from sdk.signing import Identity
from tests.test_resolver import EN, HOST, RESOLVER, ZH, Clock, World, steps_of

INSPECTOR, PACKER = "testing-centre", "ganzhou-packing-house"
REASON = "incorrect_data"


@dataclass
class Corrected:
    """The resolver tests' world, and the declaration the testing centre made."""

    world: World
    declaration: dict[str, Any]

    @property
    def orange(self) -> Case:
        return self.world.cases["orange"]

    def sdk(self, org: str) -> ParkTraceClient:
        holder = self.world.park.user(org)
        assert holder.key is not None
        identity = Identity(holder.key, holder.fingerprint)
        return ParkTraceClient(http=self.world.client, identity=identity)

    def history(self) -> dict[str, Any]:
        lot = quote(self.orange.code.lot_id or "", safe="")
        answer = self.world.client.get(f"/v1/products/{lot}/history")
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest.fixture(scope="module")
def corrected(park: Consortium, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corrected]:
    """The three cases, then the inspection's corrective event (a re-test the same day);
    the declaration itself goes through the API."""
    path = tmp_path_factory.mktemp("corrections") / "node.db"
    store = Store(f"sqlite:///{path}")
    chain = DevChain(park.genesis, park.validator_keys, store)
    cases = build_histories(park, chain, [RESOLVER.public], HOST)
    orange = cases["orange"]
    original = orange.step("inspection").event
    assert original is not None
    retest = {k: v for k, v in original.items() if k not in ("@context", "eventID")}
    retest["eventTime"] = "2026-11-06T16:00:00+08:00"
    Recorder(park, chain, b"corrections").event(orange, "re-test", INSPECTOR, retest)
    declaration = {
        **original,
        "errorDeclaration": {
            "declarationTime": "2026-11-07T09:00:00+08:00",
            "reason": REASON,
            "correctiveEventIDs": [orange.step("re-test").event["eventID"]],
        },
    }
    node = SoloNode(park.genesis, park.validator_keys, store, block_interval=0.02)
    app = create_app(node, settings=ApiSettings(background=(node.run,)))
    clock = Clock()
    install(app, CodesSettings(resolver_host=HOST, resolver_keys=(RESOLVER,), clock=clock))
    with TestClient(app) as client:
        world = Corrected(World(client, cases, clock, park), declaration)
        sdk = world.sdk(INSPECTOR)
        status = sdk.submit(sdk.sign("epcis.event", {"event": declaration}), wait=20)
        assert status["state"] == "committed", status
        yield world
    store.close()


def test_only_the_recorder_may_declare_and_only_a_recorded_event(corrected: Corrected) -> None:
    world = corrected
    packer = world.sdk(PACKER)
    with pytest.raises(ApiClientError) as refused:
        packer.submit(packer.sign("epcis.event", {"event": world.declaration}))
    assert refused.value.status == 403 and refused.value.code == "not_permitted"
    assert f"recorded by '{INSPECTOR}'" in refused.value.message
    unknown = {**world.declaration, "eventID": "urn:uuid:00000000-0000-4000-8000-000000000018"}
    inspector = world.sdk(INSPECTOR)
    with pytest.raises(ApiClientError) as missing:
        inspector.submit(inspector.sign("epcis.event", {"event": unknown}))
    assert missing.value.status == 404, missing.value.message
    assert "is not recorded on this chain" in missing.value.message
    with pytest.raises(ApiClientError) as twice:
        inspector.submit(inspector.sign("epcis.event", {"event": world.declaration}))
    assert twice.value.status == 409 and "already declared erroneous" in twice.value.message


def test_the_history_marks_the_event_withdrawn_and_links_its_correction(
    corrected: Corrected,
) -> None:
    history = corrected.history()
    entries = history["events"]
    assert not [e for e in entries if "errorDeclaration" in e["event"]]  # no step of its own
    by_id = {e["eventID"]: e for e in entries}
    retest = corrected.orange.step("re-test")
    assert retest.event is not None
    withdrawn = by_id[corrected.declaration["eventID"]]["withdrawn"]
    assert withdrawn["reason"] == REASON
    assert withdrawn["declarationTime"] == "2026-11-07T09:00:00+08:00"
    assert withdrawn["correctiveEvents"] == [
        {
            "eventID": retest.event["eventID"],
            "recorded": True,
            "inHistory": True,
            "transaction": retest.tx.id,
            "height": retest.height,
            "logIndex": by_id[retest.event["eventID"]]["logIndex"],
        }
    ]
    assert "withdrawn" not in by_id[retest.event["eventID"]]
    # the declaration's own transaction is named, for its receipt
    status = corrected.world.client.get(f"/v1/transactions/{withdrawn['transaction']}").json()
    assert status["state"] == "committed" and status["height"] == withdrawn["height"]


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        (
            ZH,
            [
                "已撤销：产品质量检验检测中心于 2026-11-07 声明此记录有误。",
                "原因：所记录的数据有误",
                "更正记录：",
            ],
        ),
        (
            EN,
            [
                "Withdrawn: Product Quality Testing and Inspection Centre declared this record "
                "erroneous on 2026-11-07.",
                "Reason: the recorded data were incorrect",
                "Corrected by: ",
            ],
        ),
    ],
)
def test_the_consumer_page_shows_the_correction(
    corrected: Corrected, headers: dict[str, str], words: list[str]
) -> None:
    orange = corrected.orange
    page = corrected.world.get(orange.code, headers)
    assert page.status_code == 200, page.text
    steps = steps_of(page.text)
    withdrawn = [n for n, step in enumerate(steps, 1) if "step-withdrawn" in step]
    assert len(withdrawn) == 1
    item = steps[withdrawn[0] - 1]
    assert f'data-height="{orange.step("inspection").height}"' in item
    for text in words:
        assert text in item, text
    # The link leads to the corrective re-test, the step right after it.
    corrective = withdrawn[0] + 1
    assert f'<a class="corrective" href="#step-{corrective}">' in item
    assert f'data-height="{orange.step("re-test").height}"' in steps[corrective - 1]
    assert "step-withdrawn" not in steps[corrective - 1]
    # A program reads the same correction in the page's JSON.
    data = corrected.world.get(orange.code, {**headers, "Accept": "application/json"}).json()
    marked = [s for s in data["journey"]["steps"] if s["withdrawn"]]
    assert [s["eventID"] for s in marked] == [corrected.declaration["eventID"]]
    assert marked[0]["withdrawn"]["correctiveEvents"][0]["step"] == corrective
    assert marked[0]["withdrawn"]["declaredBy"]["organization"] == INSPECTOR
