"""JSON-LD `@context` of EPCIS documents: which contexts are accepted, which namespace
prefixes they declare.

Only the standard EPCIS 2.0 context may be named by URL (any URL GS1 publishes it at);
everything else is declared inline (`{"ex": "https://ns.example.com/"}`). A node never
fetches a context from the network: that would make validation depend on a third party's
server being up and unchanged, and let a document make the node issue requests of its
choosing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from traceability.epcis.problems import Problem, join_path

#: The EPCIS 2.0 standard context, by the URLs GS1 publishes it under: the versioned one,
#: GS1's hosted unversioned one (which other EPCIS 2.0 implementations name), and the
#: standard's repository. They are one context: naming any of them is naming the standard.
STANDARD_CONTEXTS = (
    "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
    "https://ref.gs1.org/standards/epcis/epcis-context.jsonld",
    "https://gs1.github.io/EPCIS/epcis-context.jsonld",
)
DEFAULT_CONTEXT = STANDARD_CONTEXTS[0]

#: Prefixes the standard context itself declares (EPCIS 2.0 epcis-context.jsonld).
STANDARD_PREFIXES = {
    "epcis": "https://ref.gs1.org/epcis/",
    "cbv": "https://ref.gs1.org/cbv/",
    "cbvmda": "urn:epcglobal:cbv:mda:",
    "gs1": "https://gs1.org/voc/",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "dcterms": "http://purl.org/dc/terms/",
}

#: URI schemes that make a key or value an absolute IRI rather than a compact one.
ABSOLUTE_SCHEMES = frozenset({"http", "https", "urn"})


@dataclass(frozen=True)
class Context:
    """What a document's @context says: its prefixes (standard ones included)."""

    value: Any
    prefixes: dict[str, str]

    def expand(self, compact: str) -> str | None:
        """'ex:foo' -> 'https://ns.example.com/foo' when 'ex' is declared, else None."""
        prefix, sep, rest = compact.partition(":")
        if not sep or prefix not in self.prefixes:
            return None
        return self.prefixes[prefix] + rest


def parse_context(value: Any, path: str = "@context") -> tuple[Context, list[Problem]]:
    """Read an @context; problems name the entry that is not acceptable."""
    problems: list[Problem] = []
    prefixes = dict(STANDARD_PREFIXES)
    entries = value if isinstance(value, list) else [value]
    standard = False
    for i, entry in enumerate(entries):
        where = join_path(path, i) if isinstance(value, list) else path
        if isinstance(entry, str):
            if entry in STANDARD_CONTEXTS:
                standard = True
            else:
                problems.append(
                    Problem(
                        where,
                        "no-remote-context",
                        f"remote context {entry!r} is not resolved by this ledger; name only the "
                        f"EPCIS 2.0 context ({DEFAULT_CONTEXT}) by URL and declare your "
                        'namespaces inline, e.g. {"ex": "https://ns.example.com/epcis/"}',
                    )
                )
        elif isinstance(entry, dict):
            for key, term in entry.items():
                if key.startswith("@"):
                    continue
                iri = term if isinstance(term, str) else None
                if isinstance(term, dict) and isinstance(term.get("@id"), str):
                    iri = term["@id"]
                if iri is not None and ":" not in key:
                    prefixes[key] = iri
        else:
            problems.append(
                Problem(where, "context-entry", "expected a context URL or an object of prefixes")
            )
    if not standard and not problems:
        problems.append(
            Problem(
                path,
                "epcis-context",
                f"the EPCIS 2.0 context {DEFAULT_CONTEXT!r} must be part of the @context",
            )
        )
    return Context(value, prefixes), problems


def is_namespaced(key: str, context: Context) -> str | None:
    """None if `key` is a valid extension name, else why not.

    An extension is a compact IRI with a declared prefix ('ex:temperature') or an
    absolute IRI ('https://ns.example.com/temperature').
    """
    prefix, sep, rest = key.partition(":")
    if not sep or not prefix or not rest:
        return "is not a standard field; extension fields are namespaced, like 'ex:" + key + "'"
    if prefix in ABSOLUTE_SCHEMES:
        if prefix != "urn" and not rest.startswith("//"):
            return "is not an absolute IRI"
        return None
    if prefix not in context.prefixes:
        return f"uses the namespace prefix {prefix!r}, which the @context does not declare"
    return None
