"""Is this unit recalled? What the consumer page (api/routes/resolver.py) asks for the
code it resolves, answered from the ledger's own recall index (ledger.recall), so the
banner and the chain's refusals can never disagree.

    info = recall_for(svc, link.instance_id, link.lot_id)   # Services or a NodeCore
    if info: show info.message(lang)

Identifiers are looked up by their canonical key, as the chain's rule compares them, so
an EPC URN finds a recall named with a Digital Link and the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from traceability.recall import Recall, RecallIndex

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


def recall_for(source: Any, *identifiers: str | None) -> RecallInfo | None:
    """The recall reaching any of `identifiers` (the first that matches), or None.

    `source`: the API's Services, or a NodeCore (anything with `.node` or `.rules`)."""
    node = getattr(source, "node", source)
    rules = getattr(node, "rules", None)
    index: RecallIndex | None = getattr(rules, "recalls", None)
    if index is None or not index.affected:
        return None
    for identifier in identifiers:
        recall = index.recall_of(identifier) if identifier else None
        if recall is not None:
            return _info(node, identifier, recall)
    return None


def _info(node: Any, identifier: str, recall: Recall) -> RecallInfo:
    member = node.membership.member(recall.signer)
    org_id = member.org if member else ""
    org = node.membership.organizations.get(org_id)
    names = {"en": org.name, "zh": org.name_zh or org.name} if org else {"en": org_id}
    header = node.store.header(recall.height)
    return RecallInfo(identifier, recall, org_id, names, header.time if header else None)
