"""A product's verified journey, as the consumer page and its JSON show it.

Built from the EPCIS product history (`api.epcis.history.product_history`, which follows
the containers an item travelled in and the lots a product was made from) of the item
and of its lot, plus the `codes.issue` batches of the lot. Every step keeps what proves
it: the signing organisation and certificate holder, the transaction and its block.
Display strings stay language-neutral here ({"en": …, "zh": …} maps or plain values);
the page picks the language.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from ledger.membership import Membership
from ledger.store import Store
from traceability.codes.batch import RecordedBatch
from traceability.epcis.history import product_history
from traceability.epcis.index import EventIndex
from traceability.epcis.rules import parse_timestamp

Text = dict[str, str] | str
PT = "pt:"

#: Step kinds in the order a journey usually runs (for labels and icons).
KINDS = (
    "origin",
    "harvest",
    "production",
    "processing",
    "codes",
    "inspection",
    "packing",
    "shipping",
    "receiving",
    "retail",
    "other",
)
_SHIPPING = {"shipping", "departing", "transporting", "loading", "staging_outbound"}
_RECEIVING = {"receiving", "arriving", "accepting", "unloading", "unpacking"}
_RETAIL = {"stocking", "retail_selling", "dispensing"}
_INSPECTION = {"inspecting", "sampling"}
_PACKING = {"packing", "assembling", "repackaging"}


def text(value: Any) -> Text | None:
    """A JSON-LD value as {"en": …, "zh": …} (language-tagged) or a plain string."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    items = value if isinstance(value, list) else [value]
    found: dict[str, str] = {}
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("@value"), str):
            found.setdefault(str(item.get("@language", "")).split("-")[0].lower(), item["@value"])
    return found or None


def _biz_step(event: dict[str, Any]) -> str | None:
    step = event.get("bizStep")
    if not isinstance(step, str):
        return None
    for prefix in ("urn:epcglobal:cbv:bizstep:", "https://ref.gs1.org/cbv/BizStep-"):
        if step.startswith(prefix):
            return step[len(prefix) :]
    return step


def kind_of(event: dict[str, Any]) -> str:
    """What a consumer would call this step."""
    step = _biz_step(event) or ""
    ilmd = event.get("ilmd") if isinstance(event.get("ilmd"), dict) else {}
    if event.get("type") == "TransformationEvent":
        return "packing" if step in _PACKING else "processing"
    if step == "commissioning":
        return "origin" if f"{PT}plot" in ilmd else "production"
    if step == "creating_class_instance":
        harvested = f"{PT}harvestDate" in event or "cbvmda:harvestStartDate" in ilmd
        return "harvest" if harvested else "production"
    if step in _INSPECTION:
        return "inspection"
    if step in _PACKING or (
        event.get("type") == "AggregationEvent" and event.get("action") == "ADD"
    ):
        return "packing"
    if step in _SHIPPING:
        return "shipping"
    if step in _RECEIVING:
        return "receiving"
    if step in _RETAIL:
        return "retail"
    if step == "encoding":
        return "codes"
    return "other"


@dataclass(frozen=True)
class Party:
    org: str
    name: dict[str, str]
    user: str
    fingerprint: str

    def to_json(self) -> dict[str, Any]:
        return {
            "organization": self.org,
            "name": self.name,
            "certificate": {"commonName": self.user, "fingerprint": self.fingerprint},
        }


@dataclass
class Step:
    kind: str
    time: str  # as recorded (RFC 3339 with offset)
    party: Party
    tx_id: str
    height: int
    log_index: int
    record_time: str | None = None
    biz_step: str | None = None
    event_type: str | None = None
    event_id: str | None = None
    disposition: str | None = None
    relation: str = "self"
    subject: str | None = None
    place: Text | None = None
    region: str | None = None
    destination_region: str | None = None
    facts: list[tuple[str, Text]] = field(default_factory=list)
    quantities: list[Text] = field(default_factory=list)
    temperature: dict[str, Any] | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    certificates: list[dict[str, Any]] = field(default_factory=list)
    #: The event was declared erroneous: when, why, and its corrective events (each with
    #: `step`, its 1-based place in the journey, when the journey shows it).
    withdrawn: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "time": self.time,
            "recordTime": self.record_time,
            "bizStep": self.biz_step,
            "eventType": self.event_type,
            "eventID": self.event_id,
            "disposition": self.disposition,
            "relation": self.relation,
            "subject": self.subject,
            "place": self.place,
            "region": self.region,
            "destinationRegion": self.destination_region,
            "facts": [{"label": k, "value": v} for k, v in self.facts],
            "quantities": self.quantities,
            "temperature": self.temperature,
            "results": self.results,
            "certificates": self.certificates,
            "withdrawn": self.withdrawn,
            "recordedBy": self.party.to_json(),
            "ledger": {
                "transaction": self.tx_id,
                "height": self.height,
                "logIndex": self.log_index,
                "receipt": f"/v1/transactions/{self.tx_id}/receipt",
            },
        }


@dataclass
class Journey:
    steps: list[Step]
    origins: list[dict[str, Any]]
    regions: list[str]  # everywhere the goods were recorded or shipped to
    truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "origins": self.origins,
            "regions": self.regions,
            "truncated": self.truncated,
            "steps": [s.to_json() for s in self.steps],
        }


def party_of(membership: Membership, fingerprint: str) -> Party:
    member = membership.member(fingerprint)
    if member is None:
        return Party("?", {"en": "unknown signer", "zh": "未知签名者"}, "?", fingerprint)
    org = membership.organizations.get(member.org)
    name = {"en": org.name, "zh": org.name_zh or org.name} if org else {"en": member.org}
    return Party(member.org, name, member.credential.common_name, fingerprint)


#: UN/CEFACT units of EPCIS quantities, as people write them.
UNITS = {"KGM": "kg", "GRM": "g", "TNE": "t", "HAR": "ha", "LTR": "L", "MTR": "m", "H87": ""}


def _amount(value: int | float) -> str:
    return f"{value:,}" if isinstance(value, int) or value.is_integer() else f"{value:g}"


def _quantities(event: dict[str, Any]) -> list[Text]:
    out: list[Text] = []
    for key in ("quantityList", "outputQuantityList", "childQuantityList"):
        for q in event.get(key) or ():
            if isinstance(q, dict) and isinstance(q.get("quantity"), int | float):
                amount = _amount(q["quantity"])
                unit = UNITS.get(str(q.get("uom", "H87")), str(q.get("uom", "")))
                out.append(
                    f"{amount} {unit}" if unit else {"en": f"{amount} units", "zh": f"{amount} 件"}
                )
    for key in ("epcList", "outputEPCList", "childEPCs"):
        count = len(event.get(key) or ())
        if count:
            out.append(
                {
                    "en": f"{count} unit{'s' * (count != 1)} with codes",
                    "zh": f"{count} 件（逐件赋码）",
                }
            )
    return out


def _temperature(event: dict[str, Any]) -> dict[str, Any] | None:
    for element in event.get("sensorElementList") or ():
        for report in element.get("sensorReport") or () if isinstance(element, dict) else ():
            if isinstance(report, dict) and report.get("type") in (
                "Temperature",
                "gs1:Temperature",
            ):
                return {
                    "min": report.get("minValue", report.get("value")),
                    "max": report.get("maxValue", report.get("value")),
                    "uom": report.get("uom", "CEL"),
                }
    return None


def _results(event: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for row in event.get(f"{PT}results") or ():
        if isinstance(row, dict):
            out.append(
                {
                    "test": text(row.get(f"{PT}test")),
                    "value": text(row.get(f"{PT}value")),
                    "limit": text(row.get(f"{PT}limit")),
                    "unit": text(row.get(f"{PT}unit")),
                    "result": row.get(f"{PT}result"),
                }
            )
    return out


def _certificates(event: dict[str, Any]) -> list[dict[str, Any]]:
    links = event.get("certificationInfo")
    links = [links] if isinstance(links, str) else [u for u in links or () if isinstance(u, str)]
    described = event.get(f"{PT}certificate")
    described = described if isinstance(described, list) else [described] if described else []
    out = []
    for i, cert in enumerate(d for d in described if isinstance(d, dict)):
        out.append(
            {
                "number": text(cert.get(f"{PT}number")),
                "name": text(cert.get(f"{PT}name")),
                "issuer": text(cert.get(f"{PT}issuer")),
                "url": links[i] if i < len(links) else None,
            }
        )
    for url in links[len(out) :]:
        out.append({"number": None, "name": None, "issuer": None, "url": url})
    return out


#: Extension and ILMD fields shown as facts of a step: (field, label key).
_FACTS = (
    ("pt:orchard", "fact.orchard"),
    ("pt:farm", "fact.farm"),
    ("pt:plot", "fact.plot"),
    ("pt:variety", "fact.variety"),
    ("pt:treeAge", "fact.tree_age"),
    ("pt:plantingDate", "fact.planting_date"),
    ("pt:harvestDate", "fact.harvest_date"),
    ("pt:grade", "fact.grade"),
    ("pt:process", "fact.process"),
    ("pt:standard", "fact.standard"),
    ("pt:line", "fact.line"),
    ("cbvmda:countryOfOrigin", "fact.country"),
)


def _facts(event: dict[str, Any]) -> list[tuple[str, Text]]:
    ilmd = event.get("ilmd") if isinstance(event.get("ilmd"), dict) else {}
    found = []
    for key, label in _FACTS:
        value = text(ilmd.get(key, event.get(key)))
        if value is not None:
            found.append((label, value))
    return found


def event_step(entry: dict[str, Any], signer: str, membership: Membership) -> Step:
    event = entry["event"]
    return Step(
        kind=kind_of(event),
        time=str(event.get("eventTime", "")),
        party=party_of(membership, signer),
        tx_id=entry["transaction"],
        height=entry["height"],
        log_index=entry["logIndex"],
        record_time=event.get("recordTime"),
        biz_step=_biz_step(event),
        event_type=event.get("type"),
        event_id=entry.get("eventID"),
        disposition=event.get("disposition"),
        relation=entry.get("relation", "self"),
        subject=entry.get("subject"),
        place=text(event.get(f"{PT}place")),
        region=event.get(f"{PT}region") if isinstance(event.get(f"{PT}region"), str) else None,
        destination_region=event.get(f"{PT}destinationRegion")
        if isinstance(event.get(f"{PT}destinationRegion"), str)
        else None,
        facts=_facts(event),
        quantities=_quantities(event),
        temperature=_temperature(event),
        results=_results(event),
        certificates=_certificates(event),
        withdrawn=_withdrawn(entry.get("withdrawn"), membership),
    )


def _withdrawn(marked: dict[str, Any] | None, membership: Membership) -> dict[str, Any] | None:
    """The history's `withdrawn` marker as the journey keeps it: who declared it, and a
    copy of the corrective events (the history is shared; the journey numbers them)."""
    if marked is None:
        return None
    return {
        **marked,
        "declaredBy": party_of(membership, marked["signer"]).to_json(),
        "correctiveEvents": [dict(c) for c in marked["correctiveEvents"]],
    }


def _link_corrections(steps: list[Step]) -> None:
    """Point each withdrawn step's corrective events at their steps in this journey."""
    place = {s.event_id: n for n, s in enumerate(steps, 1) if s.event_id}
    for step in steps:
        for corrective in step.withdrawn["correctiveEvents"] if step.withdrawn else ():
            corrective["step"] = place.get(corrective["eventID"])


def batch_step(recorded: RecordedBatch, store: Store, membership: Membership) -> Step:
    header = store.header(recorded.height)
    batch = recorded.batch
    return Step(
        kind="codes",
        time=recorded.stored.tx.timestamp,
        party=party_of(membership, recorded.signer),
        tx_id=recorded.tx_id,
        height=recorded.height,
        log_index=recorded.stored.log_index,
        record_time=header.time if header else None,
        facts=[("fact.codes_issued", f"{batch.count:,}")],
    )


def _origin(step: Step, event_facts: dict[str, Text]) -> dict[str, Any]:
    return {
        "place": step.place,
        "region": step.region,
        "site": event_facts.get("fact.orchard") or event_facts.get("fact.farm"),
        "plot": event_facts.get("fact.plot"),
        "variety": event_facts.get("fact.variety"),
        "country": event_facts.get("fact.country"),
        "since": step.time,
    }


def build_journey(
    index: EventIndex,
    store: Store,
    membership: Membership,
    identifiers: Iterable[str],
    batches: Iterable[RecordedBatch] = (),
) -> Journey | None:
    """The merged journey of `identifiers` (an item and its lot, say), or None when the
    ledger records nothing about any of them."""
    entries: dict[int, dict[str, Any]] = {}
    truncated = False
    for identifier in identifiers:
        history = product_history(index, identifier)
        if history is None:
            continue
        truncated = truncated or history["truncated"]
        for entry in history["events"]:
            entries.setdefault(entry["logIndex"], entry)
    signers = {e.log_index: e.signer for e in index.by_log_index(entries)}
    events = [event_step(e, signers.get(i, ""), membership) for i, e in entries.items()]
    steps = in_order(events, [batch_step(b, store, membership) for b in batches])
    if not steps:
        return None
    _link_corrections(steps)
    origins = []
    standing = [s for s in steps if s.withdrawn is None]
    for step in standing:
        if step.kind == "origin":
            origins.append(_origin(step, dict(step.facts)))
    regions: list[str] = []
    for step in standing:
        for region in (step.region, step.destination_region):
            if region and region.upper() not in regions:
                regions.append(region.upper())
    return Journey(steps, origins, regions, truncated)


def in_order(events: list[Step], batches: list[Step]) -> list[Step]:
    """Steps in the order they happened. Events by their business time; a batch of codes
    has none (its transaction time is when it was signed, which may be long after the
    goods were coded), so it goes where the ledger recorded it: before the first event
    recorded after it."""
    ordered = sorted(events, key=lambda s: (_sort_time(s.time), s.log_index))
    for batch in sorted(batches, key=lambda s: s.log_index):
        later = (
            i for i, s in enumerate(ordered) if s.kind != "codes" and s.log_index > batch.log_index
        )
        ordered.insert(next(later, len(ordered)), batch)
    return ordered


def _sort_time(value: str) -> str:
    """RFC 3339 times as comparable UTC strings (offsets differ between steps)."""
    moment = parse_timestamp(value)
    return value if moment is None else moment.astimezone(UTC).isoformat()
