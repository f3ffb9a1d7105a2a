"""The park's three cases as real ledger histories, for tests and the demo: an orange box,
a jar of notoginseng powder and a mask, each with its serialised codes and the EPCIS
events of its journey, every one signed by the organisation that would record it.

    orange       orchard plot commissioning → harvest → packing (bulk lot → boxes) →
                 inspection → palletising → cold-chain shipping → retail
    notoginseng  planting on two plots (2023) → harvest after three years → drying and
                 grinding (TransformationEvent: root lots → powder lot) → residue and
                 heavy-metal inspection → codes → distribution → pharmacy
    mask         production batch → serial codes → masks into boxes → boxes into a
                 carton → quality inspection → shipping → pharmacy

On a chain with the park's trust rules (genesis `rules`), each producer first registers
the plots its harvests name (`plot.register`, approved by the park committee), and every
event then passes the origin, mass-balance, sequence and cold-chain rules.

`build_histories` commits one transaction a block through a `DevChain`, so block heights
are fixed by the order below and every value is deterministic for a given consortium.
Events carry a few `pt:` extensions the consumer page reads (see docs/codes.md):
`pt:region` (ISO 3166-2 where it happened), `pt:destinationRegion`, `pt:place`,
`pt:results` (inspection results) and `pt:certificate`, and ILMD `pt:orchard`/`pt:farm`,
`pt:plot`, `pt:variety`.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ledger.consortium import Consortium
from ledger.store import Store
from ledger.timefmt import format_time, parse_time
from ledger.tx import Transaction
from nodes.devchain import DevChain
from traceability.codes.batch import TX_TYPE, Batch, new_batch
from traceability.codes.digital_link import DigitalLink, build
from traceability.codes.gtin import check_digit
from traceability.codes.sealing import ResolverPublicKey
from traceability.epcis.records import check_payload
from traceability.trust import PLOT_TX_TYPE

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
PT_NAMESPACE = "https://ns.parktrace.example/epcis/"
CONTEXT = [EPCIS_CONTEXT, {"pt": PT_NAMESPACE}]
_IDS = uuid.UUID("0b6f3f0e-52a4-4c55-9d2e-6a1f4c0d7e21")


def gtin14(body12: str) -> str:
    """GTIN-14 ('0' + GTIN-13) from the first 12 digits of a GTIN-13."""
    return "0" + body12 + str(check_digit(body12))


ORANGE_BULK = gtin14("690123400012")  # fresh oranges, bulk
ORANGE_BOX = gtin14("690123400029")  # 5 kg gift box
ROOT = gtin14("690456700016")  # fresh notoginseng root
POWDER_JAR = gtin14("690456700023")  # 100 g powder jar
MASK = gtin14("690789000034")  # KN95 mask


def lang(en: str, zh: str) -> list[dict[str, str]]:
    return [{"@value": en, "@language": "en"}, {"@value": zh, "@language": "zh"}]


def lot_id(gtin: str, lot: str) -> str:
    return build(gtin, lot).lot_id or ""


def sgln(prefix: str, location: int) -> str:
    return f"urn:epc:id:sgln:{prefix}.{location:05d}.0"


def sscc(prefix: str, serial: int) -> str:
    return f"urn:epc:id:sscc:{prefix}.{serial:010d}"


NOT_DETECTED = lang("not detected", "未检出")


def result(
    test_en: str, test_zh: str, value: Any, limit: str, unit: str, verdict: str = "pass"
) -> dict[str, Any]:
    return {
        "pt:test": lang(test_en, test_zh),
        "pt:value": value,
        "pt:limit": limit,
        "pt:unit": unit,
        "pt:result": verdict,
    }


def certificate(number: str, en: str, zh: str, issuer_en: str, issuer_zh: str) -> dict[str, Any]:
    return {"pt:number": number, "pt:name": lang(en, zh), "pt:issuer": lang(issuer_en, issuer_zh)}


@dataclass
class Step:
    label: str
    org: str
    tx: Transaction
    height: int = 0

    @property
    def event(self) -> dict[str, Any] | None:
        return self.tx.payload.get("event") if self.tx.type == "epcis.event" else None


@dataclass
class Case:
    name: str
    batch: Batch
    batch_key: bytes
    codes: list[DigitalLink]
    steps: list[Step] = field(default_factory=list)
    regions: tuple[str, ...] = ()
    #: the plot registrations of the case (on a chain with trust rules)
    plots: list[Step] = field(default_factory=list)

    @property
    def code(self) -> DigitalLink:
        """The code the tests and the demo scan."""
        return self.codes[0]

    def step(self, label: str) -> Step:
        return next(s for s in self.steps if s.label == label)

    @property
    def batch_step(self) -> Step:
        return next(s for s in self.steps if s.tx.type == TX_TYPE)


class Recorder:
    """Signs events as their organisations and commits each in a block of its own."""

    def __init__(self, park: Consortium, chain: DevChain, seed: bytes) -> None:
        self.park = park
        self.chain = chain
        self.seed = seed

    def _secret(self, label: str, size: int = 32) -> bytes:
        return hmac.digest(self.seed, label.encode(), "sha256")[:size]

    def _commit(self, step: Step, at: datetime) -> Step:
        head = parse_time(self.chain.state.head_time)
        when = max(head + timedelta(seconds=1), at + timedelta(minutes=10))
        block = self.chain.commit_block([step.tx], format_time(when))
        step.height = block.height
        return step

    def event(self, case: Case, label: str, org: str, event: dict[str, Any]) -> Step:
        event = {
            "@context": CONTEXT,
            "eventID": f"urn:uuid:{uuid.uuid5(_IDS, f'{case.name}/{label}')}",
            "eventTimeZoneOffset": "+08:00",
            **event,
        }
        payload = {"event": event}
        check_payload(payload)  # the same rules a node applies on admission
        at = datetime.fromisoformat(event["eventTime"])
        tx = self.park.sign_tx(
            org,
            "epcis.event",
            payload,
            format_time(max(at, parse_time(self.chain.state.head_time))),
            nonce=self._secret(f"nonce/{case.name}/{label}", 16),
        )
        step = self._commit(Step(label, org, tx), at)
        case.steps.append(step)
        return step

    def issue(
        self,
        name: str,
        org: str,
        link: DigitalLink,
        count: int,
        at: str,
        keys: Sequence[ResolverPublicKey],
        host: str,
        names: dict[str, str],
    ) -> Case:
        key = self._secret(f"batch-key/{name}")
        batch, key = new_batch(
            link,
            count,
            keys,
            host,
            names=names,
            batch_key=key,
            batch_id=self._secret(f"batch-id/{name}", 16),
        )
        serial_key = batch.serial_key(key)
        codes = [code for _, code in batch.codes(serial_key, 0, count)]
        return Case(name, batch, key, codes)

    def register_plot(self, case: Case, org: str, plot: dict[str, Any], at: str) -> None:
        """Register `plot` for `org`, approved by the park committee, if the chain has
        trust rules (a chain without them has no plots)."""
        if self.park.genesis.rules is None:
            return
        moment = datetime.fromisoformat(at)
        change = {"plot": plot}
        approvals = [self.park.approval("park-committee", PLOT_TX_TYPE, change)]
        tx = self.park.sign_tx(
            org,
            PLOT_TX_TYPE,
            {"change": change, "approvals": approvals},
            format_time(max(moment, parse_time(self.chain.state.head_time))),
            nonce=self._secret(f"nonce/{case.name}/plot/{plot['id']}", 16),
        )
        case.plots.append(self._commit(Step(f"plot {plot['id']}", org, tx), moment))

    def record_batch(self, case: Case, org: str, at: str) -> Step:
        moment = datetime.fromisoformat(at)
        tx = self.park.sign_tx(
            org,
            TX_TYPE,
            case.batch.payload(),
            format_time(max(moment, parse_time(self.chain.state.head_time))),
            nonce=self._secret(f"nonce/{case.name}/codes", 16),
        )
        step = self._commit(Step("codes", org, tx), moment)
        case.steps.append(step)
        return step


# -- the cases ------------------------------------------------------------------------------


def _orange(r: Recorder, keys: Sequence[ResolverPublicKey], host: str, boxes: int) -> Case:
    bulk_lot, box_lot = "GN26-P07-1103", "GN26-1105-A"
    bulk, lot = lot_id(ORANGE_BULK, bulk_lot), lot_id(ORANGE_BOX, box_lot)
    link = build(ORANGE_BOX, box_lot, attributes={"7007": "261103", "422": "156"})
    case = r.issue(
        "orange",
        "ganzhou-packing-house",
        link,
        boxes,
        "2026-11-05T09:00:00+08:00",
        keys,
        host,
        {"en": "Gannan navel oranges, 5 kg gift box", "zh": "赣南脐橙 5公斤礼盒"},
    )
    box_ids = [c.instance_id for c in case.codes]
    pallet = sscc("0690123", 4000000017)
    plot, packhouse = sgln("0690123", 107), sgln("0690123", 201)
    for plot_id, location, centre, area in (
        ("P07", plot, [115.45, 24.95], 8.0),
        ("P11", "urn:epc:id:sgln:6901234.00011.0", [115.40, 25.20], 3.0),  # the tour's
    ):
        r.register_plot(
            case,
            "gannan-orchard-coop",
            {
                "id": plot_id,
                "gln": location,
                "crop": "navel-orange-fresh",
                "gi_zone": "gannan-navel-orange",
                "area_ha": area,
                "yield_kg_per_ha": 3000,
                "centre": centre,
                "radius_m": 200,
            },
            "2026-03-01T09:00:00+08:00",
        )
    r.event(
        case,
        "plot",
        "gannan-orchard-coop",
        {
            "type": "ObjectEvent",
            "eventTime": "2026-11-03T07:30:00+08:00",
            "action": "ADD",
            "bizStep": "commissioning",
            "disposition": "active",
            "epcList": [],
            "quantityList": [{"epcClass": bulk, "quantity": 12000, "uom": "KGM"}],
            "readPoint": {"id": plot},
            "bizLocation": {"id": plot},
            "certificationInfo": "https://cert.parktrace.example/gap/JX-GAP-2026-0412",
            "ilmd": {
                "pt:orchard": lang("Anyuan Sanbaishan Orchard", "安远三百山果园"),
                "pt:plot": "P07",
                "pt:variety": lang("Newhall navel orange", "纽荷尔脐橙"),
                "pt:treeAge": 12,
                "cbvmda:countryOfOrigin": "CN",
            },
            "pt:region": "CN-JX",
            "pt:place": lang("Orchard plot P07, Anyuan, Ganzhou", "赣州安远 P07 号果园地块"),
            "pt:certificate": certificate(
                "JX-GAP-2026-0412",
                "Good Agricultural Practice certificate",
                "良好农业规范（GAP）认证",
                "China Quality Certification Centre",
                "中国质量认证中心",
            ),
        },
    )
    r.event(
        case,
        "harvest",
        "gannan-orchard-coop",
        {
            "type": "ObjectEvent",
            "eventTime": "2026-11-03T16:00:00+08:00",
            "action": "OBSERVE",
            "bizStep": "creating_class_instance",
            "disposition": "active",
            "epcList": [],
            "quantityList": [{"epcClass": bulk, "quantity": 11800, "uom": "KGM"}],
            "readPoint": {"id": plot},
            "bizLocation": {"id": plot},
            "pt:harvestDate": "2026-11-03",
            "pt:region": "CN-JX",
            "pt:place": lang("Orchard plot P07, Anyuan, Ganzhou", "赣州安远 P07 号果园地块"),
        },
    )
    r.record_batch(case, "ganzhou-packing-house", "2026-11-05T09:00:00+08:00")
    r.event(
        case,
        "packing",
        "ganzhou-packing-house",
        {
            "type": "TransformationEvent",
            "eventTime": "2026-11-05T10:30:00+08:00",
            "bizStep": "packing",
            "disposition": "active",
            "transformationID": f"urn:uuid:{uuid.uuid5(_IDS, 'orange/packing')}",
            "inputQuantityList": [{"epcClass": bulk, "quantity": 2400, "uom": "KGM"}],
            "outputEPCList": box_ids,
            "outputQuantityList": [{"epcClass": lot, "quantity": 480}],
            "readPoint": {"id": packhouse},
            "bizLocation": {"id": packhouse},
            "pt:grade": lang(
                "Premium grade, 80–85 mm, Brix 12.5", "特级果，果径80–85毫米，糖度12.5"
            ),
            "pt:region": "CN-JX",
            "pt:place": lang("Ganzhou packing house, line 2", "赣州脐橙分选包装厂 2号线"),
        },
    )
    r.event(
        case,
        "inspection",
        "testing-centre",
        {
            "type": "ObjectEvent",
            "eventTime": "2026-11-06T14:00:00+08:00",
            "action": "OBSERVE",
            "bizStep": "inspecting",
            "disposition": "conformant",
            "epcList": [],
            "quantityList": [{"epcClass": lot, "quantity": 3}],
            "readPoint": {"id": sgln("0690000", 9)},
            "certificationInfo": "https://cert.parktrace.example/reports/JC-2026-11-0457",
            "pt:results": [
                result("Chlorpyrifos residue", "毒死蜱残留", "0.01", "≤ 1", "mg/kg"),
                result("Carbendazim residue", "多菌灵残留", NOT_DETECTED, "≤ 5", "mg/kg"),
                result("Lead (Pb)", "铅", "0.02", "≤ 0.1", "mg/kg"),
            ],
            "pt:certificate": certificate(
                "JC-2026-11-0457",
                "Inspection report (GB 2763-2021, GB 2762-2022)",
                "检验报告（GB 2763-2021、GB 2762-2022）",
                "Product Quality Testing and Inspection Centre",
                "产品质量检验检测中心",
            ),
            "pt:region": "CN-JX",
            "pt:place": lang("Park testing laboratory", "园区检验检测实验室"),
        },
    )
    r.event(
        case,
        "palletising",
        "ganzhou-packing-house",
        {
            "type": "AggregationEvent",
            "eventTime": "2026-11-07T08:00:00+08:00",
            "action": "ADD",
            "bizStep": "packing",
            "disposition": "in_progress",
            "parentID": pallet,
            "childEPCs": box_ids,
            "readPoint": {"id": packhouse},
            "pt:region": "CN-JX",
            "pt:place": lang("Ganzhou packing house, dispatch", "赣州脐橙分选包装厂 发货区"),
        },
    )
    r.event(
        case,
        "shipping",
        "cold-chain-logistics",
        {
            "type": "ObjectEvent",
            "eventTime": "2026-11-07T11:00:00+08:00",
            "action": "OBSERVE",
            "bizStep": "shipping",
            "disposition": "in_transit",
            "epcList": [pallet],
            "readPoint": {"id": sgln("0690321", 1)},
            "destinationList": [{"type": "location", "destination": sgln("0690654", 18)}],
            "sensorElementList": [
                {
                    "sensorMetadata": {
                        "startTime": "2026-11-07T11:00:00+08:00",
                        "endTime": "2026-11-08T09:00:00+08:00",
                    },
                    "sensorReport": [
                        {"type": "Temperature", "minValue": 3.1, "maxValue": 5.8, "uom": "CEL"}
                    ],
                }
            ],
            "pt:region": "CN-JX",
            "pt:destinationRegion": "CN-GD",
            "pt:place": lang("Ganzhou → Shenzhen, refrigerated truck", "赣州 → 深圳 冷藏车"),
        },
    )
    r.event(
        case,
        "retail",
        "retail-pharmacy-chain",
        {
            "type": "ObjectEvent",
            "eventTime": "2026-11-08T10:00:00+08:00",
            "action": "OBSERVE",
            "bizStep": "stocking",
            "disposition": "sellable_accessible",
            "epcList": [pallet],
            "readPoint": {"id": sgln("0690654", 18)},
            "bizLocation": {"id": sgln("0690654", 18)},
            "pt:region": "CN-GD",
            "pt:place": lang("Futian store, Shenzhen", "深圳福田门店"),
        },
    )
    case.regions = ("CN-JX", "CN-GD")
    return case


def _notoginseng(r: Recorder, keys: Sequence[ResolverPublicKey], host: str, jars: int) -> Case:
    lots = {"A": "WS23-A12", "B": "WS23-B04"}
    roots = {k: lot_id(ROOT, v) for k, v in lots.items()}
    powder_lot = "SQP-261028"
    powder = lot_id(POWDER_JAR, powder_lot)
    link = build(
        POWDER_JAR, powder_lot, attributes={"7007": "261020", "422": "156", "17": "281027"}
    )
    case = r.issue(
        "notoginseng",
        "notoginseng-processor",
        link,
        jars,
        "2026-11-09T09:00:00+08:00",
        keys,
        host,
        {"en": "Wenshan notoginseng powder, 100 g jar", "zh": "文山三七粉 100克罐装"},
    )
    farm = lang("Wenshan Maguan notoginseng base", "文山马关三七种植基地")
    for key, plot_no, centre, area in (
        ("A", 12, [104.40, 23.02], 0.6),
        ("B", 4, [104.36, 23.06], 0.5),
    ):
        r.register_plot(
            case,
            "wenshan-growers",
            {
                "id": f"{key}{plot_no:02d}",
                "gln": sgln("0690456", plot_no),
                "crop": "notoginseng-root-fresh",
                "gi_zone": "wenshan-notoginseng",
                "area_ha": area,
                "yield_kg_per_ha": 1500,
                "centre": centre,
                "radius_m": 60,
            },
            "2023-10-01T09:00:00+08:00",
        )
    for key, plot_no in (("A", 12), ("B", 4)):
        plot = sgln("0690456", plot_no)
        r.event(
            case,
            f"planting-{key}",
            "wenshan-growers",
            {
                "type": "ObjectEvent",
                "eventTime": "2023-10-15T09:00:00+08:00",
                "action": "ADD",
                "bizStep": "commissioning",
                "disposition": "active",
                "epcList": [],
                "quantityList": [{"epcClass": roots[key], "quantity": 0.6, "uom": "HAR"}],
                "readPoint": {"id": plot},
                "bizLocation": {"id": plot},
                "ilmd": {
                    "pt:farm": farm,
                    "pt:plot": f"{key}{plot_no:02d}",
                    "pt:variety": lang("Panax notoginseng, three-year roots", "三七（三年生）"),
                    "pt:plantingDate": "2023-10-15",
                    "cbvmda:countryOfOrigin": "CN",
                },
                "pt:region": "CN-YN",
                "pt:place": lang(
                    f"Plot {key}{plot_no:02d}, Maguan, Wenshan", f"文山马关 {key}{plot_no:02d} 地块"
                ),
            },
        )
    for key, kilos in (("A", 800), ("B", 700)):
        r.event(
            case,
            f"harvest-{key}",
            "wenshan-growers",
            {
                "type": "ObjectEvent",
                "eventTime": "2026-10-20T08:00:00+08:00",
                "action": "OBSERVE",
                "bizStep": "creating_class_instance",
                "disposition": "active",
                "epcList": [],
                "quantityList": [{"epcClass": roots[key], "quantity": kilos, "uom": "KGM"}],
                "readPoint": {"id": sgln("0690456", 12 if key == "A" else 4)},
                "pt:harvestDate": "2026-10-20",
                "pt:region": "CN-YN",
                "pt:place": lang("Maguan, Wenshan", "文山马关"),
            },
        )
    r.event(
        case,
        "processing",
        "notoginseng-processor",
        {
            "type": "TransformationEvent",
            "eventTime": "2026-10-28T15:00:00+08:00",
            "bizStep": "creating_class_instance",
            "disposition": "active",
            "transformationID": f"urn:uuid:{uuid.uuid5(_IDS, 'notoginseng/powder')}",
            "inputQuantityList": [
                {"epcClass": roots["A"], "quantity": 800, "uom": "KGM"},
                {"epcClass": roots["B"], "quantity": 700, "uom": "KGM"},
            ],
            "outputQuantityList": [{"epcClass": powder, "quantity": 3000}],
            "readPoint": {"id": sgln("0690456", 300)},
            "bizLocation": {"id": sgln("0690456", 300)},
            "ilmd": {
                "pt:process": lang(
                    "washed, dried at 60 °C for 48 h, ground to 200 mesh",
                    "清洗，60 °C 烘干48小时，粉碎至200目",
                ),
            },
            "pt:region": "CN-YN",
            "pt:place": lang("Wenshan processing plant, GMP workshop", "文山三七加工厂 GMP车间"),
        },
    )
    r.event(
        case,
        "inspection",
        "testing-centre",
        {
            "type": "ObjectEvent",
            "eventTime": "2026-11-02T10:00:00+08:00",
            "action": "OBSERVE",
            "bizStep": "inspecting",
            "disposition": "conformant",
            "epcList": [],
            "quantityList": [{"epcClass": powder, "quantity": 5}],
            "readPoint": {"id": sgln("0690000", 9)},
            "certificationInfo": "https://cert.parktrace.example/reports/JC-2026-11-0213",
            "pt:results": [
                result("Quintozene residue", "五氯硝基苯残留", NOT_DETECTED, "≤ 0.1", "mg/kg"),
                result("Lead (Pb)", "铅", "0.8", "≤ 5", "mg/kg"),
                result("Cadmium (Cd)", "镉", "0.12", "≤ 1", "mg/kg"),
                result("Arsenic (As)", "砷", "0.35", "≤ 2", "mg/kg"),
                result("Mercury (Hg)", "汞", "0.01", "≤ 0.2", "mg/kg"),
                result("Copper (Cu)", "铜", "6.2", "≤ 20", "mg/kg"),
            ],
            "pt:certificate": certificate(
                "JC-2026-11-0213",
                "Inspection report (Chinese Pharmacopoeia 2020)",
                "检验报告（《中国药典》2020年版）",
                "Product Quality Testing and Inspection Centre",
                "产品质量检验检测中心",
            ),
            "pt:region": "CN-JX",
            "pt:place": lang("Park testing laboratory", "园区检验检测实验室"),
        },
    )
    r.record_batch(case, "notoginseng-processor", "2026-11-09T09:00:00+08:00")
    r.event(
        case,
        "distribution",
        "cold-chain-logistics",
        {
            "type": "ObjectEvent",
            "eventTime": "2026-11-10T08:30:00+08:00",
            "action": "OBSERVE",
            "bizStep": "shipping",
            "disposition": "in_transit",
            "epcList": [],
            "quantityList": [{"epcClass": powder, "quantity": 1200}],
            "readPoint": {"id": sgln("0690456", 300)},
            "destinationList": [{"type": "location", "destination": sgln("0690654", 31)}],
            "pt:region": "CN-YN",
            "pt:destinationRegion": "CN-GD",
            "pt:place": lang("Wenshan → Guangzhou", "文山 → 广州"),
        },
    )
    r.event(
        case,
        "pharmacy",
        "retail-pharmacy-chain",
        {
            "type": "ObjectEvent",
            "eventTime": "2026-11-12T09:00:00+08:00",
            "action": "OBSERVE",
            "bizStep": "receiving",
            "disposition": "sellable_not_accessible",
            "epcList": [],
            "quantityList": [{"epcClass": powder, "quantity": 1200}],
            "readPoint": {"id": sgln("0690654", 31)},
            "bizLocation": {"id": sgln("0690654", 31)},
            "pt:region": "CN-GD",
            "pt:place": lang("Tianhe pharmacy, Guangzhou", "广州天河药房"),
        },
    )
    case.regions = ("CN-YN", "CN-JX", "CN-GD")
    return case


def _mask(r: Recorder, keys: Sequence[ResolverPublicKey], host: str, masks: int) -> Case:
    batch_lot = "KN95-261112-L3"
    lot = lot_id(MASK, batch_lot)
    link = build(MASK, batch_lot, attributes={"11": "261112", "17": "291111"})
    case = r.issue(
        "mask",
        "ganzhou-mask-factory",
        link,
        masks,
        "2026-11-12T18:00:00+08:00",
        keys,
        host,
        {"en": "KN95 protective mask", "zh": "KN95 防护口罩"},
    )
    factory = sgln("0690789", 1)
    half = max(1, len(case.codes) // 2)
    boxes = [sscc("0690789", 1000000011), sscc("0690789", 1000000022)]
    carton = sscc("0690789", 2000000018)
    r.event(
        case,
        "production",
        "ganzhou-mask-factory",
        {
            "type": "ObjectEvent",
            "eventTime": "2026-11-12T08:00:00+08:00",
            "action": "ADD",
            "bizStep": "commissioning",
            "disposition": "active",
            "epcList": [],
            "quantityList": [{"epcClass": lot, "quantity": masks}],
            "readPoint": {"id": factory},
            "bizLocation": {"id": factory},
            "ilmd": {
                "pt:standard": "GB 2626-2019 KN95",
                "pt:line": lang("Production line 3", "3号生产线"),
                "cbvmda:countryOfOrigin": "CN",
            },
            "pt:region": "CN-JX",
            "pt:place": lang("Ganzhou mask factory, line 3", "赣州防护口罩厂 3号线"),
        },
    )
    r.record_batch(case, "ganzhou-mask-factory", "2026-11-12T18:00:00+08:00")
    for i, box in enumerate(boxes):
        members = case.codes[i * half : (i + 1) * half] if i == 0 else case.codes[half:]
        r.event(
            case,
            f"box-{i + 1}",
            "ganzhou-mask-factory",
            {
                "type": "AggregationEvent",
                "eventTime": f"2026-11-13T0{8 + i}:00:00+08:00",
                "action": "ADD",
                "bizStep": "packing",
                "disposition": "in_progress",
                "parentID": box,
                "childEPCs": [c.instance_id for c in members],
                "readPoint": {"id": factory},
                "pt:region": "CN-JX",
                "pt:place": lang("Ganzhou mask factory, packing", "赣州防护口罩厂 包装车间"),
            },
        )
    r.event(
        case,
        "carton",
        "ganzhou-mask-factory",
        {
            "type": "AggregationEvent",
            "eventTime": "2026-11-13T11:00:00+08:00",
            "action": "ADD",
            "bizStep": "packing",
            "disposition": "in_progress",
            "parentID": carton,
            "childEPCs": boxes,
            "readPoint": {"id": factory},
            "pt:region": "CN-JX",
            "pt:place": lang("Ganzhou mask factory, packing", "赣州防护口罩厂 包装车间"),
        },
    )
    r.event(
        case,
        "inspection",
        "testing-centre",
        {
            "type": "ObjectEvent",
            "eventTime": "2026-11-14T10:00:00+08:00",
            "action": "OBSERVE",
            "bizStep": "inspecting",
            "disposition": "conformant",
            "epcList": [],
            "quantityList": [{"epcClass": lot, "quantity": 20}],
            "readPoint": {"id": sgln("0690000", 9)},
            "certificationInfo": "https://cert.parktrace.example/reports/JC-2026-11-0688",
            "pt:results": [
                result("Filtration efficiency", "过滤效率", "97.8", "≥ 95", "%"),
                result("Inhalation resistance", "吸气阻力", "210", "≤ 350", "Pa"),
                result("Exhalation resistance", "呼气阻力", "150", "≤ 250", "Pa"),
                result("Total inward leakage", "泄漏性", "3.1", "≤ 8", "%"),
            ],
            "pt:certificate": certificate(
                "JC-2026-11-0688",
                "Inspection report (GB 2626-2019)",
                "检验报告（GB 2626-2019）",
                "Product Quality Testing and Inspection Centre",
                "产品质量检验检测中心",
            ),
            "pt:region": "CN-JX",
            "pt:place": lang("Park testing laboratory", "园区检验检测实验室"),
        },
    )
    pharmacy = sgln("0690654", 52)
    r.event(
        case,
        "shipping",
        "cold-chain-logistics",
        {
            "type": "ObjectEvent",
            "eventTime": "2026-11-15T09:00:00+08:00",
            "action": "OBSERVE",
            "bizStep": "shipping",
            "disposition": "in_transit",
            "epcList": [carton],
            "readPoint": {"id": factory},
            "destinationList": [{"type": "location", "destination": pharmacy}],
            "pt:region": "CN-JX",
            "pt:destinationRegion": "CN-GD",
            "pt:place": lang("Ganzhou → Guangzhou", "赣州 → 广州"),
        },
    )
    r.event(
        case,
        "pharmacy",
        "retail-pharmacy-chain",
        {
            "type": "ObjectEvent",
            "eventTime": "2026-11-16T10:00:00+08:00",
            "action": "OBSERVE",
            "bizStep": "receiving",
            "disposition": "sellable_not_accessible",
            "epcList": [carton],
            "readPoint": {"id": pharmacy},
            "bizLocation": {"id": pharmacy},
            "pt:region": "CN-GD",
            "pt:place": lang("Yuexiu pharmacy, Guangzhou", "广州越秀药房"),
        },
    )
    case.regions = ("CN-JX", "CN-GD")
    return case


def build_histories(
    park: Consortium,
    chain: DevChain,
    resolver_keys: Sequence[ResolverPublicKey],
    host: str,
    *,
    seed: bytes = b"parktrace histories",
    boxes: int = 24,
    jars: int = 60,
    masks: int = 12,
) -> dict[str, Case]:
    """Record the three cases on `chain` (one transaction a block, in this order)."""
    recorder = Recorder(park, chain, hashlib.sha256(seed).digest())
    return {
        "orange": _orange(recorder, resolver_keys, host, boxes),
        "notoginseng": _notoginseng(recorder, resolver_keys, host, jars),
        "mask": _mask(recorder, resolver_keys, host, masks),
    }


def record_cases(
    park: Consortium,
    store: Store,
    resolver_keys: Sequence[ResolverPublicKey],
    host: str,
    **counts: int,
) -> dict[str, Case]:
    """The three cases on a fresh store (what the demo and the tests start from)."""
    chain = DevChain(park.genesis, park.validator_keys, store)
    return build_histories(park, chain, resolver_keys, host, **counts)
