"""EPCIS 2.0 rules the JSON schema cannot express, checked after it.

* CBV vocabularies: bare words for standard bizStep / disposition values (and business
  transaction, source/destination and error-reason types), full URIs for custom ones;
* timestamps: RFC 3339 with an explicit offset, real calendar dates, a sensor
  interval that does not end before it starts;
* mandatory fields the schema leaves optional (an AggregationEvent that adds or
  deletes children names its parent);
* extensions: every field outside the standard is namespaced with a prefix that the
  @context declares (or is an absolute IRI), at any depth;
* GS1 keys: every GTIN, SSCC and GLN a Digital Link names (objects, parent, classes,
  locations, sources and destinations) has its check digit right
  (`traceability.identifiers.key_problem`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from traceability.epcis import cbv
from traceability.epcis.context import Context, is_namespaced
from traceability.epcis.problems import Problem, join_path
from traceability.identifiers import key_problem

EVENT_TYPES = (
    "ObjectEvent",
    "AggregationEvent",
    "TransformationEvent",
    "AssociationEvent",
    "TransactionEvent",
)
_COMMON = {
    "@context",
    "type",
    "eventTime",
    "recordTime",
    "eventTimeZoneOffset",
    "eventID",
    "certificationInfo",
    "errorDeclaration",
}
_WHERE_WHY = {"bizStep", "disposition", "readPoint", "bizLocation", "bizTransactionList"}
_SOURCE_SENSOR = {"sourceList", "destinationList", "sensorElementList"}
_CHILDREN = {"parentID", "childEPCs", "childQuantityList", "action"}
STANDARD_FIELDS: dict[str, frozenset[str]] = {
    "ObjectEvent": frozenset(
        _COMMON
        | _WHERE_WHY
        | _SOURCE_SENSOR
        | {"action", "epcList", "quantityList", "persistentDisposition", "ilmd"}
    ),
    "AggregationEvent": frozenset(_COMMON | _WHERE_WHY | _SOURCE_SENSOR | _CHILDREN),
    "AssociationEvent": frozenset(_COMMON | _WHERE_WHY | _SOURCE_SENSOR | _CHILDREN),
    "TransactionEvent": frozenset(
        _COMMON | _WHERE_WHY | _SOURCE_SENSOR | {"parentID", "epcList", "quantityList", "action"}
    ),
    "TransformationEvent": frozenset(
        _COMMON
        | _WHERE_WHY
        | _SOURCE_SENSOR
        | {
            "inputEPCList",
            "inputQuantityList",
            "outputEPCList",
            "outputQuantityList",
            "transformationID",
            "persistentDisposition",
            "ilmd",
        }
    ),
}
_LOCATION_FIELDS = frozenset({"id"})
_ERROR_FIELDS = frozenset({"declarationTime", "reason", "correctiveEventIDs"})
_SENSOR_ELEMENT_FIELDS = frozenset({"sensorMetadata", "sensorReport"})
_SENSOR_METADATA_FIELDS = frozenset(
    {
        "time",
        "deviceID",
        "deviceMetadata",
        "rawData",
        "startTime",
        "endTime",
        "dataProcessingMethod",
        "bizRules",
    }
)
_SENSOR_REPORT_FIELDS = frozenset(
    {
        "type",
        "exception",
        "deviceID",
        "deviceMetadata",
        "rawData",
        "dataProcessingMethod",
        "bizRules",
        "time",
        "microorganism",
        "chemicalSubstance",
        "coordinateReferenceSystem",
        "value",
        "component",
        "stringValue",
        "booleanValue",
        "hexBinaryValue",
        "uriValue",
        "minValue",
        "maxValue",
        "meanValue",
        "sDev",
        "percRank",
        "percValue",
        "uom",
    }
)
#: JSON-LD keywords allowed inside extension values (typed or language-tagged literals).
_JSONLD_KEYWORDS = frozenset({"@id", "@type", "@value", "@language", "@list", "@set"})

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)
TIME_EXAMPLE = "2026-11-22T08:30:00.000+08:00"


def parse_timestamp(value: Any) -> datetime | None:
    """An RFC 3339 date-time with an explicit offset, or None if `value` is not one."""
    match = _RFC3339.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    fraction = (match.group(7) or "")[:7]  # datetime keeps microseconds
    zone = match.group(8).upper().replace("Z", "+00:00")
    text = "{}-{}-{}T{}:{}:{}".format(*match.groups()[:6]) + fraction + zone
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    offset = moment.utcoffset()
    if offset is None or abs(offset.total_seconds()) > 14 * 3600:
        return None
    return moment


def _time(value: Any, path: str) -> Problem | None:
    if value is None or parse_timestamp(value) is not None:
        return None
    return Problem(
        path,
        "timestamp-offset",
        f"{value!r} is not an RFC 3339 date-time with an offset (e.g. {TIME_EXAMPLE!r})",
    )


def event_problems(
    event: Any, context: Context, path: str, *, ledger_form: bool = False
) -> list[Problem]:
    """What the schema does not catch about one event at `path`.

    `ledger_form`: the event as recorded in a transaction, which carries its own
    @context and no recordTime (the ledger's block time is the record time).
    """
    if not isinstance(event, dict):
        return []
    kind = event.get("type")
    if not isinstance(kind, str) or kind not in STANDARD_FIELDS:  # a list is unhashable
        return [
            Problem(
                join_path(path, "type"),
                "event-type",
                f"{kind!r} is not an EPCIS 2.0 event type ({', '.join(EVENT_TYPES)})",
            )
        ]
    problems = [p for p in _checks(event, kind, context, path) if p is not None]
    if ledger_form and "recordTime" in event:
        problems.append(
            Problem(
                join_path(path, "recordTime"),
                "record-time",
                "recordTime is set by the ledger (the time of the block); leave it out",
            )
        )
    return problems


def _checks(event: dict[str, Any], kind: str, ctx: Context, path: str) -> Iterator[Problem | None]:
    at = lambda *parts: join_path(path, *parts)  # noqa: E731 - local shorthand
    for key in ("eventTime", "recordTime"):
        yield _time(event.get(key), at(key))
    adds_or_deletes = event.get("action") in ("ADD", "DELETE")
    if kind == "AggregationEvent" and adds_or_deletes and "parentID" not in event:
        yield Problem(
            at("parentID"),
            "mandatory-field",
            f"an AggregationEvent with action {event['action']} names its parent (parentID)",
        )
    yield cbv.check_value(event.get("bizStep"), cbv.BIZ_STEP, at("bizStep"), ctx)
    yield cbv.check_value(event.get("disposition"), cbv.DISPOSITION, at("disposition"), ctx)
    persistent = event.get("persistentDisposition")
    if isinstance(persistent, dict):
        for key in ("set", "unset"):
            for i, value in enumerate(_list(persistent.get(key))):
                where = at("persistentDisposition", key, i)
                yield cbv.check_value(value, cbv.DISPOSITION, where, ctx)
    for i, item in enumerate(_list(event.get("bizTransactionList"))):
        if isinstance(item, dict):
            where = at("bizTransactionList", i, "type")
            yield cbv.check_value(item.get("type"), cbv.BIZ_TRANSACTION_TYPE, where, ctx)
    for key in ("sourceList", "destinationList"):
        for i, item in enumerate(_list(event.get(key))):
            if isinstance(item, dict):
                where = at(key, i, "type")
                yield cbv.check_value(item.get("type"), cbv.SOURCE_DEST_TYPE, where, ctx)
    error = event.get("errorDeclaration")
    if isinstance(error, dict):
        yield _time(error.get("declarationTime"), at("errorDeclaration", "declarationTime"))
        reason = error.get("reason")
        yield cbv.check_value(reason, cbv.ERROR_REASON, at("errorDeclaration", "reason"), ctx)
        yield from _extensions(error, _ERROR_FIELDS, ctx, at("errorDeclaration"))
        for i, corrective in enumerate(_list(error.get("correctiveEventIDs"))):
            if corrective is not None and corrective == event.get("eventID"):
                yield Problem(
                    at("errorDeclaration", "correctiveEventIDs", i),
                    "corrective-event",
                    "names the event being declared erroneous; a corrective event is a new "
                    "event with its own eventID",
                )
    for key in ("readPoint", "bizLocation"):
        value = event.get(key)
        if isinstance(value, dict):
            yield from _extensions(value, _LOCATION_FIELDS, ctx, at(key))
    ilmd = event.get("ilmd")
    if isinstance(ilmd, dict):
        yield from _extensions(ilmd, frozenset(), ctx, at("ilmd"))
    for i, element in enumerate(_list(event.get("sensorElementList"))):
        yield from _sensor_element(element, ctx, at("sensorElementList", i))
    yield from _extensions(event, STANDARD_FIELDS[kind], ctx, path)
    yield from _key_problems(event, path)


#: Where an event names objects, classes, parties and places, and the field of each entry
#: that holds the identifier (None: the entry is the identifier).
_NAMED: dict[str, str | None] = {
    "epcList": None,
    "childEPCs": None,
    "inputEPCList": None,
    "outputEPCList": None,
    "quantityList": "epcClass",
    "childQuantityList": "epcClass",
    "inputQuantityList": "epcClass",
    "outputQuantityList": "epcClass",
    "sourceList": "source",
    "destinationList": "destination",
}


def _key_problems(event: dict[str, Any], path: str) -> Iterator[Problem]:
    """A GTIN, SSCC or GLN with a wrong check digit, wherever the event names one."""
    named: list[tuple[str, Any]] = [(join_path(path, "parentID"), event.get("parentID"))]
    for key in ("readPoint", "bizLocation"):
        place = event.get(key)
        if isinstance(place, dict):
            named.append((join_path(path, key, "id"), place.get("id")))
    for key, inner in _NAMED.items():
        for i, item in enumerate(_list(event.get(key))):
            if inner is None:
                named.append((join_path(path, key, i), item))
            elif isinstance(item, dict):
                named.append((join_path(path, key, i, inner), item.get(inner)))
    for where, value in named:
        found = key_problem(value) if isinstance(value, str) else None
        if found is not None:
            yield Problem(where, *found)


def _sensor_element(element: Any, ctx: Context, path: str) -> Iterator[Problem | None]:
    if not isinstance(element, dict):
        return
    yield from _extensions(element, _SENSOR_ELEMENT_FIELDS, ctx, path)
    metadata = element.get("sensorMetadata")
    if isinstance(metadata, dict):
        where = join_path(path, "sensorMetadata")
        yield from _extensions(metadata, _SENSOR_METADATA_FIELDS, ctx, where)
        for key in ("time", "startTime", "endTime"):
            yield _time(metadata.get(key), join_path(where, key))
        start = parse_timestamp(metadata.get("startTime"))
        end = parse_timestamp(metadata.get("endTime"))
        if start is not None and end is not None and end < start:
            yield Problem(join_path(where, "endTime"), "time-order", "endTime is before startTime")
    for j, report in enumerate(_list(element.get("sensorReport"))):
        if isinstance(report, dict):
            where = join_path(path, "sensorReport", j)
            yield from _extensions(report, _SENSOR_REPORT_FIELDS, ctx, where)
            yield _time(report.get("time"), join_path(where, "time"))


def _extensions(
    obj: dict[str, Any], standard: frozenset[str], ctx: Context, path: str
) -> Iterator[Problem]:
    """Every key of `obj` outside `standard` is a namespaced extension, and so is every key
    of every object inside an extension's value."""
    for key, value in obj.items():
        if key in standard:
            continue
        where = join_path(path, key)
        why = is_namespaced(key, ctx)
        if why is not None:
            yield Problem(where, "namespaced-extension", f"field {key!r} {why}")
            continue
        yield from _nested(value, ctx, where)


def _nested(value: Any, ctx: Context, path: str) -> Iterator[Problem]:
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from _nested(item, ctx, join_path(path, i))
    elif isinstance(value, dict):
        for key, item in value.items():
            where = join_path(path, key)
            if key in _JSONLD_KEYWORDS:
                continue
            why = is_namespaced(key, ctx)
            if why is not None:
                yield Problem(where, "namespaced-extension", f"field {key!r} {why}")
            else:
                yield from _nested(item, ctx, where)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
