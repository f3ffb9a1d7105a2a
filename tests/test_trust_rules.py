"""Trust rules as block rules (traceability.trust): every rule's violation is refused at
admission and gossip (`NodeCore.submit`), in a proposal judged by another validator
(`check_txs` with the domain rules, as `Node._valid` runs it) and by the verifier over a
store it was written into (`tests.chains.refused_everywhere`), with a message naming the
figures; the demo's three journeys pass; a property test holds the mass downstream of a
plot to what the plot may yield."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from api.histories import CONTEXT as PT_CONTEXT
from api.histories import POWDER_JAR, ROOT, lot_id, record_cases, sgln
from devtools.samples import ruled_consortium
from ledger.consortium import Consortium
from ledger.errors import NotPermittedError
from ledger.store import Store
from ledger.timefmt import format_time, parse_time
from ledger.tx import Transaction
from ledger.verify import verify_store
from nodes.devchain import DevChain
from tests.chains import commissioning, object_event, refused_everywhere
from traceability.codes.sealing import ResolverKey
from traceability.trust import PLOT_TX_TYPE, RULES_TX_TYPE, RuleViolation, park_rules
from traceability.trust import events as totals
from traceability.trust.state import TrustState
from traceability.validity import TraceRules, trace_rules

ROOT_DIR = Path(__file__).resolve().parent.parent
ORANGE = "https://id.gs1.org/01/06901234000122/10/"
MASK = "https://id.gs1.org/01/06907890000346"
CST = timezone(timedelta(hours=8))
GROWER, PROCESSOR, CARRIER, SHOP = (
    "wenshan-growers",
    "notoginseng-processor",
    "cold-chain-logistics",
    "retail-pharmacy-chain",
)
ORCHARD = "gannan-orchard-coop"
P07 = sgln("0690123", 107)
A12 = sgln("0690456", 12)


@pytest.fixture(scope="module")
def ruled() -> Consortium:
    return ruled_consortium()


@pytest.fixture
def chain(ruled: Consortium, tmp_path: Path) -> Iterator[DevChain]:
    store = Store(f"sqlite:///{tmp_path / 'node.db'}")
    chain = DevChain(ruled.genesis, ruled.validator_keys, store)
    for org, plot in ((ORCHARD, orange_plot()), (GROWER, root_plot())):
        chain.commit_block([register(ruled, chain, org, plot)])
    yield chain
    store.close()


def orange_plot(**fields: Any) -> dict[str, Any]:
    """P07: 4 ha × 3 t/ha = 12 t a season (13.2 t with the 1.1 tolerance)."""
    return {
        "id": "P07",
        "gln": P07,
        "crop": "navel-orange-fresh",
        "gi_zone": "gannan-navel-orange",
        "area_ha": 4,
        "yield_kg_per_ha": 3000,
        "centre": [115.45, 24.95],
        "radius_m": 200,
        **fields,
    }


def root_plot() -> dict[str, Any]:
    """A12: 1 ha × 2 t/ha of fresh notoginseng roots."""
    return {
        "id": "A12",
        "gln": A12,
        "crop": "notoginseng-root-fresh",
        "gi_zone": "wenshan-notoginseng",
        "area_ha": 1,
        "yield_kg_per_ha": 2000,
        "centre": [104.40, 23.02],
        "radius_m": 60,
    }


def register(
    park: Consortium, chain: DevChain, org: str, plot: dict[str, Any], approvers=("park-committee",)
) -> Transaction:
    change = {"plot": plot}
    approvals = [park.approval(a, PLOT_TX_TYPE, change) for a in approvers]
    payload = {"change": change, "approvals": approvals}
    return park.sign_tx(org, PLOT_TX_TYPE, payload, chain.next_time())


def when(chain: DevChain, hours: float = -1) -> str:
    """An eventTime `hours` from the chain's head time, in China Standard Time."""
    moment = parse_time(chain.state.head_time) + timedelta(hours=hours)
    return moment.astimezone(CST).isoformat(timespec="milliseconds")


def sign(park: Consortium, chain: DevChain, org: str, event: dict[str, Any]) -> Transaction:
    return park.sign_tx(org, "epcis.event", {"event": event}, chain.next_time())


def quantity(epc_class: str, amount: float, uom: str | None = "KGM") -> dict[str, Any]:
    return {"epcClass": epc_class, "quantity": amount, **({"uom": uom} if uom else {})}


def harvest(chain: DevChain, label: str, lot: str, kg: float, at: str = P07, **fields: Any):
    return object_event(
        label,
        **{"@context": PT_CONTEXT},
        eventTime=when(chain),
        action="ADD",
        bizStep="commissioning",
        quantityList=[quantity(lot, kg)],
        readPoint={"id": at},
        **fields,
    )


def moving(chain: DevChain, label: str, step: str, items: list[dict[str, Any]], **fields: Any):
    return object_event(
        label, eventTime=when(chain), action="OBSERVE", bizStep=step, quantityList=items, **fields
    )


def transformation(chain: DevChain, label: str, inputs: list, outputs: list) -> dict[str, Any]:
    return object_event(
        label,
        type="TransformationEvent",
        eventTime=when(chain),
        bizStep="commissioning",
        inputQuantityList=inputs,
        outputQuantityList=outputs,
    )


def commit(chain: DevChain, park: Consortium, org: str, event: dict[str, Any]) -> Transaction:
    tx = sign(park, chain, org, event)
    chain.commit_block([tx])
    return tx


def total(chain: DevChain, key: bytes) -> int:
    assert chain.store is not None
    return chain.store.totals([key]).get(key, 0)


ROOTS, POWDER = lot_id(ROOT, "WS-1"), lot_id(POWDER_JAR, "SQP-1")


def roots_and_powder(chain: DevChain, park: Consortium) -> None:
    """1.5 t of roots harvested on A12, made into 3000 jars (300 kg) of powder."""
    commit(chain, park, GROWER, harvest(chain, "roots", ROOTS, 1500, at=A12))
    made = transformation(chain, "powder", [quantity(ROOTS, 1500)], [quantity(POWDER, 3000, None)])
    commit(chain, park, PROCESSOR, made)


# -- registered plots ----------------------------------------------------------------------------
def test_a_plot_outside_its_gi_zone_is_refused(ruled: Consortium, chain: DevChain) -> None:
    outside = orange_plot(id="P99", gln=sgln("0690123", 199), centre=[113.26, 23.13])  # Guangzhou
    report = refused_everywhere(
        chain,
        register(ruled, chain, ORCHARD, outside),
        RuleViolation,
        r"plot rule: plot P99 at \(113.26, 23.13\) lies outside the GI zone 赣南脐橙",
    )
    assert "outside the GI zone" in report.problem.what


def test_a_plot_needs_the_committees_approval(ruled: Consortium, chain: DevChain) -> None:
    plot = orange_plot(id="P08", gln=sgln("0690123", 108))
    refused_everywhere(
        chain,
        register(ruled, chain, ORCHARD, plot, approvers=()),
        NotPermittedError,
        r"needs approval by 1 of \[park-committee\]; approved by 0",
    )


# -- origin --------------------------------------------------------------------------------------
def test_a_gi_harvest_names_a_registered_plot(ruled: Consortium, chain: DevChain) -> None:
    elsewhere = harvest(chain, "relabelled", ORANGE + "X1", 500, at=sgln("0690123", 150))
    refused_everywhere(
        chain,
        sign(ruled, chain, ORCHARD, elsewhere),
        RuleViolation,
        r"origin rule: a harvest of navel-orange-fresh .* none matches readPoint",
    )


def test_a_harvest_happens_on_its_plot(ruled: Consortium, chain: DevChain) -> None:
    inside = harvest(chain, "by gps", ORANGE + "G1", 100, at="geo:24.9504,115.4503")
    commit(chain, ruled, ORCHARD, {**inside, "ilmd": {"pt:plot": "P07"}})  # 55 m from the centre
    away = harvest(chain, "far", ORANGE + "G2", 100, at="geo:24.96,115.45", ilmd={"pt:plot": "P07"})
    refused_everywhere(
        chain,
        sign(ruled, chain, ORCHARD, away),
        RuleViolation,
        r"readPoint 'geo:24.96,115.45' is neither plot P07's location .* nor a geo: point inside",
    )


def test_a_plots_harvest_stays_within_its_registered_yield(
    ruled: Consortium, chain: DevChain
) -> None:
    commit(chain, ruled, ORCHARD, harvest(chain, "first", ORANGE + "H1", 13000))
    season = datetime.fromisoformat(when(chain)).year
    refused_everywhere(
        chain,
        sign(ruled, chain, ORCHARD, harvest(chain, "second", ORANGE + "H2", 600)),
        RuleViolation,
        rf"origin rule: plot P07 registered 12 t for {season} \(13.2 t with the 1.1 "
        r"tolerance\); 13.6 t recorded",
    )


def test_only_the_plots_owner_harvests_it(ruled: Consortium, chain: DevChain) -> None:
    refused_everywhere(
        chain,
        sign(ruled, chain, GROWER, harvest(chain, "not mine", ORANGE + "O1", 10)),
        RuleViolation,
        "origin rule: plot P07 is registered to gannan-orchard-coop, not wenshan-growers",
    )


# -- mass balance --------------------------------------------------------------------------------
def test_a_transformation_makes_at_most_its_inputs_times_the_yield(
    ruled: Consortium, chain: DevChain
) -> None:
    commit(chain, ruled, GROWER, harvest(chain, "roots", ROOTS, 1500, at=A12))
    greedy = transformation(
        chain, "greedy", [quantity(ROOTS, 1500)], [quantity(POWDER, 6000, None)]
    )
    refused_everywhere(
        chain,
        sign(ruled, chain, PROCESSOR, greedy),
        RuleViolation,
        r"mass balance rule: the transformation makes 600 kg of notoginseng-powder; its inputs "
        r"allow 1.5 t × 0.34 = 510 kg",
    )


def test_a_lot_ships_at_most_what_it_holds(ruled: Consortium, chain: DevChain) -> None:
    roots_and_powder(chain, ruled)
    commit(
        chain, ruled, CARRIER, moving(chain, "ship 1", "shipping", [quantity(POWDER, 2000, None)])
    )
    refused_everywhere(
        chain,
        sign(
            ruled,
            chain,
            CARRIER,
            moving(chain, "ship 2", "shipping", [quantity(POWDER, 1500, None)]),
        ),
        RuleViolation,
        r"mass balance rule: lot .*SQP-1 holds 1000 units .*; 1500 units shipped",
    )


def test_a_lot_receives_at_most_what_is_in_transit(ruled: Consortium, chain: DevChain) -> None:
    roots_and_powder(chain, ruled)
    commit(chain, ruled, CARRIER, moving(chain, "ship", "shipping", [quantity(POWDER, 1200, None)]))
    refused_everywhere(
        chain,
        sign(
            ruled,
            chain,
            SHOP,
            moving(chain, "receive", "receiving", [quantity(POWDER, 1300, None)]),
        ),
        RuleViolation,
        r"mass balance rule: lot .*SQP-1 has 1200 units in transit; 1300 units received",
    )


def test_aggregations_pack_at_most_the_units_commissioned(
    ruled: Consortium, chain: DevChain
) -> None:
    lot = MASK + "/10/KN-1"
    batch = object_event(
        "masks", eventTime=when(chain), action="ADD", bizStep="commissioning",
        quantityList=[quantity(lot, 12, None)],
    )  # fmt: skip
    commit(chain, ruled, "ganzhou-mask-factory", batch)
    masks = [f"{MASK}/21/M{i:02d}" for i in range(13)]
    box = {
        "type": "AggregationEvent", "action": "ADD", "bizStep": "packing",
        "parentID": "urn:epc:id:sscc:0690789.1000000011", "eventTime": when(chain),
    }  # fmt: skip
    commit(chain, ruled, "ganzhou-mask-factory", object_event("box 1", **box, childEPCs=masks[:6]))
    refused_everywhere(
        chain,
        sign(
            ruled, chain, "ganzhou-mask-factory", object_event("box 2", **box, childEPCs=masks[6:])
        ),
        RuleViolation,
        r"mass balance rule: aggregations pack 13 units of kn95-mask \(GTIN 06907890000346\); "
        r"12 were commissioned",
    )


# -- sequence ------------------------------------------------------------------------------------
def test_nothing_ships_before_it_was_commissioned(ruled: Consortium, chain: DevChain) -> None:
    early = moving(chain, "early", "shipping", [quantity(POWDER, 10, None)])
    refused_everywhere(
        chain,
        sign(ruled, chain, CARRIER, early),
        RuleViolation,
        r"sequence rule: .*SQP-1 is shipped before it was commissioned or received on the chain",
    )


def test_a_unit_sells_once(ruled: Consortium, chain: DevChain) -> None:
    roots_and_powder(chain, ruled)
    jar = f"https://id.gs1.org/01/{POWDER_JAR}/21/J0001"
    sale = object_event(
        "sale 1", eventTime=when(chain), action="OBSERVE", bizStep="retail_selling", epcList=[jar]
    )
    commit(chain, ruled, SHOP, sale)
    again = {**sale, "eventID": "urn:uuid:2b0c1b9e-7a35-4d1e-9f3c-0f6f6f2a0c11"}
    refused_everywhere(
        chain,
        sign(ruled, chain, SHOP, again),
        RuleViolation,
        rf"sequence rule: {jar} was already sold; a unit sells once",
    )


def test_a_recalled_lot_sees_recall_handling_only(ruled: Consortium, chain: DevChain) -> None:
    roots_and_powder(chain, ruled)
    recall = {"lot": POWDER, "reason": "lead above the limit"}
    chain.commit_block(
        [ruled.sign_tx("market-supervision-bureau", "recall", recall, chain.next_time())]
    )
    held = moving(chain, "quarantine", "holding", [quantity(POWDER, 3000, None)])
    commit(chain, ruled, PROCESSOR, held)  # recall handling goes on
    repacked = moving(chain, "repack", "packing", [quantity(POWDER, 3000, None)])
    refused_everywhere(
        chain,
        sign(ruled, chain, PROCESSOR, repacked),
        RuleViolation,
        r"sequence rule: .*SQP-1 is recalled .*lead above the limit\); only recall handling "
        r"may follow .* not 'packing'",
    )


def test_an_event_far_ahead_of_its_record_time_is_refused(
    ruled: Consortium, chain: DevChain
) -> None:
    ahead = harvest(chain, "tomorrow", ORANGE + "F1", 10)
    ahead["eventTime"] = when(chain, hours=26)
    refused_everywhere(
        chain,
        sign(ruled, chain, ORCHARD, ahead),
        RuleViolation,
        r"time rule: eventTime .* is 1\d\d\d min after its record time .*; at most 60 min allowed",
    )


def test_a_back_dated_event_is_recorded_and_flagged(ruled: Consortium, chain: DevChain) -> None:
    late = harvest(chain, "last month", ORANGE + "B1", 10)
    late["eventTime"] = when(chain, hours=-24 * 45)
    commit(chain, ruled, ORCHARD, late)
    assert total(chain, totals.backdated(ORANGE + "B1")) == 1
    assert total(chain, totals.alerts("backdated")) == 1


# -- cold chain ----------------------------------------------------------------------------------
def test_a_warm_shipment_is_recorded_but_marks_the_lot_non_conformant(
    ruled: Consortium, chain: DevChain
) -> None:
    roots_and_powder(chain, ruled)
    report = {"type": "Temperature", "minValue": 18.0, "maxValue": 31.5, "uom": "CEL"}
    warm = moving(
        chain,
        "warm",
        "shipping",
        [quantity(POWDER, 100, None)],
        sensorElementList=[{"sensorReport": [report]}],
    )
    commit(chain, ruled, CARRIER, warm)
    assert total(chain, totals.nonconformant(POWDER)) == 1
    assert total(chain, totals.alerts("cold-chain")) == 1
    assert verify_store(chain.store, ruled.genesis, rules=trace_rules).ok


# -- governance ----------------------------------------------------------------------------------
def rules_change(park: Consortium, chain: DevChain, rules: dict[str, Any], start: int):
    change = {"rules": rules, "from_height": start}
    approvals = [park.approval("market-supervision-bureau", RULES_TX_TYPE, change)]
    payload = {"change": change, "approvals": approvals}
    return park.sign_tx("market-supervision-bureau", RULES_TX_TYPE, payload, chain.next_time())


def test_a_new_rule_set_holds_from_its_height(ruled: Consortium, chain: DevChain) -> None:
    looser = {**park_rules(), "version": 2, "harvest_tolerance": 1.5}
    start = chain.state.height + 4
    chain.commit_block([rules_change(ruled, chain, looser, start)])
    commit(chain, ruled, ORCHARD, harvest(chain, "big", ORANGE + "V1", 13000))
    with pytest.raises(RuleViolation, match=r"13\.2 t with the 1\.1 tolerance"):
        commit(chain, ruled, ORCHARD, harvest(chain, "bigger", ORANGE + "V2", 1000))
    chain.commit_block([])
    assert chain.state.height + 1 == start
    commit(chain, ruled, ORCHARD, harvest(chain, "bigger", ORANGE + "V2", 1000))  # 14 t ≤ 18 t
    assert verify_store(chain.store, ruled.genesis, rules=trace_rules).ok


def test_a_rule_set_change_cannot_reach_back(ruled: Consortium, chain: DevChain) -> None:
    stale = {**park_rules(), "version": 2}
    refused_everywhere(
        chain,
        rules_change(ruled, chain, stale, chain.state.height),
        RuleViolation,
        r"governance rule: a rule set takes effect from a later block: from_height 2 is not "
        r"above this block's height 3",
    )


# -- the demo's journeys and the stored chain ----------------------------------------------------
def test_the_demo_journeys_record_their_plots_and_pass(ruled: Consortium, tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'demo.db'}")
    cases = record_cases(
        ruled, store, [ResolverKey.generate().public], "https://id.parktrace.example"
    )
    assert [p.label for c in cases.values() for p in c.plots] == [
        "plot P07", "plot P11", "plot A12", "plot B04"
    ]  # fmt: skip
    report = verify_store(store, ruled.genesis, rules=trace_rules)
    assert report.ok, report.problem
    powder = cases["notoginseng"].step("processing").event["outputQuantityList"][0]["epcClass"]
    counted = store.totals([totals.held(powder), totals.transit(powder)])
    # 1200 jars shipped to the pharmacy and received there: all 3000 held, none in transit
    assert counted[totals.held(powder)] == 3000 and counted[totals.transit(powder)] == 0
    season = store.totals([totals.harvest("P07", 2026)])[totals.harvest("P07", 2026)]
    assert season == (12000 + 11800) * 1000  # grams
    store.close()


def test_verify_flags_a_changed_running_total(ruled: Consortium, chain: DevChain) -> None:
    roots_and_powder(chain, ruled)
    with chain.store.engine.begin() as conn:
        conn.execute(text("update tallies set amount = amount + 1000"))
    report = verify_store(chain.store, ruled.genesis, rules=trace_rules)
    assert not report.ok and "running totals" in report.problem.what


def test_parktrace_verify_flags_an_over_harvest_written_into_the_store(
    ruled: Consortium, chain: DevChain, tmp_path: Path
) -> None:
    from tests.chains import write_behind_the_nodes_back

    commit(chain, ruled, ORCHARD, harvest(chain, "first", ORANGE + "H1", 13000))
    write_behind_the_nodes_back(
        chain, [sign(ruled, chain, ORCHARD, harvest(chain, "more", ORANGE + "H2", 900))]
    )
    height = chain.state.height + 1
    chain.store.close()
    result = subprocess.run(
        [sys.executable, "-m", "cli", "verify", "--db", str(tmp_path / "node.db")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT_DIR,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"FAILED at height {height}" in result.stderr
    assert "plot P07 registered 12 t" in result.stderr and "13.9 t recorded" in result.stderr


# -- the property: nothing downstream of a plot exceeds what it may yield ------------------------
@dataclass
class MemoryChain:
    """The domain rules over tallies kept in memory: fast enough for many sequences."""

    park: Consortium
    rows: list[tuple[int, bytes, int]]
    rules: TraceRules
    membership: Any
    height: int = 0

    @classmethod
    def start(cls, park: Consortium) -> MemoryChain:
        rows: list[tuple[int, bytes, int]] = []

        def lookup(keys, below: int) -> dict[bytes, int]:
            found: dict[bytes, int] = {}
            for h, k, amount in rows:
                if h < below and k in keys:
                    found[k] = found.get(k, 0) + amount
            return found

        trust = TrustState.from_genesis(park.genesis.rules, lookup)
        return cls(park, rows, TraceRules(trust=trust), park.genesis.membership())

    def commit(self, tx: Transaction) -> bool:
        self.height += 1
        block = self.rules.begin(self.height, self.time())
        try:
            self.membership.check_tx(tx, self.height, self.time())
            block.check(tx, self.membership)
        except RuleViolation:
            return False
        block.apply(tx)
        self.membership = self.membership.apply(tx, self.height)
        self.rows += [(self.height, k, amount) for _, k, amount in block.tallies()]
        self.rules = block.result()
        return True

    def time(self) -> str:
        start = parse_time(self.park.genesis.genesis_time)
        return format_time(start + timedelta(seconds=self.height))

    def total(self, key: bytes) -> int:
        return sum(a for _, k, a in self.rows if k == key)


OPS = st.lists(
    st.tuples(
        st.sampled_from(["harvest", "transform", "ship", "receive", "sell", "pack"]),
        st.integers(0, 2),  # which lot
        st.integers(1, 1600),  # how much (kg of roots, or jars)
        st.integers(1, 5),  # jars of powder per kg of roots (4 and 5 exceed the yield)
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=40, deadline=None)
@given(ops=OPS)
def test_nothing_downstream_of_a_plot_exceeds_its_yield(
    ops: list[tuple[str, int, int, int]],
) -> None:
    park = ruled_consortium()
    world = MemoryChain.start(park)
    head = parse_time(park.genesis.genesis_time)
    stamp = (head - timedelta(hours=1)).astimezone(CST).isoformat(timespec="milliseconds")
    plot = register_in_memory(park, world)
    roots = [lot_id(ROOT, f"R{i}") for i in range(3)]
    powders = [lot_id(POWDER_JAR, f"W{i}") for i in range(3)]
    cap = Decimal(plot["area_ha"]) * plot["yield_kg_per_ha"] * 1000 * Decimal("1.1")
    signer = {"harvest": GROWER, "transform": PROCESSOR, "ship": CARRIER, "receive": SHOP,
              "sell": SHOP, "pack": PROCESSOR}  # fmt: skip
    jars = 0
    for n, (op, which, amount, jars_per_kg) in enumerate(ops):
        label, root, powder = f"step {n}", roots[which], powders[which]
        if op == "harvest":
            fields = {"action": "ADD", "bizStep": "commissioning", "readPoint": {"id": A12}}
            event = object_event(label, quantityList=[quantity(root, amount)], **fields)
        elif op == "transform":
            made = [quantity(powder, amount * jars_per_kg, None)]
            event = transformation_at(label, [quantity(root, amount)], made)
        elif op == "pack":
            count = 1 + amount % 40
            units = [f"https://id.gs1.org/01/{POWDER_JAR}/21/J{jars + i}" for i in range(count)]
            case = f"urn:epc:id:sscc:0690456.{n:010d}"
            event = object_event(label, **packing(case), childEPCs=units)
        else:
            step = {"ship": "shipping", "receive": "receiving", "sell": "retail_selling"}[op]
            items = [quantity(powder, amount, None)]
            event = object_event(label, action="OBSERVE", bizStep=step, quantityList=items)
        event["eventTime"] = stamp
        tx = park.sign_tx(signer[op], "epcis.event", {"event": event}, world.time())
        if world.commit(tx) and op == "pack":
            jars += len(event["childEPCs"])
        harvested = world.total(totals.harvest("A12", head.astimezone(CST).year))
        roots_left = sum(
            world.total(totals.held(r)) + world.total(totals.transit(r)) for r in roots
        )
        powder_left = sum(
            world.total(totals.held(p)) + world.total(totals.transit(p)) for p in powders
        )
        downstream = roots_left + powder_left * 100  # grams (a jar is 100 g)
        assert harvested <= cap
        assert downstream <= harvested
        assert world.total(totals.packed(POWDER_JAR)) <= world.total(totals.units(POWDER_JAR))


def transformation_at(label: str, inputs: list, outputs: list) -> dict[str, Any]:
    return object_event(
        label,
        type="TransformationEvent",
        bizStep="commissioning",
        inputQuantityList=inputs,
        outputQuantityList=outputs,
    )


def packing(parent_id: str) -> dict[str, Any]:
    return {
        "type": "AggregationEvent",
        "action": "ADD",
        "bizStep": "packing",
        "parentID": parent_id,
    }


def register_in_memory(park: Consortium, world: MemoryChain) -> dict[str, Any]:
    plot = root_plot()
    change = {"plot": plot}
    payload = {
        "change": change,
        "approvals": [park.approval("park-committee", PLOT_TX_TYPE, change)],
    }
    assert world.commit(park.sign_tx(GROWER, PLOT_TX_TYPE, payload, world.time()))
    return plot


def test_plain_commissioning_of_other_goods_is_untouched(
    ruled: Consortium, chain: DevChain
) -> None:
    """Goods outside the rule set's classes are judged as before (no plot, no balance)."""
    commit(
        chain, ruled, ORCHARD, commissioning("other", "https://id.gs1.org/01/09506000134352/21/X1")
    )
    assert chain.store.totals([totals.made("https://id.gs1.org/01/09506000134352/21/X1")]) == {}


# -- the consumer page ---------------------------------------------------------------------------
def _points(path: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in re.findall(r"([\d.]+),([\d.]+)", path)]


def _marker_inside_the_drawn_zone(page: str) -> bool:
    """Whether the origin map's plot marker lies inside one of its zone outlines, read
    back from the SVG the page drew (no tiles, no script)."""
    figure = page[page.index('id="origin-map"') :]
    figure = figure[: figure.index("</figure>")]
    zones = [_points(d) for d in re.findall(r'<path class="zone" d="([^"]+)"', figure)]
    circle = re.search(r'<circle class="plot" cx="([\d.]+)" cy="([\d.]+)"', figure)
    if circle is None:
        outline = re.search(r'<path class="plot" d="([^"]+)"', figure)
        assert outline is not None, "no plot drawn"
        corners = _points(outline[1])
        x, y = (sum(c[i] for c in corners) / len(corners) for i in (0, 1))
    else:
        x, y = float(circle[1]), float(circle[2])

    def inside(polygon: list[tuple[float, float]]) -> bool:
        edges = zip(polygon, polygon[1:] + polygon[:1], strict=True)
        return sum((y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1)
                   for (x1, y1), (x2, y2) in edges) % 2 == 1  # fmt: skip

    return bool(zones) and any(inside(zone) for zone in zones)


def test_the_consumer_page_says_the_origin_is_a_registered_plot_in_the_gi_zone(
    ruled: Consortium, tmp_path: Path
) -> None:
    from tests.test_resolver import EN, HOST, RESOLVER, ZH, open_world

    url = f"sqlite:///{tmp_path / 'page.db'}"
    store = Store(url)
    cases = record_cases(ruled, store, [RESOLVER.public], HOST)
    store.close()
    for world in open_world(ruled, url, cases):
        for name, plot, zone in (("orange", "P07", "赣南脐橙"), ("notoginseng", "A12", "文山三七")):
            page = world.get(cases[name].code, ZH).text
            assert "产地核验：已登记地块 · 地理标志保护区内" in page
            assert f"（地块 {plot}，{zone}）" in page and 'href="geo:' in page
            assert _marker_inside_the_drawn_zone(page), name
        english = world.get(cases["orange"].code, EN).text
        assert (
            "Origin verified: registered plot · inside the geographical-indication zone" in english
        )
        assert "(plot P07, Gannan navel orange)" in english
        assert "cold-chain-note" not in english  # 3.1–5.8 °C, inside 1–10 °C
        assert "origin-check" not in world.get(cases["mask"].code, ZH).text  # not a GI product


def test_a_warm_shipment_alerts_the_regulator_and_notes_the_consumer_page(
    ruled: Consortium, tmp_path: Path
) -> None:
    from tests import test_audit_api as audit

    db = tmp_path / "warm.db"
    store = Store(f"sqlite:///{db}")
    cases = record_cases(ruled, store, [audit.RESOLVER.public], audit.HOST)
    chain = DevChain.resume(ruled.genesis, ruled.validator_keys, store)
    powder = cases["notoginseng"].step("processing").event["outputQuantityList"][0]["epcClass"]
    report = {"type": "Temperature", "minValue": 22.0, "maxValue": 34.0, "uom": "CEL"}
    warm = moving(
        chain, "warm leg", "shipping", [quantity(powder, 100, None)],
        sensorElementList=[{"sensorReport": [report]}],
    )  # fmt: skip
    commit(chain, ruled, CARRIER, warm)
    store.close()
    with audit.open_world(ruled, db, cases) as world:
        seen = world.audit.trust()
        assert seen["rule_set"] == 1 and seen["alerts"]["cold_chain"] == 1
        assert seen["alerts"]["backdated"] >= 1  # the 2023 planting, recorded in 2026
        assert [p["id"] for p in seen["plots"]] == ["P07", "P11", "A12", "B04"]
        status = world.audit.trust_status(powder)
        assert status["non_conformant"] and status["cold_chain_events_out_of_range"] == 1
        page = world.client.get(cases["notoginseng"].code.path(), headers={"Accept-Language": "zh"})
        assert (
            "运输途中温度超出该产品的规定范围" in page.text and 'id="cold-chain-note"' in page.text
        )
