"""The SimpleEventQuery parameters the index has no column for, judged on the event itself:
quantity comparisons, persistent dispositions, error declarations and sensor data.

The index narrows by its columns first (`traceability.epcis.query`); what is left is read
back as the recorded JSON and each predicate here looks at the fields the standard names
(EPCIS 2.0 §8.2.7.1). Every parameter takes '|'-separated values and matches when any
value does; comparisons take one value.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from typing import Any

from ledger.errors import SchemaError
from traceability.epcis import cbv
from traceability.epcis.context import STANDARD_PREFIXES
from traceability.epcis.rules import TIME_EXAMPLE, parse_timestamp


class QueryParameterError(SchemaError):
    """An EPCIS query parameter this node does not understand or a value it cannot use."""

    code = "invalid_query"


Predicate = Callable[[dict[str, Any]], bool]
_COMPARE = {"EQ": operator.eq, "GT": operator.gt, "GE": operator.ge, "LT": operator.lt}
_COMPARE["LE"] = operator.le
_QUANTITY_LISTS = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")
_GS1 = STANDARD_PREFIXES["gs1"]


def _dicts(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, list):
        yield from (v for v in value if isinstance(v, dict))


def _sensor_parts(event: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(sensorMetadata, sensorReport) of every report; an element without reports counts
    once with an empty report, so metadata filters still see it."""
    for element in _dicts(event.get("sensorElementList")):
        metadata = element.get("sensorMetadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        reports = list(_dicts(element.get("sensorReport"))) or [{}]
        for report in reports:
            yield metadata, report


def _expand_gs1(value: str) -> str:
    return _GS1 + value[4:] if value.startswith("gs1:") else value


def _number(name: str, values: list[str]) -> float:
    try:
        if len(values) != 1:
            raise ValueError
        return float(values[0])
    except ValueError:
        raise QueryParameterError(f"{name}: expected one number") from None


def _moment(name: str, values: list[str]) -> Any:
    moment = parse_timestamp(values[0]) if len(values) == 1 else None
    if moment is None:
        raise QueryParameterError(
            f"{name}: expected one RFC 3339 time with offset like {TIME_EXAMPLE}"
        )
    return moment


def _quantity(name: str, values: list[str]) -> Predicate:
    compare, bound = _COMPARE[name[:2]], _number(name, values)

    def check(event: dict[str, Any]) -> bool:
        for key in _QUANTITY_LISTS:
            for item in _dicts(event.get(key)):
                q = item.get("quantity")
                if isinstance(q, int | float) and not isinstance(q, bool) and compare(q, bound):
                    return True
        return False

    return check


def _persistent(which: str, values: list[str]) -> Predicate:
    wanted = {cbv.normalize(v, cbv.DISPOSITION) for v in values}

    def check(event: dict[str, Any]) -> bool:
        found = (event.get("persistentDisposition") or {}).get(which)
        return isinstance(found, list) and bool(
            {cbv.normalize(v, cbv.DISPOSITION) for v in found if isinstance(v, str)} & wanted
        )

    return check


def _declaration(event: dict[str, Any]) -> dict[str, Any]:
    found = event.get("errorDeclaration")
    return found if isinstance(found, dict) else {}


def _declaration_time(name: str, values: list[str]) -> Predicate:
    bound, later = _moment(name, values), name.startswith("GE_")

    def check(event: dict[str, Any]) -> bool:
        moment = parse_timestamp(_declaration(event).get("declarationTime"))
        return moment is not None and (moment >= bound if later else moment < bound)

    return check


def _error_reason(values: list[str]) -> Predicate:
    wanted = {cbv.normalize(v, cbv.ERROR_REASON) for v in values}

    def check(event: dict[str, Any]) -> bool:
        reason = _declaration(event).get("reason")
        return isinstance(reason, str) and cbv.normalize(reason, cbv.ERROR_REASON) in wanted

    return check


def _corrective(values: list[str]) -> Predicate:
    wanted = set(values)

    def check(event: dict[str, Any]) -> bool:
        ids = _declaration(event).get("correctiveEventIDs")
        return isinstance(ids, list) and bool(wanted & {i for i in ids if isinstance(i, str)})

    return check


def _sensor_time(name: str, values: list[str]) -> Predicate:
    field = "startTime" if "startTime" in name else "endTime"
    bound, later = _moment(name, values), name.startswith("GE_")

    def check(event: dict[str, Any]) -> bool:
        for metadata, report in _sensor_parts(event):
            for part in (report, metadata):
                moment = parse_timestamp(part.get(field))
                if moment is not None and (moment >= bound if later else moment < bound):
                    return True
        return False

    return check


#: Sensor fields by parameter, and where they are looked for (report, metadata).
_SENSOR_FIELDS = {
    "EQ_type": ("type", True, False),
    "EQ_deviceID": ("deviceID", True, True),
    "EQ_dataProcessingMethod": ("dataProcessingMethod", True, True),
    "EQ_microorganism": ("microorganism", True, False),
    "EQ_chemicalSubstance": ("chemicalSubstance", True, False),
    "EQ_bizRules": ("bizRules", False, True),
    "EQ_stringValue": ("stringValue", True, False),
    "EQ_hexBinaryValue": ("hexBinaryValue", True, False),
    "EQ_uriValue": ("uriValue", True, False),
}


def _sensor_value(name: str, values: list[str]) -> Predicate:
    field, in_report, in_metadata = _SENSOR_FIELDS[name]
    hexed = name == "EQ_hexBinaryValue"
    wanted = {_expand_gs1(v).upper() if hexed else _expand_gs1(v) for v in values}

    def check(event: dict[str, Any]) -> bool:
        for metadata, report in _sensor_parts(event):
            parts = ([report] if in_report else []) + ([metadata] if in_metadata else [])
            for part in parts:
                value = part.get(field)
                if isinstance(value, str):
                    value = _expand_gs1(value)
                    if (value.upper() if hexed else value) in wanted:
                        return True
        return False

    return check


def _boolean(values: list[str]) -> Predicate:
    if len(values) != 1 or values[0] not in ("true", "false"):
        raise QueryParameterError("EQ_booleanValue: expected true or false")
    wanted = values[0] == "true"

    def check(event: dict[str, Any]) -> bool:
        return any(report.get("booleanValue") is wanted for _, report in _sensor_parts(event))

    return check


def _make(name: str, values: list[str]) -> Predicate:
    if name.endswith("_quantity"):
        return _quantity(name, values)
    if name.startswith("EQ_persistentDisposition_"):
        return _persistent(name.rsplit("_", 1)[1], values)
    if name.endswith("_errorDeclarationTime"):
        return _declaration_time(name, values)
    if name == "EQ_errorReason":
        return _error_reason(values)
    if name == "EQ_correctiveEventID":
        return _corrective(values)
    if name in ("GE_startTime", "LT_startTime", "GE_endTime", "LT_endTime"):
        return _sensor_time(name, values)
    if name == "EQ_booleanValue":
        return _boolean(values)
    return _sensor_value(name, values)


EVENT_FILTERS = (
    *(f"{op}_quantity" for op in ("EQ", "GT", "GE", "LT", "LE")),
    "EQ_persistentDisposition_set",
    "EQ_persistentDisposition_unset",
    "GE_errorDeclarationTime",
    "LT_errorDeclarationTime",
    "EQ_errorReason",
    "EQ_correctiveEventID",
    "GE_startTime",
    "LT_startTime",
    "GE_endTime",
    "LT_endTime",
    *_SENSOR_FIELDS,
    "EQ_booleanValue",
)


def predicate(filters: dict[str, list[str]]) -> Predicate | None:
    """One test for every event-level filter among `filters` (None: there is none).
    Building it checks every value, so a bad one is refused before anything runs."""
    tests = [_make(name, values) for name, values in filters.items() if name in EVENT_FILTERS]
    if not tests:
        return None
    return lambda event: all(test(event) for test in tests)
