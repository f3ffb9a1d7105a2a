"""Bulk loads from CSV: one EPCIS event per row, for producers whose systems export
spreadsheets rather than EPCIS documents.

The header row names EPCIS fields; empty cells are absent fields.

  type                 ObjectEvent (the default), AggregationEvent, TransformationEvent,
                       AssociationEvent or TransactionEvent
  eventTime            RFC 3339 with offset: 2026-11-22T08:30:00+08:00
  eventTimeZoneOffset  defaults to eventTime's offset
  eventID, action, bizStep, disposition, readPoint, bizLocation, parentID,
  transformationID     one value each
  epcList, childEPCs, inputEPCList, outputEPCList
                       identifiers separated by spaces
  quantityList, childQuantityList, inputQuantityList, outputQuantityList
                       items separated by spaces, each CLASS;QUANTITY[;UOM]
  bizTransactionList   items separated by spaces, each [TYPE;]URI
  sourceList, destinationList
                       items separated by spaces, each TYPE;URI
  prefix:name          an extension field (string value); declare the prefix with
                       --namespace prefix=URI
  ilmd.prefix:name     an ILMD field (string value)

Rows become the events of EPCIS documents (one per `chunk` rows) whose @context is the
EPCIS context plus the declared namespaces; those documents then go through exactly the
validation a captured document does, and errors name the CSV line.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from ledger.timefmt import now
from traceability.epcis.context import DEFAULT_CONTEXT

SINGLE = (
    "eventID",
    "eventTime",
    "eventTimeZoneOffset",
    "action",
    "bizStep",
    "disposition",
    "parentID",
    "transformationID",
)
LOCATIONS = ("readPoint", "bizLocation")
EPC_LISTS = ("epcList", "childEPCs", "inputEPCList", "outputEPCList")
QUANTITY_LISTS = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")
TYPED_LISTS = {"sourceList": "source", "destinationList": "destination"}
KNOWN = {"type", *SINGLE, *LOCATIONS, *EPC_LISTS, *QUANTITY_LISTS, "bizTransactionList"}
KNOWN |= set(TYPED_LISTS)
_EXTENSION = re.compile(r"^(ilmd\.)?[A-Za-z][\w.-]*:[^\s:]+$")
_OFFSET = re.compile(r"([+-]\d{2}:\d{2}|[Zz])$")


class CsvFormatError(ValueError):
    """The CSV cannot be read at all (header problems); row problems are per row."""


@dataclass
class CsvChunk:
    """EPCIS documents built from consecutive rows, and the rows that could not be."""

    document: dict[str, Any]
    lines: list[int]  # CSV line of each event of the document
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, message)


def _quantity(item: str, column: str) -> dict[str, Any]:
    parts = item.split(";")
    if not 2 <= len(parts) <= 3 or not parts[0]:
        raise ValueError(f"{column}: {item!r} is not CLASS;QUANTITY[;UOM]")
    try:
        number = float(parts[1])
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or abs(number) > 2**53:
        raise ValueError(f"{column}: quantity {parts[1]!r} is not a number")
    quantity: dict[str, Any] = {
        "epcClass": parts[0],
        "quantity": int(number) if number.is_integer() else number,
    }
    if len(parts) == 3 and parts[2]:
        quantity["uom"] = parts[2]
    return quantity


def _typed(item: str, column: str, key: str, type_required: bool) -> dict[str, str]:
    kind, sep, uri = item.rpartition(";")
    if type_required and not sep:
        raise ValueError(f"{column}: {item!r} is not TYPE;URI")
    entry = {key: uri}
    if kind:
        entry["type"] = kind
    return entry


def row_event(row: dict[str, str]) -> dict[str, Any]:
    """One CSV row as an EPCIS event (ValueError naming the column when it cannot be)."""
    cells = {k: (v or "").strip() for k, v in row.items() if k is not None}
    event: dict[str, Any] = {"type": cells.get("type") or "ObjectEvent"}
    for name in SINGLE:
        if cells.get(name):
            event[name] = cells[name]
    for name in LOCATIONS:
        if cells.get(name):
            event[name] = {"id": cells[name]}
    for name in EPC_LISTS:
        if cells.get(name):
            event[name] = cells[name].split()
    for name in QUANTITY_LISTS:
        if cells.get(name):
            event[name] = [_quantity(i, name) for i in cells[name].split()]
    if cells.get("bizTransactionList"):
        event["bizTransactionList"] = [
            _typed(i, "bizTransactionList", "bizTransaction", False)
            for i in cells["bizTransactionList"].split()
        ]
    for name, key in TYPED_LISTS.items():
        if cells.get(name):
            event[name] = [_typed(i, name, key, True) for i in cells[name].split()]
    for name, value in cells.items():
        if name in KNOWN or not value:
            continue
        if name.startswith("ilmd."):
            event.setdefault("ilmd", {})[name[5:]] = value
        else:
            event[name] = value
    if "eventTime" in event and "eventTimeZoneOffset" not in event:
        match = _OFFSET.search(event["eventTime"])
        if match:
            zone = match.group(1)
            event["eventTimeZoneOffset"] = "+00:00" if zone in "Zz" else zone
    return event


def check_header(fields: list[str] | None) -> list[str]:
    if not fields:
        raise CsvFormatError("the CSV has no header row naming EPCIS fields")
    unknown = [f for f in fields if f not in KNOWN and not _EXTENSION.match(f or "")]
    if unknown:
        raise CsvFormatError(
            f"column {unknown[0]!r} is neither an EPCIS field nor a namespaced extension "
            "(prefix:name, or ilmd.prefix:name)"
        )
    if "eventTime" not in fields:
        raise CsvFormatError("the CSV has no eventTime column")
    return fields


def read_csv(
    stream: IO[str], namespaces: dict[str, str], *, chunk: int = 1000
) -> Iterator[CsvChunk]:
    """EPCIS documents of up to `chunk` rows each, in file order."""
    reader = csv.DictReader(stream)
    check_header(reader.fieldnames)
    context: list[Any] = [DEFAULT_CONTEXT]
    if namespaces:
        context.append(dict(namespaces))
    current = _new_chunk(context)
    for row in reader:
        line = reader.line_num
        if None in row:
            current.errors.append((line, "the row has more cells than the header"))
            continue
        try:
            event = row_event(row)
        except ValueError as exc:
            current.errors.append((line, str(exc)))
            continue
        current.document["epcisBody"]["eventList"].append(event)
        current.lines.append(line)
        if len(current.lines) >= chunk:
            yield current
            current = _new_chunk(context)
    if current.lines or current.errors:
        yield current


def _new_chunk(context: list[Any]) -> CsvChunk:
    document = {
        "@context": context,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": now(),
        "epcisBody": {"eventList": []},
    }
    return CsvChunk(document, [])
