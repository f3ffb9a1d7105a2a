"""EPCIS 2.0 validation, event hash IDs, CSV conversion and query parameters, without HTTP."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.errors import EncodingError, TooLargeError
from tests.testdata import EPCIS_EXAMPLE_FILES, EPCIS_EXAMPLES
from traceability.epcis.context import STANDARD_CONTEXTS
from traceability.epcis.csvformat import CsvFormatError, read_csv
from traceability.epcis.document import check_document, parse_json
from traceability.epcis.hashid import assign_event_ids, event_hash_ids
from traceability.epcis.problems import EpcisValidationError
from traceability.epcis.query import EventQuery, QueryParameterError
from traceability.epcis.records import check_payload, event_id_of

BASE = EPCIS_EXAMPLES / "Example_9.6.1-ObjectEvent.jsonld"


def load(path: Path) -> dict:
    return parse_json(path.read_bytes())


def first_problem(doc: dict) -> tuple[str, str, str]:
    """(field, rule, message) of the first problem, document- or event-level."""
    try:
        checked = check_document(doc)
    except EpcisValidationError as exc:
        p = exc.problems[0]
        return p.path, p.rule, p.message
    assert checked.rejected, "expected a problem"
    p = checked.rejected[0][1].problems[0]
    return p.path, p.rule, p.message


def mutated(change: Callable[[dict, dict], object]) -> dict:
    doc = copy.deepcopy(load(BASE))
    change(doc, doc["epcisBody"]["eventList"][0])
    return doc


def _example_id(path: Path) -> str:
    return str(path.relative_to(EPCIS_EXAMPLES))


@pytest.mark.parametrize("path", EPCIS_EXAMPLE_FILES, ids=_example_id)
def test_every_official_example_is_valid(path: Path) -> None:
    checked = check_document(load(path))
    assert not checked.rejected, [str(e) for _, e in checked.rejected]
    for event in checked.events:
        # The recorded form is self-contained and passes the ledger's own check.
        assert check_payload({"event": event.event}) == event.event
        assert event_id_of(event.event) == event.event["eventID"]
        assert "recordTime" not in event.event


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        (lambda d, e: e.update(bizStep="shippng"), "bizStep", "cbv-vocabulary"),
        (
            lambda d, e: e.update(bizStep="urn:epcglobal:cbv:bizstep:shipping"),
            "bizStep",
            "cbv-bare-word",
        ),
        (
            lambda d, e: e.update(disposition="https://ref.gs1.org/cbv/Disp-in_transit"),
            "disposition",
            "cbv-bare-word",
        ),
        (lambda d, e: e.update(bizStep="example:grading"), "bizStep", "custom-full-uri"),
        (
            lambda d, e: e.update(eventTime="2005-04-03T20:33:31.116"),
            "eventTime",
            "timestamp-offset",
        ),
        (lambda d, e: e.update(eventTime="2005-02-30T20:33:31Z"), "eventTime", "timestamp-offset"),
        (lambda d, e: e.update({"foo:bar": 1}), "foo:bar", "namespaced-extension"),
        (lambda d, e: e.update({"bar": 1}), "bar", "namespaced-extension"),
        (lambda d, e: e.update({"example:x": {"y": 1}}), "example:x.y", "namespaced-extension"),
        (lambda d, e: e["readPoint"].update(z=1), "readPoint.z", "namespaced-extension"),
        (lambda d, e: e.pop("action"), "eventList[0]", "schema:required"),
        (lambda d, e: e.update(action="OBSERVED"), "action", "schema:enum"),
        (lambda d, e: e.update(epcList=["not a uri"]), "epcList[0]", "schema:format"),
        (lambda d, e: e.update(type="https://example.com/MyEvent"), "type", "event-type"),
        (
            lambda d, e: e.update(
                type="AggregationEvent", childEPCs=e.pop("epcList"), action="ADD"
            ),
            "parentID",
            "mandatory-field",
        ),
        (
            lambda d, e: e.update(
                sensorElementList=[
                    {
                        "sensorMetadata": {
                            "startTime": "2020-01-02T00:00:00Z",
                            "endTime": "2020-01-01T00:00:00Z",
                        },
                        "sensorReport": [{"type": "Temperature", "value": 4, "uom": "CEL"}],
                    }
                ]
            ),
            "sensorMetadata.endTime",
            "time-order",
        ),
        (
            lambda d, e: d["@context"].append("https://evil.example/c.jsonld"),
            "@context[2]",
            "no-remote-context",
        ),
        (lambda d, e: d.update({"@context": [{"x": "https://x/"}]}), "@context", "epcis-context"),
        (lambda d, e: d.update(type="Document"), "type", "document-type"),
        (lambda d, e: d["epcisBody"].update(eventList=[]), "eventList", "no-events"),
    ],
)
def test_invalid_documents_name_the_field_and_rule(
    change: Callable[[dict, dict], object], field: str, rule: str
) -> None:
    path, got_rule, message = first_problem(mutated(change))
    assert path.endswith(field), (path, message)
    assert got_rule == rule, message
    assert message


def test_one_bad_event_does_not_hide_the_good_ones() -> None:
    doc = mutated(lambda d, e: d["epcisBody"]["eventList"].append(dict(e, bizStep="x y")))
    checked = check_document(doc)
    assert [e.index for e in checked.events] == [0, 1]
    assert [i for i, _ in checked.rejected] == [2]
    assert checked.rejected[0][1].field == "epcisBody.eventList[2].bizStep"


def test_json_errors_are_typed() -> None:
    with pytest.raises(EncodingError, match="not valid JSON"):
        parse_json(b"{nope")
    with pytest.raises(EncodingError, match="appears twice"):
        parse_json(b'{"a": 1, "a": 2}', unique_keys=True)
    assert parse_json(b'{"a": 1, "a": 2}') == {"a": 2}  # GS1's own example repeats a key
    with pytest.raises(EpcisValidationError, match="expected a JSON object"):
        check_document([])
    doc = load(BASE)
    doc["epcisBody"]["eventList"] *= 6
    with pytest.raises(TooLargeError, match="at most 10"):
        check_document(doc, max_events=10)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b'{"a": 1e400}', "too large for JSON"),
        (b'{"a": 123456789012345678901234567890}', "beyond what JSON numbers carry"),
        (b'{"a": "\\ud800"}', "lone surrogate"),
        (b"[" * 70 + b"]" * 70, "nested deeper than 64"),
    ],
)
def test_values_canonical_json_cannot_carry_are_refused(raw: bytes, words: str) -> None:
    """They would pass the schema and then fail to be signed; refuse them up front."""
    with pytest.raises(EncodingError, match=words):
        parse_json(raw)


def test_hash_ids_are_gs1s_and_deterministic() -> None:
    doc = load(BASE)
    events = doc["epcisBody"]["eventList"]
    first = event_hash_ids(doc["@context"], events)
    # Hashing an unrelated document in between must not change the result (the reference
    # implementation keeps prefixes in a global; we clear it).
    other = load(EPCIS_EXAMPLES / "WithSensorData" / "SensorDataExample10.jsonld")
    event_hash_ids(other["@context"], other["epcisBody"]["eventList"])
    assert event_hash_ids(doc["@context"], events) == first
    assert all(h.startswith("ni:///sha-256;") and h.endswith("?ver=CBV2.0") for h in first)
    # eventID and recordTime do not take part; the event content does.
    changed = [dict(events[0], eventID="urn:uuid:1", recordTime="2030-01-01T00:00:00Z")]
    assert event_hash_ids(doc["@context"], changed) == first[:1]
    assert event_hash_ids(doc["@context"], [dict(events[0], action="ADD")]) != first[:1]


def test_events_the_reference_code_cannot_hash_get_a_stable_fallback_id() -> None:
    doc = load(EPCIS_EXAMPLES / "Example-TransactionEvents-2020_07_03y.jsonld")
    event = doc["epcisBody"]["eventList"][0]  # a bizTransaction without a type
    ids = assign_event_ids(doc["@context"], [event])
    assert ids[0].startswith("urn:uuid:")
    assert assign_event_ids(doc["@context"], [copy.deepcopy(event)]) == ids


def test_ledger_events_are_self_contained() -> None:
    event = check_document(load(BASE)).events[0].event
    with pytest.raises(EpcisValidationError, match="exactly"):
        check_payload({"event": event, "extra": 1})
    bare = {k: v for k, v in event.items() if k != "@context"}
    with pytest.raises(EpcisValidationError) as info:
        check_payload({"event": bare})
    assert info.value.rule == "self-contained-event"
    with pytest.raises(EpcisValidationError) as info:
        check_payload({"event": dict(event, recordTime="2026-01-01T00:00:00Z")})
    assert info.value.rule == "record-time"


CSV = """eventTime,action,bizStep,disposition,readPoint,epcList,quantityList,ex:batch,ilmd.ex:lot
2026-11-20T08:00:00+08:00,ADD,commissioning,active,urn:epc:id:sgln:0690789.00001.0,urn:epc:id:sgtin:0690789.000003.1 urn:epc:id:sgtin:0690789.000003.2,,B1,L1
2026-11-20T08:01:00Z,OBSERVE,shipping,,,,urn:epc:class:lgtin:0690789.000003.L1;20;KGM,B1,
2026-11-20T08:02:00+08:00,ADD,commissioning,,,,urn:epc:class:lgtin:x;many,,
"""  # noqa: E501


def test_csv_rows_become_events_and_bad_rows_name_their_line() -> None:
    chunks = list(read_csv(io.StringIO(CSV), {"ex": "https://ns.parktrace.example/ex/"}))
    assert len(chunks) == 1
    chunk = chunks[0]
    assert chunk.lines == [2, 3]
    assert chunk.errors == [(4, "quantityList: quantity 'many' is not a number")]
    first, second = chunk.document["epcisBody"]["eventList"]
    assert first["type"] == "ObjectEvent" and first["eventTimeZoneOffset"] == "+08:00"
    assert first["epcList"] == [
        "urn:epc:id:sgtin:0690789.000003.1",
        "urn:epc:id:sgtin:0690789.000003.2",
    ]
    assert first["ilmd"] == {"ex:lot": "L1"} and first["ex:batch"] == "B1"
    assert second["quantityList"] == [
        {"epcClass": "urn:epc:class:lgtin:0690789.000003.L1", "quantity": 20, "uom": "KGM"}
    ]
    assert second["eventTimeZoneOffset"] == "+00:00"
    checked = check_document(chunk.document)
    assert len(checked.events) == 2 and not checked.rejected


def test_csv_header_problems_stop_the_import() -> None:
    with pytest.raises(CsvFormatError, match="column 'colour'"):
        list(read_csv(io.StringIO("eventTime,colour\n"), {}))
    with pytest.raises(CsvFormatError, match="no eventTime"):
        list(read_csv(io.StringIO("action\nADD\n"), {}))


def test_query_parameters_are_checked_before_anything_runs() -> None:
    query = EventQuery.from_params({"EQ_bizStep": "shipping|urn:epcglobal:cbv:bizstep:receiving"})
    assert query.filters["EQ_bizStep"] == ["shipping", "urn:epcglobal:cbv:bizstep:receiving"]
    for params, message in (
        ({"EQ_bizstep": "x"}, "'EQ_bizstep' is not supported"),
        ({"GE_eventTime": "yesterday"}, "GE_eventTime: expected one RFC 3339"),
        ({"eventType": "Thing"}, "'Thing' is not an EPCIS event type"),
        ({"perPage": "0"}, "perPage"),
        ({"nextPageToken": "garbage!"}, "not a page token of this ledger"),
        ({"GE_quantity": "many"}, "GE_quantity: expected one number"),
        ({"EQ_booleanValue": "yes"}, "EQ_booleanValue: expected true or false"),
        ({"maxEventCount": "0"}, "maxEventCount: expected one whole number"),
        ({"EQ_action": "ADD||OBSERVE"}, "separated by '|'"),
    ):
        with pytest.raises(QueryParameterError, match=message):
            EventQuery.from_params(params)


def test_schema_file_is_packaged() -> None:
    from traceability.epcis.schema import official_schema

    shipped = json.loads(
        (Path(__file__).parent.parent / "traceability/epcis/EPCIS-JSON-Schema.json").read_text()
    )
    assert official_schema() == shipped
    assert "bizStep" in official_schema()["definitions"]


def _with_context(value: object, url: str) -> object:
    """`value` with every standard context URL in it replaced by `url`."""
    if isinstance(value, list):
        return [_with_context(v, url) for v in value]
    return url if value in STANDARD_CONTEXTS else value


@pytest.mark.parametrize("url", STANDARD_CONTEXTS)
@pytest.mark.parametrize("path", EPCIS_EXAMPLE_FILES, ids=_example_id)
def test_every_official_example_is_valid_under_each_url_gs1_publishes_the_context_at(
    path: Path, url: str
) -> None:
    doc = load(path)
    doc["@context"] = _with_context(doc["@context"], url)
    assert url in json.dumps(doc["@context"])
    checked = check_document(doc)
    assert not checked.rejected, [str(e) for _, e in checked.rejected]
    assert checked.events


def test_an_event_without_id_gets_the_same_hash_id_whichever_url_names_the_context() -> None:
    ids = set()
    for url in STANDARD_CONTEXTS:
        doc = load(BASE)
        doc["@context"] = _with_context(doc["@context"], url)
        del doc["epcisBody"]["eventList"][0]["eventID"]
        ids.add(check_document(doc).events[0].event["eventID"])
    assert len(ids) == 1 and next(iter(ids)).startswith("ni:///sha-256;"), ids


def test_a_context_gs1_does_not_publish_is_still_refused() -> None:
    doc = load(BASE)
    doc["@context"] = ["https://example.com/epcis-context.jsonld"]
    assert first_problem(doc)[1] == "no-remote-context"
