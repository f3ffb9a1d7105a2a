"""From an EPCIS document (EPCISDocument or EPCISQueryDocument, JSON or JSON-LD) to the
events the ledger records, each one checked on its own so that one bad event can be
reported without hiding the good ones.

A recorded event is self-contained: it carries the document's @context (so its
extension prefixes keep their meaning), its eventID (the GS1 event hash ID when the
producer gave none) and no recordTime (the block's time is the record time).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from ledger.errors import EncodingError, TooLargeError
from traceability.epcis.context import Context, is_namespaced, parse_context
from traceability.epcis.hashid import assign_event_ids
from traceability.epcis.problems import EpcisValidationError, Problem, join_path
from traceability.epcis.rules import event_problems
from traceability.epcis.schema import schema_problems

#: Largest document accepted in one capture (bytes) and most events in one.
MAX_DOCUMENT_BYTES = 32 * 1024 * 1024
MAX_DOCUMENT_EVENTS = 10_000
_HEADER_FIELDS = frozenset({"epcisMasterData"})
_DOCUMENT_FIELDS = frozenset(
    {
        "@context",
        "id",
        "type",
        "schemaVersion",
        "creationDate",
        "instanceIdentifier",
        "sender",
        "receiver",
        "epcisHeader",
        "epcisBody",
    }
)


@dataclass(frozen=True)
class LedgerEvent:
    """One event of a document, in the form a transaction records."""

    index: int  # position in the document's event list
    path: str  # e.g. "epcisBody.eventList[3]"
    event: dict[str, Any]
    generated_id: bool  # eventID is the computed GS1 hash


@dataclass
class CheckedDocument:
    kind: str
    events: list[LedgerEvent] = field(default_factory=list)
    rejected: list[tuple[int, EpcisValidationError]] = field(default_factory=list)
    #: where the events are in the document
    base: str = "epcisBody.eventList"

    @property
    def total(self) -> int:
        return len(self.events) + len(self.rejected)

    def event_path(self, index: int) -> str:
        """The path of event `index` ("epcisBody.eventList[3]")."""
        return join_path(self.base, index)


#: Deepest nesting accepted; EPCIS documents need a dozen levels, not hundreds.
MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_json(raw: bytes | str, what: str = "document", *, unique_keys: bool = False) -> Any:
    """Parse JSON that can be signed as it is: TooLargeError for oversized input,
    EncodingError for bad JSON, NaN or Infinity, lone surrogates, or nesting deeper than
    MAX_DEPTH. A repeated key keeps its last value, as most parsers do (GS1's own example
    AssociationEvent-h repeats eventID); `unique_keys` refuses it instead."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise TooLargeError(f"{what} is {len(raw)} bytes; the limit is {MAX_DOCUMENT_BYTES}")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in items:
            if key in result:
                raise EncodingError(f"{what}: key {key!r} appears twice in one object")
            result[key] = value
        return result

    def constant(name: str) -> Any:
        raise EncodingError(f"{what}: {name} is not a JSON number")

    try:
        data = json.loads(
            raw, object_pairs_hook=pairs if unique_keys else None, parse_constant=constant
        )
    except EncodingError:
        raise
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise EncodingError(f"{what} is not valid JSON: {exc}") from exc
    _check_values(data, what)
    return data


def _check_values(data: Any, what: str) -> None:
    """Refuse what canonical JSON (RFC 8785) cannot carry, before anything else sees it."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise EncodingError(f"{what}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                if _SURROGATE.search(key):
                    raise EncodingError(f"{what}: key {key!r} holds a lone surrogate")
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            if _SURROGATE.search(value):
                raise EncodingError(f"{what}: a string holds a lone surrogate ({value[:40]!r})")
        elif isinstance(value, float) and not math.isfinite(value):
            raise EncodingError(f"{what}: a number is too large for JSON ({value})")
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > _MAX_INT:
            raise EncodingError(
                f"{what}: integer {str(value)[:20]}… is beyond what JSON numbers carry exactly"
            )


_MAX_INT = 2**53 - 1


def _event_list(doc: dict[str, Any]) -> tuple[str, Any]:
    body = doc.get("epcisBody")
    if doc.get("type") == "EPCISQueryDocument":
        base = "epcisBody.queryResults.resultsBody.eventList"
        results = body.get("queryResults") if isinstance(body, dict) else None
        inner = results.get("resultsBody") if isinstance(results, dict) else None
        return base, inner.get("eventList") if isinstance(inner, dict) else None
    return "epcisBody.eventList", body.get("eventList") if isinstance(body, dict) else None


def check_document(doc: Any, *, max_events: int | None = MAX_DOCUMENT_EVENTS) -> CheckedDocument:
    """Check a parsed document; raise EpcisValidationError for problems of the document
    itself, and list each invalid event with its own problems."""
    if not isinstance(doc, dict):
        raise EpcisValidationError(
            [Problem("(document)", "schema:type", "expected a JSON object (an EPCISDocument)")]
        )
    _check_values(doc, "document")
    kind = doc.get("type")
    if kind not in ("EPCISDocument", "EPCISQueryDocument"):
        raise EpcisValidationError(
            [
                Problem(
                    "type",
                    "document-type",
                    f"expected 'EPCISDocument' or 'EPCISQueryDocument', got {kind!r}",
                )
            ]
        )
    base, events = _event_list(doc)
    envelope = _without_events(doc, events)
    problems = schema_problems(envelope)
    context, context_problems = parse_context(doc.get("@context"), "@context")
    if "@context" in doc:
        problems += context_problems
    problems += _document_extensions(doc, context)
    if not problems and (not isinstance(events, list) or not events):
        problems.append(Problem(base, "no-events", "the document holds no events to capture"))
    if isinstance(events, list) and max_events is not None and len(events) > max_events:
        raise TooLargeError(
            f"{base}: {len(events)} events; capture at most {max_events} per document"
        )
    if problems:
        raise EpcisValidationError(problems)
    assert isinstance(events, list)
    return _check_events(kind, context, base, events)


def _without_events(doc: dict[str, Any], events: Any) -> dict[str, Any]:
    """The document with an empty event list: events are validated one by one."""
    if not isinstance(events, list):
        return doc
    copy = json.loads(json.dumps(doc))
    _, inner = _event_list(copy)
    inner.clear()
    return copy


def _document_extensions(doc: dict[str, Any], context: Context) -> list[Problem]:
    problems = []
    for key in doc:
        if key not in _DOCUMENT_FIELDS and (why := is_namespaced(key, context)):
            problems.append(Problem(key, "namespaced-extension", f"field {key!r} {why}"))
    header = doc.get("epcisHeader")
    if isinstance(header, dict):
        for key in header:
            if key not in _HEADER_FIELDS and (why := is_namespaced(key, context)):
                where = join_path("epcisHeader", key)
                problems.append(Problem(where, "namespaced-extension", f"field {key!r} {why}"))
    return problems


def _check_events(kind: str, context: Context, base: str, events: list[Any]) -> CheckedDocument:
    checked = CheckedDocument(kind, base=base)
    valid: list[tuple[int, dict[str, Any], Context]] = []
    for i, event in enumerate(events):
        path = join_path(base, i)
        event_context = context
        problems = schema_problems(event, path, "EPCIS-Document-Event")
        if isinstance(event, dict) and "@context" in event:
            merged = _merge_context(context.value, event["@context"])
            event_context, more = parse_context(merged, join_path(path, "@context"))
            problems += [p for p in more if p.rule != "epcis-context"]
        problems = prefer_rules(problems, event_problems(event, event_context, path))
        if problems:
            checked.rejected.append((i, EpcisValidationError(problems)))
        else:
            valid.append((i, event, event_context))
    _assign_ids(checked, base, valid)
    return checked


def _merge_context(document: Any, event: Any) -> list[Any]:
    as_list = lambda v: v if isinstance(v, list) else [v]  # noqa: E731
    merged = []
    for entry in as_list(document) + as_list(event):
        if entry not in merged:
            merged.append(entry)
    return merged


def prefer_rules(schema: list[Problem], rules: list[Problem]) -> list[Problem]:
    """Where a rule and the schema complain about the same field, the rule's message is
    the more useful one (it says which spelling is expected)."""
    ruled = {p.path for p in rules}

    def covered(problem: Problem) -> bool:
        if problem.path in ruled:
            return True
        # "has a field that is not standard" is said better, per field, by the rules.
        inside = problem.path + "."
        return problem.rule == "schema:propertyNames" and any(r.startswith(inside) for r in ruled)

    return [p for p in schema if not covered(p)] + rules


def _assign_ids(
    checked: CheckedDocument, base: str, valid: list[tuple[int, dict[str, Any], Context]]
) -> None:
    """Give events without an eventID their GS1 hash ID (grouped by @context, one call of
    the reference implementation per group)."""
    missing: dict[str, list[tuple[int, dict[str, Any], Context]]] = {}
    for item in valid:
        if "eventID" not in item[1]:
            missing.setdefault(json.dumps(item[2].value, sort_keys=True), []).append(item)
    ids: dict[int, str] = {}
    for group in missing.values():
        hashes = assign_event_ids(group[0][2].value, [e for _, e, _ in group])
        ids.update({i: h for (i, _, _), h in zip(group, hashes, strict=True)})
    for i, event, ctx in valid:
        ledger_event = {k: v for k, v in event.items() if k not in ("recordTime", "@context")}
        ledger_event["@context"] = ctx.value
        generated = "eventID" not in event
        if generated:
            ledger_event["eventID"] = ids[i]
        checked.events.append(LedgerEvent(i, join_path(base, i), ledger_event, generated))
    checked.events.sort(key=lambda e: e.index)
    checked.rejected.sort(key=lambda r: r[0])
