"""CBV 2.0 vocabularies: one spelling per value.

Standard values are written as bare words ('shipping', 'in_transit'), exactly as the
EPCIS 2.0 JSON binding and the official schema list them; custom values as full URIs.
The official schema accepts a GS1 web URI of a standard value
('https://ref.gs1.org/cbv/BizStep-shipping') as if it were a custom URI, and any
string that looks like a URI, so two spellings of one step would be recorded and a
query for one would miss the other. These checks close that gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from traceability.epcis.context import STANDARD_PREFIXES, Context
from traceability.epcis.problems import Problem
from traceability.epcis.schema import cbv_words

#: Where GS1 publishes CBV values; any URI under these roots is a GS1 value, not custom.
GS1_ROOTS = (
    "https://ref.gs1.org/cbv/",
    "http://ref.gs1.org/cbv/",
    "https://gs1.org/voc/",
    "http://gs1.org/voc/",
    "https://www.gs1.org/voc/",
    "https://ns.gs1.org/cbv/",
    "http://ns.gs1.org/cbv/",
    "urn:epcglobal:cbv:",
)


@dataclass(frozen=True)
class Vocabulary:
    name: str  # as people say it: "business step"
    schema_definition: str  # where the official schema lists the words
    urn: str  # the CBV 1.x URN prefix
    web: str  # the CBV 2.0 web-vocabulary term prefix ("BizStep-")
    full_uri_for_custom: bool  # custom values must be full URIs, not compact ones

    @property
    def words(self) -> frozenset[str]:
        return cbv_words(self.schema_definition)


BIZ_STEP = Vocabulary("business step", "bizStep", "urn:epcglobal:cbv:bizstep:", "BizStep-", True)
DISPOSITION = Vocabulary("disposition", "disposition", "urn:epcglobal:cbv:disp:", "Disp-", True)
BIZ_TRANSACTION_TYPE = Vocabulary(
    "business transaction type", "bizTransaction-type", "urn:epcglobal:cbv:btt:", "BTT-", False
)
SOURCE_DEST_TYPE = Vocabulary(
    "source/destination type", "source-dest-type", "urn:epcglobal:cbv:sdt:", "SDT-", False
)
ERROR_REASON = Vocabulary("error reason", "error-reason", "urn:epcglobal:cbv:er:", "ER-", False)


@cache
def _gs1_prefixes(vocab: Vocabulary) -> tuple[str, ...]:
    return (vocab.urn, *(root + vocab.web for root in GS1_ROOTS if root.startswith("http")))


def gs1_word(value: str, vocab: Vocabulary) -> str | None:
    """The bare word a GS1 spelling stands for ('urn:epcglobal:cbv:bizstep:x' -> 'x')."""
    for prefix in _gs1_prefixes(vocab):
        if value.startswith(prefix) and len(value) > len(prefix):
            return value[len(prefix) :]
    return None


def normalize(value: str, vocab: Vocabulary) -> str:
    """One spelling for queries: GS1 URN or web URI of a standard value -> its bare word."""
    word = gs1_word(value, vocab)
    return word if word is not None and word in vocab.words else value


def check_value(value: object, vocab: Vocabulary, path: str, context: Context) -> Problem | None:
    """Why `value` is not an acceptable spelling of a `vocab` value, or None."""
    if not isinstance(value, str) or value in vocab.words:
        return None  # the schema reports wrong types
    word = gs1_word(value, vocab)
    if word is not None and word in vocab.words:
        return Problem(
            path,
            "cbv-bare-word",
            f"write the CBV 2.0 {vocab.name} as the bare word {word!r}, not as {value!r}",
        )
    if word is not None or value.startswith(GS1_ROOTS):
        return Problem(path, "cbv-vocabulary", f"{value!r} is not a CBV 2.0 {vocab.name}")
    scheme, sep, _ = value.partition(":")
    if not sep:
        return Problem(
            path,
            "cbv-vocabulary",
            f"{value!r} is not a CBV 2.0 {vocab.name}; custom values are full URIs "
            "such as 'https://ns.example.com/steps/grading'",
        )
    if vocab.full_uri_for_custom and (scheme in context.prefixes or scheme in STANDARD_PREFIXES):
        expanded = context.expand(value)
        hint = f" ({expanded!r})" if expanded else ""
        return Problem(
            path,
            "custom-full-uri",
            f"custom {vocab.name} {value!r} is a compact IRI; write the full URI{hint}",
        )
    return None
