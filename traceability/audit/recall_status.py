"""Is this unit recalled? What the consumer page (api/routes/resolver.py) asks for the
code it resolves, answered from the ledger's own recall index (ledger.recall), so the
banner and the chain's refusals can never disagree.

    info = recall_for(svc, link.instance_id, link.lot_id)   # Services or a NodeCore
    if info: show info.message(lang)

Identifiers are looked up as given and in GS1 canonical form, so an EPC URN finds a
recall named with a Digital Link and the reverse.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from traceability.epcis.index import canonical_identifier
from traceability.recall import Recall, RecallIndex

_cache_lock = threading.Lock()
_cache: tuple[RecallIndex, dict[str, str]] | None = None

_TEXT = {
    "en": (
        "RECALLED. This product is withdrawn by {regulator} (recall of {lot}, recorded in "
        "block {height}): {reason}. Do not use it; return it where you bought it."
    ),
    "zh": (
        "已召回。本产品已由{regulator}召回（批次 {lot}，记录于第 {height} 号区块）：{reason}。"
        "请勿使用，并退回购买处。"
    ),
}


@dataclass(frozen=True)
class RecallInfo:
    identifier: str  # the identifier that matched, as asked
    recall: Recall
    regulator: str  # organisation id of the signer
    regulator_name: dict[str, str]  # {"en": …, "zh": …}
    time: str | None  # block time of the recall

    def message(self, lang: str = "en") -> str:
        """The banner's sentence in `lang` (zh or en)."""
        template = _TEXT.get(lang, _TEXT["en"])
        name = self.regulator_name.get(lang) or self.regulator_name.get("en") or self.regulator
        return template.format(
            regulator=name,
            lot=self.recall.lot,
            height=self.recall.height,
            reason=self.recall.reason,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "recalled": True,
            "identifier": self.identifier,
            **self.recall.to_json(),
            "regulator": self.regulator,
            "regulatorName": self.regulator_name,
            "time": self.time,
            "message": {"en": self.message("en"), "zh": self.message("zh")},
        }


def _canonical_map(index: RecallIndex) -> dict[str, str]:
    """canonical identifier -> recall id, computed once per recall index value."""
    global _cache
    with _cache_lock:
        if _cache is not None and _cache[0] is index:
            return _cache[1]
    mapping: dict[str, str] = {}
    for identifier, recall_id in index.affected.items():
        mapping.setdefault(canonical_identifier(identifier), recall_id)
    with _cache_lock:
        _cache = (index, mapping)
    return mapping


def recall_for(source: Any, *identifiers: str | None) -> RecallInfo | None:
    """The recall reaching any of `identifiers` (the first that matches), or None.

    `source`: the API's Services, or a NodeCore (anything with `.node` or `.rules`)."""
    node = getattr(source, "node", source)
    rules = getattr(node, "rules", None)
    index: RecallIndex | None = getattr(rules, "recalls", None)
    if index is None or not index.affected:
        return None
    canonical = None
    for identifier in identifiers:
        if not identifier:
            continue
        recall_id = index.affected.get(identifier)
        if recall_id is None:
            canonical = canonical if canonical is not None else _canonical_map(index)
            recall_id = canonical.get(canonical_identifier(identifier))
        if recall_id is not None:
            return _info(node, identifier, index.recalls[recall_id])
    return None


def _info(node: Any, identifier: str, recall: Recall) -> RecallInfo:
    member = node.membership.member(recall.signer)
    org_id = member.org if member else ""
    org = node.membership.organizations.get(org_id)
    names = {"en": org.name, "zh": org.name_zh or org.name} if org else {"en": org_id}
    header = node.store.header(recall.height)
    return RecallInfo(identifier, recall, org_id, names, header.time if header else None)
