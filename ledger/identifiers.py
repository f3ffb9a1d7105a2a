"""Which product identifiers a transaction is about, for the store's lookup index, and
how the index keys them.

EPCIS 2.0 events name objects in several places (instances in epcList/childEPCs/
inputEPCList/outputEPCList, classes in the quantity lists, containers in parentID).
Lots are classes with a lot qualifier (e.g. urn:epc:class:lgtin:... or a Digital Link
URI with /10/), so indexing every identifier there is what makes trace and product
history queries index lookups instead of scans.

It runs after a block is decided, so it must never raise: the block rule admitted only
exact payload shapes, and anything else here (a list that is not a list) is skipped, not
trusted.

One thing has many spellings (GS1 Digital Link on any host, EPC URNs, …); which
spellings are one key is the domain's knowledge, not the chain's, so the store is given a
`ProductIndex` by the domain (traceability.identifiers) and records its name, and the
verifier checks the stored rows against that same index.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_EPC_LISTS = ("epcList", "childEPCs", "inputEPCList", "outputEPCList")
_QUANTITY_LISTS = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")
MAX_IDENTIFIER = 512


def _items(event: dict[str, Any], key: str) -> list[Any]:
    value = event.get(key)
    return value if isinstance(value, list) else []


def event_identifiers(event: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    parent = event.get("parentID")
    if isinstance(parent, str):
        found.add(parent)
    for key in _EPC_LISTS:
        for epc in _items(event, key):
            if isinstance(epc, str):
                found.add(epc)
    for key in _QUANTITY_LISTS:
        for item in _items(event, key):
            if isinstance(item, dict) and isinstance(item.get("epcClass"), str):
                found.add(item["epcClass"])
    return {i for i in found if 0 < len(i) <= MAX_IDENTIFIER}


def tx_identifiers(tx_type: str, payload: dict[str, Any]) -> set[str]:
    """Identifiers of any transaction type that names products."""
    found: set[str] = set()
    if not isinstance(payload, dict):
        return found
    event = payload.get("event")
    if isinstance(event, dict):
        found |= event_identifiers(event)
    for key in ("lot", "product", "epc"):
        value = payload.get(key)
        if isinstance(value, str) and 0 < len(value) <= MAX_IDENTIFIER:
            found.add(value)
    return found


@dataclass(frozen=True)
class ProductIndex:
    """How a store keys its product index: a name the store records (so a store keyed
    otherwise is re-keyed, once, when opened with this one) and the key of one identifier.
    `key` must be total and a function of its input: the verifier recomputes every row."""

    name: str
    key: Callable[[str], str]

    def identifiers(self, tx_type: str, payload: dict[str, Any]) -> set[str]:
        """The keys a transaction is indexed under."""
        keys = {self.key(i) for i in tx_identifiers(tx_type, payload)}
        return {k for k in keys if isinstance(k, str) and 0 < len(k) <= MAX_IDENTIFIER}


def _as_spelled(identifier: str) -> str:
    return identifier


#: Every spelling its own key: what a store without a domain index holds.
AS_SPELLED = ProductIndex("as-spelled", _as_spelled)
