"""The regulator's audit API and CLI over the park's three cases: who may ask, the
verification report, traces, search and CSV, evidence, proofs checked offline, the signed
report, and the cross-node comparison's verdicts.

Must-show 1 (traces), 3 (in-process half: a tampered store is named by its own report
and by the comparison; tests/test_audit_cluster.py does it with real processes),
4 (consistency proofs) and 5 (non-regulators refused everywhere)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from api.app import create_app
from api.audit.report import ReportError, verify_report
from api.codes.service import CodesSettings, install
from api.histories import Case, record_cases
from api.routes import audit
from cli import audit as cli_audit
from ledger.block import Vote
from ledger.chain import advance, build_block, check_next
from ledger.consortium import Consortium
from ledger.evidence import duplicate_vote_record
from ledger.identity import Credential
from ledger.store import Store
from nodes.devchain import DevChain
from nodes.solo import SoloNode
from sdk.audit import AuditClient
from sdk.client import ApiClientError
from sdk.signing import Identity, sign_request
from traceability.audit.compare import LocalSource, compare
from traceability.audit.proofs import ProofError, verify_consistency_proof
from traceability.codes.sealing import ResolverKey
from traceability.receipts import verify_receipt

HOST = "id.parktrace.example"
RESOLVER = ResolverKey.from_seed(b"audit api tests")
CARTON = "urn:epc:id:sscc:0690789.2000000018"
MASK_PHARMACY = "urn:epc:id:sgln:0690654.00052.0"


def identity(park: Consortium, org: str) -> Identity:
    holder = park.user(org)
    assert holder.key is not None
    return Identity(holder.key, holder.fingerprint, Credential.from_pem(holder.certificate))


@dataclass
class World:
    park: Consortium
    node: SoloNode
    client: TestClient
    audit: AuditClient
    cases: dict[str, Case]
    db: Path


@contextlib.contextmanager
def open_world(
    park: Consortium, db: Path, cases: dict[str, Case], resolver: ResolverKey = RESOLVER
) -> Iterator[World]:
    """A solo node on `db` with the audit routes and the codes resolver (`resolver`'s key),
    and the regulator's audit client through its test client."""
    store = Store(f"sqlite:///{db}")
    node = SoloNode(park.genesis, park.validator_keys, store)
    app = create_app(node)
    audit.mount(app)
    install(app, CodesSettings(resolver_host=HOST, resolver_keys=(resolver,)))
    with TestClient(app) as client:
        regulator = identity(park, "market-supervision-bureau")
        yield World(
            park, node, client, AuditClient("http://t", identity=regulator, http=client), cases, db
        )
    store.close()


@pytest.fixture(scope="module")
def recorded(park: Consortium, tmp_path_factory) -> tuple[Path, dict[str, Case]]:
    db = tmp_path_factory.mktemp("audit") / "node.db"
    store = Store(f"sqlite:///{db}")
    cases = record_cases(park, store, [RESOLVER.public], HOST)
    store.close()
    return db, cases


@pytest.fixture(scope="module")
def world(park: Consortium, recorded) -> Iterator[World]:
    """Read-only tests share one node over the recorded cases."""
    with open_world(park, *recorded) as opened:
        yield opened


@pytest.fixture
def own_world(park: Consortium, recorded, tmp_path) -> Iterator[World]:
    """A private copy, for tests that change the store."""
    db = tmp_path / "node.db"
    shutil.copy(recorded[0], db)
    with open_world(park, db, recorded[1]) as opened:
        yield opened


# -- must-show 5: only regulators --------------------------------------------------------------


def _audit_paths() -> list[str]:
    params = "identifier=x&lot=x&first=1&second=2&start=1&end=1"
    paths = []
    for route in audit.router.routes:
        path = getattr(route, "path", "")
        if path.startswith("/v1/audit"):
            path = path.replace("{tx_id}", "0" * 64).replace("{key:path}", "k")
            paths.append(f"{path}?{params}")
    return paths


def test_must_show_5_non_regulators_are_refused_every_audit_endpoint(world: World) -> None:
    paths = _audit_paths()
    assert len(paths) >= 15
    orgs = ("ganzhou-mask-factory", "cold-chain-logistics", "retail-pharmacy-chain")
    others = [identity(world.park, org) for org in (*orgs, "testing-centre")]
    for path in paths:
        anonymous = world.client.get(path)  # a consumer: no certificate at all
        assert anonymous.status_code == 403, path
        assert anonymous.json()["error"] == "not_permitted"
        assert "regulator" in anonymous.json()["message"]
        for who in others:
            request = world.client.build_request("GET", path)
            sign_request(request, who, b"")
            answer = world.client.send(request)
            assert answer.status_code == 403, (path, who.org)
            assert f"@{who.org}" in answer.json()["message"]
            assert "is not a regulator" in answer.json()["message"]


def test_a_replayed_regulator_request_is_refused(world: World) -> None:
    request = world.client.build_request("GET", "/v1/audit/evidence")
    sign_request(request, world.audit.identity, b"")
    assert world.client.send(request).status_code == 200
    assert world.client.send(request).status_code == 409


def test_a_signed_query_cannot_be_changed_in_transit(world: World) -> None:
    """The signature covers @query: a proxy that rewrites what a signed search asks for
    invalidates it."""
    path = "/v1/audit/events?organization=cold-chain-logistics"
    request = world.client.build_request("GET", path)
    sign_request(request, world.audit.identity, b"")
    assert '"@query"' in request.headers["signature-input"]
    altered = world.client.build_request(
        "GET", path.replace("cold-chain-logistics", "retail-pharmacy-chain")
    )
    for name in ("signature", "signature-input", "content-digest"):
        altered.headers[name] = request.headers[name]
    answer = world.client.send(altered)
    assert answer.status_code == 401, answer.text
    assert "signature" in answer.json()["message"]
    assert world.client.send(request).status_code == 200  # the request as signed


# -- verification --------------------------------------------------------------------------------


def test_verification_report_of_an_intact_chain(world: World) -> None:
    report = world.audit.verify()
    assert report["ok"] and report["problem"] is None
    assert report["blocks"] == world.node.height == report["head_height"]
    assert report["signatures"] > report["transactions"] > 20
    assert report["seconds"] >= 0 and report["checked"]


def test_must_show_3_a_tampered_store_is_named_by_its_report_and_the_comparison(
    own_world: World, recorded, park: Consortium
) -> None:
    with own_world.node.store.engine.begin() as conn:
        conn.execute(
            text("update transactions set envelope = replace(envelope, '12000', '13000') "
                 "where height = 1")
        )  # fmt: skip
    report = own_world.audit.verify()
    assert not report["ok"]
    assert report["problem"]["height"] == 1
    honest = Store(f"sqlite:///{recorded[0]}", migrate=False)
    try:
        result = compare(
            {
                "a": LocalSource(honest),
                "b": LocalSource(honest),
                "tampered": LocalSource(own_world.node.store),
            }
        )
    finally:
        honest.close()
    assert not result.ok and result.diverging_nodes == ["tampered"]
    assert result.to_json()["first_divergence"] == 1 and result.diverging_heights == 1
    assert result.divergences[0]["majority"] == ["a", "b"]


def test_comparison_without_a_majority_names_every_group(recorded, tmp_path) -> None:
    copy = tmp_path / "copy.db"
    shutil.copy(recorded[0], copy)
    other = Store(f"sqlite:///{copy}", migrate=False)
    honest = Store(f"sqlite:///{recorded[0]}", migrate=False)
    try:
        with other.engine.begin() as conn:
            conn.execute(text("update blocks set time = '2020-01-01T00:00:00.000Z' where height=2"))
        result = compare({"x": LocalSource(honest), "y": LocalSource(other)})
        assert result.divergences[0]["majority"] is None
        assert result.diverging_nodes == ["x", "y"]
    finally:
        other.close()
        honest.close()


def test_comparison_endpoint_needs_configured_nodes(world: World) -> None:
    with pytest.raises(ApiClientError) as refused:
        world.audit.compare()
    assert "PARKTRACE_AUDIT_NODES" in str(refused.value)


# -- must-show 1: traces -------------------------------------------------------------------------


def test_must_show_1_backward_trace_of_powder_reaches_plots_and_harvests(world: World) -> None:
    powder = world.cases["notoginseng"].code.lot_id or ""
    data = world.audit.trace(powder, "backward")
    assert data["plots"] == ["A12", "B04"]
    harvests = {h["identifier"] for h in data["harvests"]}
    roots = [c["identifier"] for c in data["tree"]["children"]]
    assert len(roots) == 2 and harvests == set(roots)
    assert {o["location"] for o in data["origins"] if o["kind"] == "origin"} == {
        "urn:epc:id:sgln:0690456.00012.0",
        "urn:epc:id:sgln:0690456.00004.0",
    }
    assert all(c["relation"] == "input" for c in data["tree"]["children"])


def test_must_show_1_forward_trace_of_masks_reaches_cartons_and_pharmacies(
    world: World,
) -> None:
    lot = world.cases["mask"].code.lot_id or ""
    data = world.audit.trace(lot, "forward")
    assert data["units"] == {"issued": 12, "with_events": 12, "notes": []}
    assert CARTON in data["containers"] and len(data["containers"]) == 3
    received = {(x["location"], x["kind"]) for x in data["locations"]}
    assert (MASK_PHARMACY, "received") in received
    assert (MASK_PHARMACY, "destination") in received
    assert any(s["identifier"] == CARTON for s in data["shipments"])
    unit = data["tree"]["children"][0]
    assert unit["relation"] == "unit" and unit["children"][0]["relation"] == "container"


def test_trace_of_an_unknown_identifier_is_404(world: World) -> None:
    with pytest.raises(ApiClientError, match="no committed event"):
        world.audit.trace("urn:epc:id:sgtin:0000000.000000.0", "forward")


def test_a_node_without_the_resolver_key_says_so_in_the_forward_trace(
    park: Consortium, recorded
) -> None:
    store = Store(f"sqlite:///{recorded[0]}")
    node = SoloNode(park.genesis, park.validator_keys, store)
    app = create_app(node)
    audit.mount(app)
    install(app, CodesSettings(resolver_host=HOST, resolver_keys=()))
    with TestClient(app) as client:
        auditor = AuditClient(
            "http://t", identity=identity(park, "market-supervision-bureau"), http=client
        )
        data = auditor.trace(recorded[1]["mask"].code.lot_id or "", "forward")
    store.close()
    assert data["units"]["issued"] == 0 and "no resolver key" in data["units"]["notes"][0]


# -- search and export -----------------------------------------------------------------------------


def test_search_by_organisation_step_lot_and_time(world: World) -> None:
    by_org = world.audit.search(organization="cold-chain-logistics")
    assert by_org["count"] == 3 and all(
        e["organization"] == "cold-chain-logistics" for e in by_org["events"]
    )
    mask_lot = world.cases["mask"].code.lot_id
    by_lot = world.audit.search(lot=mask_lot, bizStep="urn:epcglobal:cbv:bizstep:inspecting")
    assert by_lot["count"] == 1 and by_lot["events"][0]["organization"] == "testing-centre"
    window = world.audit.search(
        since="2026-11-12T00:00:00+08:00", until="2026-11-14T00:00:00+08:00"
    )
    assert {e["eventTime"][:10] for e in window["events"]} <= {"2026-11-12", "2026-11-13"}
    assert world.audit.search(identifier=CARTON)["count"] == 3  # packed, shipped, received


def test_search_refuses_bad_filters_with_400(world: World) -> None:
    for filters, problem in (
        ({"organization": "nobody"}, "not a member"),
        ({"since": "yesterday"}, "RFC 3339"),
    ):
        with pytest.raises(ApiClientError, match=problem) as refused:
            world.audit.search(**filters)
        assert refused.value.status == 400


def test_csv_export_of_a_search(world: World) -> None:
    data = world.audit.search_csv(bizStep="shipping").decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(data)))
    assert len(rows) == 3 and {r["bizStep"] for r in rows} == {"shipping"}
    assert rows[0]["transaction"] and rows[0]["organization"] == "cold-chain-logistics"


# -- evidence ------------------------------------------------------------------------------------


def test_committed_evidence_is_listed_with_the_conflicting_votes(
    park: Consortium, tmp_path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'node.db'}")
    chain = DevChain(park.genesis, park.validator_keys, store)
    chain.commit_block([])
    culprit = chain.state.validators.validators[1]
    votes = [
        Vote(chain.state.chain_id, 1, 0, "prevote", h * 64, culprit.id).signed(
            park.validator_keys[culprit.id]
        )
        for h in ("a", "b")
    ]
    height = chain.state.height + 1
    block = build_block(
        chain.state,
        txs=[],
        time=chain.next_time(),
        proposer=chain.state.validators.proposer(height, 0).id,
        last_commit=chain.last_commit,
        evidence=[duplicate_vote_record(*votes)],
    )
    nodes = check_next(chain.state, block)
    store.save_block(block, chain.certify(block), nodes)
    chain.state = advance(chain.state, block)
    store.close()
    with open_world(park, tmp_path / "node.db", {}) as world:
        listed = world.audit.evidence()
        detail_key = listed["evidence"][0]["key"]
        detail = world.audit.evidence_detail(detail_key)
        with pytest.raises(ApiClientError, match="no committed evidence"):
            world.audit.evidence_detail("duplicate_vote/nobody/1/0/prevote")
    assert listed["count"] == 1
    item = listed["evidence"][0]
    assert item["validator"] == culprit.id and item["committed_at"] == 2 and item["valid"]
    assert item["block_hashes"] == ["a" * 64, "b" * 64]
    assert [v["block_hash"] for v in detail["votes"]] == ["a" * 64, "b" * 64]


# -- must-show 4: proofs, offline ------------------------------------------------------------------


def test_receipt_of_any_transaction_verifies_offline(world: World, park: Consortium) -> None:
    tx_id = world.cases["mask"].step("carton").tx.id
    check = verify_receipt(json.loads(world.audit.receipt(tx_id)), park.genesis)
    assert check.tx_id == tx_id


def test_must_show_4_consistency_proof_verifies_offline(world: World, park: Consortium) -> None:
    for first, second in ((1, 25), (3, 20), (7, 7)):
        proof = json.loads(world.audit.consistency(first, second))
        check = verify_consistency_proof(proof, park.genesis)
        assert (check.first_height, check.second_height) == (first, second)


def test_must_show_4_a_tampered_history_fails_the_consistency_proof(
    world: World, park: Consortium, tmp_path
) -> None:
    proof = json.loads(world.audit.consistency(5, 20))
    # A rewritten history: the same kind of chain with other transactions, certified by
    # validator keys (a colluding quorum), so its headers carry valid signatures.
    other = Store(f"sqlite:///{tmp_path / 'other.db'}")
    record_cases(park, other, [RESOLVER.public], HOST, seed=b"rewritten")
    forged = {**proof, "first": {"header": other.header(5).to_json(),  # type: ignore[union-attr]
                                 "commit": other.commit(5).to_json()}}  # type: ignore[union-attr]  # fmt: skip
    other.close()
    with pytest.raises(ProofError, match="does not extend"):
        verify_consistency_proof(forged, park.genesis)
    edited = json.loads(json.dumps(proof))
    edited["first"]["header"]["log_root"] = "00" * 32
    with pytest.raises(ProofError, match="not certified"):
        verify_consistency_proof(edited, park.genesis)
    edited = json.loads(json.dumps(proof))
    edited["proof"][0] = "11" * 32
    with pytest.raises(ProofError, match="does not extend"):
        verify_consistency_proof(edited, park.genesis)


def test_consistency_proof_heights_are_checked(world: World) -> None:
    for first, second in ((5, 3), (1, 999)):
        with pytest.raises(ApiClientError, match="first <= second") as refused:
            world.audit.consistency(first, second)
        assert refused.value.status == 400


# -- the signed report -----------------------------------------------------------------------------


def test_signed_report_verifies_offline_and_any_change_breaks_it(
    world: World, park: Consortium
) -> None:
    from api.audit.pdf import render_pdf
    from api.audit.report import sign

    signed = sign(world.audit.report_draft(), world.audit.identity)
    check = verify_report(signed, park.genesis)
    assert check.ok and check.head_height == world.node.height
    assert check.signer.endswith("@market-supervision-bureau")
    assert render_pdf(signed).startswith(b"%PDF")
    changed = json.loads(json.dumps(signed))
    changed["report"]["ok"] = False
    with pytest.raises(ReportError, match="changed after it was signed"):
        verify_report(changed, park.genesis)
    producer = identity(park, "ganzhou-mask-factory")
    with pytest.raises(ReportError, match="not a regulator"):
        sign(signed["report"], producer)


# -- the CLI ---------------------------------------------------------------------------------------


@pytest.fixture
def cli(world: World, park: Consortium, tmp_path, monkeypatch) -> tuple[CliRunner, list[str]]:
    """The CLI against the in-process node, with the regulator's consortium directory."""
    directory = tmp_path / "consortium"
    park.write(directory)
    monkeypatch.setattr(
        cli_audit,
        "AuditClient",
        lambda url, identity: AuditClient(url, identity=identity, http=world.client),
    )
    return CliRunner(), ["--consortium", str(directory), "--org", "market-supervision-bureau"]


def test_cli_trace_prints_a_plain_text_tree(cli, world: World) -> None:
    runner, who = cli
    powder = world.cases["notoginseng"].code.lot_id or ""
    result = runner.invoke(cli_audit.app, ["trace", powder, *who])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(powder) and any(line.startswith("├── ") for line in lines)
    assert any("[input]" in line for line in lines)
    assert sum(line.startswith("harvest: ") for line in lines) == 2
    forward = runner.invoke(
        cli_audit.app, ["trace", world.cases["mask"].code.lot_id or "", "--forward", *who]
    )
    assert f"received: {MASK_PHARMACY}" in forward.output and CARTON in forward.output


def test_cli_report_and_proofs_round_trip(cli, park: Consortium, tmp_path) -> None:
    runner, who = cli
    genesis = str(tmp_path / "consortium" / "genesis.json")
    report, pdf = tmp_path / "report.json", tmp_path / "report.pdf"
    made = runner.invoke(
        cli_audit.app, ["report", "create", "-o", str(report), "--pdf", str(pdf), *who]
    )
    assert made.exit_code == 0, made.output
    assert pdf.read_bytes().startswith(b"%PDF")
    ok = runner.invoke(cli_audit.app, ["report", "verify", str(report), "--genesis", genesis])
    assert ok.exit_code == 0 and "market-supervision-bureau" in ok.output
    report.write_bytes(report.read_bytes().replace(b'"ok":true', b'"ok":false'))
    bad = runner.invoke(cli_audit.app, ["report", "verify", str(report), "--genesis", genesis])
    assert bad.exit_code == 1 and "does NOT verify" in bad.output
    proof = tmp_path / "c.json"
    saved = runner.invoke(
        cli_audit.app,
        ["proof", "consistency", "--first", "2", "--second", "9", "-o", str(proof), *who],
    )
    assert saved.exit_code == 0, saved.output
    checked = runner.invoke(cli_audit.app, ["proof", "verify", str(proof), "--genesis", genesis])
    assert checked.exit_code == 0 and "nothing was rewritten" in checked.output


def test_cli_errors_are_one_line_with_non_zero_exit(cli, tmp_path) -> None:
    runner, who = cli
    no_identity = runner.invoke(cli_audit.app, ["verify"])
    assert no_identity.exit_code == 2 and "identity" in no_identity.output
    missing = runner.invoke(
        cli_audit.app, ["proof", "verify", str(tmp_path / "nope.json"), "--genesis", "x.json"]
    )
    assert missing.exit_code == 2 and len(missing.output.strip().splitlines()) == 1
    refused = runner.invoke(cli_audit.app, ["search", "--of", "nobody", *who])
    assert refused.exit_code == 2 and "not a member" in refused.output
    assert "Traceback" not in refused.output


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/proofs/consistency", {"first": 0, "second": 1}, 422),
        ("/proofs/consistency", {"first": "x", "second": 1}, 422),
        ("/blocks", {"start": 5, "end": 2}, 400),
        ("/blocks", {"start": 1, "end": 5000}, 400),
        ("/trace/backward", {"identifier": "\u0000%%"}, 404),
        ("/trace/forward", {"identifier": "https://id.gs1.org/01/123/10/%ZZ"}, 404),
        ("/trace/forward", {"identifier": "x" * 2000}, 422),
        ("/recalls/status", {"identifier": ""}, 422),
        ("/events", {"limit": 0}, 422),
        ("/events", {"until": "2026-13-45T99:00:00Z"}, 400),
        ("/evidence/..%2F..", {}, 404),
        ("/proofs/receipt/" + "f" * 64, {}, 404),
        ("/proofs/receipt/xyz", {}, 422),
    ],
)
def test_bad_input_is_a_clear_4xx_never_a_500(
    world: World, path: str, params: dict, status: int
) -> None:
    with pytest.raises(ApiClientError) as refused:
        world.audit.request("GET", "/v1/audit" + path, params=params)
    assert refused.value.status == status, refused.value.message
    assert refused.value.message


def test_a_recall_plan_for_an_unknown_lot_names_just_the_lot(world: World) -> None:
    plan = world.audit.recall_plan("not a uri at all")
    assert plan["traced"] is False
    assert plan["payloads"] == [{"lot": "not a uri at all", "units": []}]
