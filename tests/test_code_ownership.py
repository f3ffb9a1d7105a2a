"""Who may issue codes for a GTIN, and that a batch id is issued once, as block rules:
refused at `/v1/transactions` and `/v1/codes`, at admission and gossip (`NodeCore`), in a
proposal an honest validator judges (`check_txs`), by `verify_store` over a store written
behind the nodes' backs, and never called genuine by the resolver. Prefixes are genesis
data, changed by an approved `membership.set_prefixes`; a genesis from before prefixes
still loads, and its chain keeps verifying."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.codes.service import CodesService, CodesSettings, install
from api.services import ApiSettings
from ledger.consortium import SAMPLE_CONFIG, Consortium, ConsortiumConfig, build_consortium
from ledger.errors import LedgerError, NotPermittedError
from ledger.genesis import Genesis
from ledger.membership import SET_PREFIXES
from ledger.store import Store
from ledger.tx import Transaction
from ledger.verify import verify_store
from nodes.devchain import DevChain
from nodes.solo import SoloNode
from tests.chains import judge, refused_everywhere
from tests.conftest import FIXED_NOW
from traceability.codes.batch import TX_TYPE, Batch, new_batch
from traceability.codes.digital_link import DigitalLink, build
from traceability.codes.gtin import check_digit
from traceability.codes.sealing import ResolverKey
from traceability.errors import DuplicateClaimError, NotOwnerError
from traceability.validity import trace_rules

HOST = "id.parktrace.example"
RESOLVER = ResolverKey.from_seed(b"code ownership tests")
MASK_GTIN = "6907890000346"  # under 6907890, the mask factory's prefix
FACTORY, PROCESSOR, REGULATOR = (
    "ganzhou-mask-factory",
    "notoginseng-processor",
    ("market-supervision-bureau"),
)


def gtin(body: str) -> str:
    """A GTIN-13 from its first twelve digits."""
    return body + str(check_digit(body))


def a_batch(
    lot: str = "L1", *, gtin: str = MASK_GTIN, seed: int = 1, key_seed: int | None = None
) -> tuple[Batch, bytes]:
    """A deterministic batch: its id follows from `seed`, its key from `key_seed`."""
    return new_batch(
        build(gtin, lot),
        5,
        [RESOLVER.public],
        HOST,
        batch_key=bytes([seed if key_seed is None else key_seed]) * 32,
        batch_id=bytes([seed]) * 16,
    )


def first_code(batch: Batch, key: bytes) -> DigitalLink:
    return batch.code(batch.serial_key(key).serial(0))


def issue(park: Consortium, chain: DevChain, org: str, batch: Batch) -> Transaction:
    return park.sign_tx(org, TX_TYPE, batch.payload(), chain.next_time())


def authenticity(store: Store, chain: DevChain, code: DigitalLink) -> str:
    service = CodesService(CodesSettings(resolver_host=HOST, resolver_keys=(RESOLVER,)))
    try:
        return service.authenticate(store, chain.membership, code).status
    finally:
        service.close()


def test_a_gtin_under_another_orgs_prefix_is_refused_on_every_path(
    park: Consortium, chain: DevChain
) -> None:
    batch, key = a_batch()
    tx = issue(park, chain, PROCESSOR, batch)
    chain.membership.check_tx(tx, 1, chain.next_time())  # the chain's own rules allow it
    refused_everywhere(chain, tx, NotOwnerError)
    report = verify_store(chain.store, park.genesis, rules=trace_rules)
    assert "lies under GS1 Company Prefix 6907890 of 'ganzhou-mask-factory'" in (
        report.problem.what if report.problem else ""
    )
    assert chain.store is not None
    assert authenticity(chain.store, chain, first_code(batch, key)) == "unknown"


def test_a_gtin_under_no_prefix_is_refused(park: Consortium, chain: DevChain) -> None:
    batch, _ = a_batch(gtin=gtin("699999900001"))
    with pytest.raises(NotOwnerError, match="under no GS1 Company Prefix of any member"):
        chain.commit_block([issue(park, chain, FACTORY, batch)])


def test_the_longest_prefix_decides(park: Consortium, chain: DevChain) -> None:
    """The park holds 6975123; the mask factory holds the item range 697512300 under it."""
    own, _ = a_batch(gtin=gtin("697512300042"), seed=2)  # park item 00042
    chain.commit_block([issue(park, chain, FACTORY, own)])
    beyond, _ = a_batch(gtin=gtin("697512301042"), seed=3)  # park item 01042: the park's own
    with pytest.raises(NotOwnerError, match="6975123 of 'park-committee'"):
        chain.commit_block([issue(park, chain, FACTORY, beyond)])


def test_a_batch_id_is_issued_once(park: Consortium, chain: DevChain) -> None:
    batch, key = a_batch()
    first = issue(park, chain, FACTORY, batch)
    chain.commit_block([first])
    assert chain.store is not None
    assert authenticity(chain.store, chain, first_code(batch, key)) == "genuine"
    # The same id for another lot (a new key, so new codes): in a block of its own, or
    # after a first use of an id earlier in the same block.
    copy, copy_key = a_batch("L2", seed=1, key_seed=9)
    twice = [
        issue(park, chain, FACTORY, a_batch("L3", seed=5)[0]),
        issue(park, chain, FACTORY, a_batch("L4", seed=5)[0]),
    ]
    with pytest.raises(DuplicateClaimError, match=f"batch {'05' * 16} is already recorded"):
        judge(chain, twice)
    refused_everywhere(chain, issue(park, chain, FACTORY, copy), DuplicateClaimError)
    # The copy sits on a store no validator would have accepted: its codes are not genuine.
    assert authenticity(chain.store, chain, first_code(copy, copy_key)) == "unknown"
    assert authenticity(chain.store, chain, first_code(batch, key)) == "genuine"


# -- over HTTP ----------------------------------------------------------------------------------
@pytest.fixture
def api(park: Consortium, tmp_path: Path) -> Iterator[TestClient]:
    store = Store(f"sqlite:///{tmp_path / 'api.db'}")
    node = SoloNode(park.genesis, park.validator_keys, store, block_interval=0.02)
    app = create_app(node, settings=ApiSettings(background=(node.run,)))
    install(app, CodesSettings(resolver_host=HOST, resolver_keys=(RESOLVER,)))
    with TestClient(app) as client:
        yield client
    store.close()


def _signed(park: Consortium, org: str, batch: Batch) -> dict[str, Any]:
    return park.sign_tx(org, TX_TYPE, batch.payload()).to_json()


def test_http_refuses_a_competitors_gtin_and_a_repeated_batch_id(
    park: Consortium, api: TestClient
) -> None:
    batch, key = a_batch()
    for path, body in (
        ("/v1/transactions", _signed(park, PROCESSOR, batch)),
        ("/v1/codes", {"transaction": _signed(park, PROCESSOR, batch)}),
    ):
        answer = api.post(path, json=body)
        assert answer.status_code == 403, (path, answer.text)
        assert answer.json()["error"] == "not_permitted"
        assert "6907890 of 'ganzhou-mask-factory'" in answer.json()["message"]
    issued = api.post("/v1/codes", json={"transaction": _signed(park, FACTORY, batch)})
    assert issued.status_code == 202, issued.text
    tx_id = issued.json()["transaction"]
    assert api.get(f"/v1/transactions/{tx_id}", params={"wait": 10}).json()["state"] == (
        "committed"
    )
    for path, body in (
        ("/v1/transactions", _signed(park, FACTORY, batch)),
        ("/v1/codes", {"transaction": _signed(park, FACTORY, batch)}),
    ):
        answer = api.post(path, json=body)
        assert answer.status_code == 409, (path, answer.text)
        assert f"batch {batch.id} is already recorded ({tx_id})" in answer.json()["message"]
    page = api.get(first_code(batch, key).path(), headers={"Accept": "application/json"})
    assert page.json()["authenticity"]["status"] == "genuine"


# -- changing prefixes ------------------------------------------------------------------------
def set_prefixes(park: Consortium, chain: DevChain, org: str, prefixes: list[str]) -> Transaction:
    change = {"organization": org, "gs1_prefixes": prefixes}
    return park.membership_tx(
        REGULATOR, SET_PREFIXES, change, approvers=(), timestamp=chain.next_time()
    )


def test_an_approved_prefix_change_lets_the_new_org_issue(
    park: Consortium, chain: DevChain
) -> None:
    batch, key = a_batch(gtin=gtin("690456800001"))  # a prefix nobody holds yet
    with pytest.raises(NotOwnerError):
        chain.commit_block([issue(park, chain, PROCESSOR, batch)])
    # Only with the regulator's approval (the rule in genesis: 1 of [regulator]).
    unapproved = park.membership_tx(
        PROCESSOR,
        SET_PREFIXES,
        {"organization": PROCESSOR, "gs1_prefixes": ["6904567", "6904568"]},
        timestamp=chain.next_time(),
    )
    with pytest.raises(NotPermittedError):
        chain.commit_block([unapproved])
    grant = set_prefixes(park, chain, PROCESSOR, ["6904567", "6904568"])
    # Like a certificate, a prefix counts from the block after the one granting it.
    with pytest.raises(NotOwnerError):
        chain.commit_block([grant, issue(park, chain, PROCESSOR, batch)])
    chain.commit_block([grant])
    chain.commit_block([issue(park, chain, PROCESSOR, batch)])
    assert chain.membership.organizations[PROCESSOR].gs1_prefixes == ("6904567", "6904568")
    assert chain.store is not None
    assert authenticity(chain.store, chain, first_code(batch, key)) == "genuine"
    # A prefix another organisation holds cannot be given away under it.
    with pytest.raises(NotPermittedError, match="held by organisation 'ganzhou-mask-factory'"):
        chain.commit_block([set_prefixes(park, chain, PROCESSOR, ["6907890"])])
    # Taken away, it stops counting from the next block; batches issued before stay genuine.
    chain.commit_block([set_prefixes(park, chain, PROCESSOR, ["6904567"])])
    with pytest.raises(NotOwnerError):
        chain.commit_block(
            [issue(park, chain, PROCESSOR, a_batch("L9", gtin=gtin("690456800001"), seed=9)[0])]
        )
    assert authenticity(chain.store, chain, first_code(batch, key)) == "genuine"
    assert verify_store(chain.store, park.genesis, rules=trace_rules).ok


def test_genesis_refuses_a_prefix_held_twice_or_malformed(park: Consortium) -> None:
    doc = park.genesis.to_json()
    orgs = doc["organizations"]
    processor = next(o for o in orgs if o["id"] == PROCESSOR)
    processor["gs1_prefixes"] = ["6907890"]
    with pytest.raises(NotPermittedError, match="6907890 is held by organisation"):
        Genesis.from_json(doc)
    processor["gs1_prefixes"] = ["69045a7"]
    with pytest.raises(LedgerError, match="'69045a7' is not a GS1 Company Prefix"):
        Genesis.from_json(doc)


# -- a chain from before prefixes ----------------------------------------------------------------
@pytest.fixture(scope="module")
def legacy() -> Consortium:
    """The sample park as its genesis was written before organisations held prefixes."""
    data = tomllib.loads(SAMPLE_CONFIG.read_text(encoding="utf-8"))
    for org in data["organizations"]:
        org.pop("gs1_prefixes", None)
    del data["policy"]["transactions"]["membership.set_prefixes"]  # whoever may add an org
    return build_consortium(ConsortiumConfig.from_dict(data), FIXED_NOW, b"before prefixes")


def test_a_genesis_without_prefixes_loads_and_keeps_its_hash(legacy: Consortium) -> None:
    doc = legacy.genesis.to_json()
    assert all("gs1_prefixes" not in org for org in doc["organizations"])
    again = Genesis.from_json(json.loads(json.dumps(doc)))
    assert again.hash == legacy.genesis.hash
    assert legacy.genesis.membership().prefix_grants == ()
    assert "membership.set_prefixes" not in legacy.genesis.policy.transactions


def test_prefix_changes_that_make_no_sense_are_refused(park: Consortium, chain: DevChain) -> None:
    for change, reason in (
        ({"organization": "nobody", "gs1_prefixes": ["6904568"]}, "not a member"),
        ({"organization": FACTORY, "gs1_prefixes": ["697512300", "6907890"]}, "already holds"),
        ({"organization": FACTORY, "gs1_prefixes": ["6904568", "6904568"]}, "repeats"),
        ({"organization": FACTORY, "gs1_prefixes": "6904568"}, "expected a list"),
        ({"organization": FACTORY}, "missing field"),
    ):
        tx = park.membership_tx(REGULATOR, SET_PREFIXES, change, timestamp=chain.next_time())
        with pytest.raises(LedgerError, match=reason):
            chain.commit_block([tx])


def test_batches_from_before_prefixes_are_judged_by_todays_owner(
    legacy: Consortium, tmp_path: Path
) -> None:
    """Before any prefix, issuers cannot be checked, so the chain recorded a competitor's
    batch; once the owner holds its prefix the competitor's codes are never genuine, the
    owner's earlier ones are, and the rule holds from then on. The chain keeps verifying."""
    store = Store(f"sqlite:///{tmp_path / 'legacy.db'}")
    chain = DevChain(legacy.genesis, legacy.validator_keys, store)
    ours, our_key = a_batch("OURS", seed=6)
    theirs, their_key = a_batch("THEIRS", seed=7)
    chain.commit_block(
        [issue(legacy, chain, FACTORY, ours), issue(legacy, chain, PROCESSOR, theirs)]
    )
    assert authenticity(store, chain, first_code(ours, our_key)) == "unknown"  # nobody owns it
    chain.commit_block([set_prefixes(legacy, chain, FACTORY, ["6907890"])])
    assert authenticity(store, chain, first_code(ours, our_key)) == "genuine"
    assert authenticity(store, chain, first_code(theirs, their_key)) == "unknown"
    with pytest.raises(NotOwnerError):
        chain.commit_block([issue(legacy, chain, PROCESSOR, a_batch("LATER", seed=8)[0])])
    assert verify_store(store, legacy.genesis, rules=trace_rules).ok
    store.close()
