"""The trust rules' state along the chain, and their part of judging one block.

`TrustState` is an immutable value like `Membership`: the rule-set versions (genesis's,
then each `rules.set` from its height) and the registered plots. The running totals the
rules need (harvest per plot and season, quantity held and in transit per lot, units
commissioned and packed per GTIN, units sold, containers' contents, flags) are tallies
in the store (`ledger.tallies`), read through a lookup bounded by height; `TrustBlock`
adds this block's own as it goes and hands them to the store with the block.

`rules.set` carries {"change": {"rules": <rule set>, "from_height": H}, "approvals": [...]},
approved like a membership change (genesis's `membership_approval`); the new version
holds from block H (> the block recording it) on, and its `version` must exceed every
earlier one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from ledger.errors import SchemaError
from ledger.membership import Membership
from ledger.policy import EPCIS_TX_TYPE
from ledger.tallies import Tally, TallyLookup
from ledger.timefmt import parse_time
from ledger.tx import Transaction, require_keys

from ..recall import Recall
from .errors import RuleViolation
from .events import EventJudge, Totals
from .plots import PLOT_TX_TYPE, Plot, check_plot, parse_plot
from .ruleset import RuleSet, parse_ruleset, ruleset_of

RULES_TX_TYPE = "rules.set"
TRUST_TYPES = frozenset({PLOT_TX_TYPE, RULES_TX_TYPE})


def parse_rules_change(payload: Any) -> tuple[RuleSet, int, dict[str, Any]]:
    """(rule set, from height, its JSON) of a `rules.set` payload."""
    obj = require_keys(payload, ("change", "approvals"), "payload")
    change = require_keys(obj["change"], ("rules", "from_height"), "payload.change")
    start = change["from_height"]
    if isinstance(start, bool) or not isinstance(start, int) or start < 1:
        raise SchemaError("payload.change.from_height: expected a positive block height")
    return parse_ruleset(change["rules"], "payload.change.rules"), start, change["rules"]


def check_trust_shape(tx: Transaction) -> None:
    """The exact payload shape of the trust rules' own transaction types."""
    if tx.type == PLOT_TX_TYPE:
        parse_plot(tx.payload, "", 0)
    elif tx.type == RULES_TX_TYPE:
        parse_rules_change(tx.payload)


@dataclass(frozen=True)
class TrustState:
    """Rule-set versions and plots after some block (None versions: no trust rules)."""

    versions: tuple[tuple[int, RuleSet], ...] = ()
    plots: Mapping[str, Plot] = field(default_factory=lambda: MappingProxyType({}))
    totals: TallyLookup | None = None

    @classmethod
    def from_genesis(cls, rules: dict[str, Any] | None, totals: TallyLookup | None) -> TrustState:
        return cls(((1, ruleset_of(rules)),) if rules is not None else (), totals=totals)

    def ruleset(self, height: int) -> RuleSet | None:
        """The rule set in force at block `height`."""
        chosen = None
        for start, rules in self.versions:
            if start <= height:
                chosen = rules
        return chosen

    def plot(self, plot_id: str) -> Plot | None:
        return self.plots.get(plot_id)

    def begin(self, height: int, time: str | None) -> TrustBlock:
        return TrustBlock(self, height, time)


class TrustBlock:
    """The trust rules while block `height` is judged, transaction by transaction."""

    def __init__(self, base: TrustState, height: int, time: str | None) -> None:
        self.base = base
        self.height = height
        self.time = parse_time(time, "block time") if time else None
        self.rules = base.ruleset(height)
        self.plots: dict[str, Plot] | None = None  # copied on the first registration
        self.versions = base.versions
        self._committed: dict[bytes, int] = {}
        self._block: dict[bytes, int] = {}
        self._verdicts: dict[str, dict[bytes, int]] = {}
        self._rows: list[Tally] = []
        self._orgs: dict[str, str] = {}  # signer's organisation of a checked registration
        self._position = 0

    # -- totals -----------------------------------------------------------------------------
    def _read(self, keys: list[bytes]) -> dict[bytes, int]:
        missing = [k for k in keys if k not in self._committed]
        if missing:
            found = self.base.totals(missing, self.height) if self.base.totals else {}
            for k in missing:
                self._committed[k] = found.get(k, 0)
        return {k: self._committed[k] + self._block.get(k, 0) for k in keys}

    # -- BlockRules -------------------------------------------------------------------------
    def check(
        self,
        tx: Transaction,
        membership: Membership,
        recall_of: Callable[[str], Recall | None],
    ) -> None:
        if tx.type == PLOT_TX_TYPE:
            self._check_plot(tx, membership)
        elif tx.type == RULES_TX_TYPE:
            self._check_rules(tx, membership)
        elif tx.type == EPCIS_TX_TYPE and self.rules is not None:
            event = tx.payload.get("event")
            member = membership.member(tx.signer)
            if isinstance(event, dict) and member is not None:
                totals = Totals(self._read)
                record = self.time or parse_time(tx.timestamp, "timestamp")
                plots = self.plots if self.plots is not None else dict(self.base.plots)
                EventJudge(self.rules, plots, totals, recall_of, record).judge(event, member.org)
                self._verdicts[tx.id] = totals.delta

    def apply(self, tx: Transaction) -> None:
        if tx.type == PLOT_TX_TYPE:
            plot = parse_plot(tx.payload, self._orgs.pop(tx.id, ""), self.height, tx.id)
            if self.plots is None:
                self.plots = dict(self.base.plots)
            self.plots[plot.id] = plot
        elif tx.type == RULES_TX_TYPE:
            rules, start, _ = parse_rules_change(tx.payload)
            self.versions = (*self.versions, (start, rules))
        delta = self._verdicts.pop(tx.id, {})
        for k, amount in sorted(delta.items()):
            self._block[k] = self._block.get(k, 0) + amount
            self._rows.append((self._position, k, amount))
        self._position += 1

    def tallies(self) -> list[Tally]:
        return list(self._rows)

    def result(self) -> TrustState:
        plots = MappingProxyType(self.plots) if self.plots is not None else self.base.plots
        return TrustState(self.versions, plots, self.base.totals)

    # -- governance -------------------------------------------------------------------------
    def _at(self, tx: Transaction) -> datetime:
        return self.time or parse_time(tx.timestamp, "timestamp")

    def _check_plot(self, tx: Transaction, membership: Membership) -> None:
        if self.rules is None:
            raise RuleViolation("plot", "this chain has no trust rule set: no plots to register")
        member = membership.member(tx.signer)
        plot = parse_plot(tx.payload, member.org if member else "", self.height)
        plots = self.plots if self.plots is not None else dict(self.base.plots)
        check_plot(plot, self.rules, plots)
        membership.check_approved(tx, self.height, self._at(tx), self.rules.plot_approval)
        self._orgs[tx.id] = plot.org

    def _check_rules(self, tx: Transaction, membership: Membership) -> None:
        rules, start, _ = parse_rules_change(tx.payload)
        if start <= self.height:
            raise RuleViolation(
                "governance",
                f"a rule set takes effect from a later block: from_height {start} is not "
                f"above this block's height {self.height}",
            )
        latest = max((r.version for _, r in self.versions), default=0)
        if rules.version <= latest:
            raise RuleViolation(
                "governance",
                f"rule set version {rules.version} does not follow version {latest}",
            )
        membership.check_approved(tx, self.height, self._at(tx), membership.approval)
