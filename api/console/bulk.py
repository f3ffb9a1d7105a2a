"""A bulk sheet read for the console: the rows of a CSV in the format `parktrace import`
reads (traceability.epcis.csvformat), checked by the rules a capture goes through, and
handed back as events for the browser to sign one by one. Rows that cannot become a
valid event come back as refusals naming the line and the field, so a sheet is never
half recorded without the producer being told which rows were not."""

from __future__ import annotations

import io
import re
from typing import Any

from traceability.epcis.csvformat import read_csv
from traceability.epcis.document import check_document
from traceability.epcis.records import payload_for

#: Extensions the park's sheets use without declaring them (the console's forms' too).
NAMESPACES = {"pt": "https://ns.parktrace.example/epcis/"}
MAX_ROWS = 5000
_REQUIRED = re.compile(r'^"([^"]+)" is a required property')


def _field(path: str, event_path: str, message: str) -> str:
    """'quantityList[0].quantity' from 'epcisBody.eventList[3].quantityList[0].quantity';
    the missing property itself when the schema says one is required."""
    rest = (path[len(event_path) :] if path.startswith(event_path) else path).lstrip(".")
    missing = _REQUIRED.match(message)
    if missing:
        return f"{rest}.{missing[1]}" if rest else missing[1]
    return rest or "event"


def read_sheet(text: str) -> dict[str, Any]:
    events: list[dict[str, Any]] = []
    refusals: list[dict[str, Any]] = []
    total = 0
    for chunk in read_csv(io.StringIO(text.removeprefix("\ufeff")), NAMESPACES, chunk=500):
        for line, why in chunk.errors:
            column, _, message = why.partition(": ")
            refusals.append(
                {"line": line, "field": column if message else "", "error": "invalid_csv",
                 "message": message or why}
            )  # fmt: skip
        total += len(chunk.lines) + len(chunk.errors)
        if not chunk.lines:
            continue
        checked = check_document(chunk.document)
        for item in checked.events:
            events.append({"line": chunk.lines[item.index], "payload": payload_for(item.event)})
        for index, error in checked.rejected:
            where = checked.event_path(index)
            problem = error.problems[0]
            refusals.append(
                {
                    "line": chunk.lines[index],
                    "field": _field(problem.path, where, problem.message),
                    "error": error.code,
                    "message": problem.message,
                }
            )
        if total > MAX_ROWS:
            break
    events.sort(key=lambda e: e["line"])
    refusals.sort(key=lambda r: r["line"])
    return {"total": total, "events": events, "refusals": refusals}
