"""The write policy: which roles may record which transactions and EPCIS business steps.

It is data in genesis, not code, so a consortium changes who may do what by agreeing on a
new genesis (or, later, a policy transaction), never by shipping different node software:

    {"transactions": {"<tx type>": ["<role>", ...], ...},
     "biz_steps": {"<bizStep>": ["<role>", ...], ...},
     "unlisted_biz_steps": ["<role>", ...],
     "no_biz_step": ["<role>", ...]}

A transaction type missing from "transactions" is refused. For "epcis.event" the signer
needs a role allowed for the type *and* one allowed for the event's bizStep. CBV steps are
written as bare words ("inspecting"); an event may spell them as bare words, CBV URNs or
GS1 web URIs, which all mean the same step. Other (private) steps are written as full URIs.
Events with a step that is not listed need a role in "unlisted_biz_steps"; events with no
step, one in "no_biz_step" (optional, default "unlisted_biz_steps", and then not written
back, so genesis files from before it keep their hash).
An EPCIS error declaration records no step of its own (it repeats the erroneous event's),
so only its type is checked here; who may declare which event is a domain rule
(traceability.epcis.corrections: the recorder's organisation or the regulator).

Reading: "read_all" (optional, default ["regulator"]) lists the roles that may query
every event; any other member queries the events its own organisation recorded and those
that name it as a party (traceability.epcis.visibility). Absent, it is not written back,
so genesis files from before it keep their hash.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .errors import NotPermittedError, SchemaError
from .identity import parse_roles

EPCIS_TX_TYPE = "epcis.event"
_CBV_PREFIXES = ("urn:epcglobal:cbv:bizstep:", "https://ref.gs1.org/cbv/BizStep-")
_BARE_WORD = re.compile(r"^[a-z][a-z_]*$")
_TX_TYPE = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)*$")
POLICY_FIELDS = ("transactions", "biz_steps", "unlisted_biz_steps")
OPTIONAL_POLICY_FIELDS = ("read_all", "no_biz_step")
DEFAULT_READ_ALL = ("regulator",)


def normalize_biz_step(value: str) -> str:
    """One spelling per CBV step: 'urn:epcglobal:cbv:bizstep:shipping' -> 'shipping'."""
    for prefix in _CBV_PREFIXES:
        if value.startswith(prefix) and _BARE_WORD.fullmatch(value[len(prefix) :]):
            return value[len(prefix) :]
    return value


def _listing(roles: tuple[str, ...]) -> str:
    return ", ".join(roles) if roles else "none"


@dataclass(frozen=True)
class Policy:
    transactions: Mapping[str, tuple[str, ...]]
    biz_steps: Mapping[str, tuple[str, ...]]
    unlisted_biz_steps: tuple[str, ...] = ()
    #: Roles that may read every event (queries, subscriptions).
    read_all: tuple[str, ...] = DEFAULT_READ_ALL
    #: Roles that may record an event with no bizStep; None: those of unlisted_biz_steps.
    no_biz_step: tuple[str, ...] | None = None

    @classmethod
    def from_json(cls, data: Any) -> Policy:
        if not isinstance(data, dict):
            raise SchemaError("policy: expected an object")
        missing = [k for k in POLICY_FIELDS if k not in data]
        extra = sorted(set(data) - set(POLICY_FIELDS) - set(OPTIONAL_POLICY_FIELDS))
        if missing or extra:
            raise SchemaError(
                f"policy: fields must be {', '.join(POLICY_FIELDS)}"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(extra)}" if extra else "")
            )
        txs, steps = data["transactions"], data["biz_steps"]
        if not isinstance(txs, dict) or not isinstance(steps, dict):
            raise SchemaError("policy: transactions and biz_steps must be objects")
        transactions = {}
        for tx_type, roles in txs.items():
            if not _TX_TYPE.fullmatch(tx_type):
                raise SchemaError(f"policy.transactions: {tx_type!r} is not a transaction type")
            transactions[tx_type] = parse_roles(
                roles, f"policy.transactions[{tx_type!r}]", allow_empty=True
            )
        biz_steps = {}
        for step, roles in steps.items():
            if not step or normalize_biz_step(step) != step:
                raise SchemaError(
                    f"policy.biz_steps: write {step!r} as {normalize_biz_step(step)!r}"
                    if step
                    else "policy.biz_steps: empty bizStep"
                )
            if not _BARE_WORD.fullmatch(step) and ":" not in step:
                raise SchemaError(f"policy.biz_steps: {step!r} is neither a CBV word nor a URI")
            biz_steps[step] = parse_roles(roles, f"policy.biz_steps[{step!r}]", allow_empty=True)
        unlisted = parse_roles(
            data["unlisted_biz_steps"], "policy.unlisted_biz_steps", allow_empty=True
        )
        read_all = DEFAULT_READ_ALL
        if "read_all" in data:
            read_all = parse_roles(data["read_all"], "policy.read_all", allow_empty=True)
        no_step = None
        if "no_biz_step" in data:
            no_step = parse_roles(data["no_biz_step"], "policy.no_biz_step", allow_empty=True)
        return cls(
            MappingProxyType(transactions),
            MappingProxyType(biz_steps),
            unlisted,
            read_all,
            no_step,
        )

    def to_json(self) -> dict[str, Any]:
        optional = {"read_all": list(self.read_all)} if self.read_all != DEFAULT_READ_ALL else {}
        if self.no_biz_step is not None:
            optional["no_biz_step"] = list(self.no_biz_step)
        return {
            "transactions": {k: list(v) for k, v in self.transactions.items()},
            "biz_steps": {k: list(v) for k, v in self.biz_steps.items()},
            "unlisted_biz_steps": list(self.unlisted_biz_steps),
        } | optional

    def check(
        self, tx_type: str, payload: dict[str, Any], roles: tuple[str, ...], who: str
    ) -> None:
        """Raise NotPermittedError unless one of `roles` may record this transaction."""
        allowed = self.transactions.get(tx_type)
        if allowed is None:
            raise NotPermittedError(f"transaction type {tx_type!r} is not in the write policy")
        if not set(roles) & set(allowed):
            raise NotPermittedError(
                f"{who} (roles {_listing(roles)}) may not record {tx_type!r} transactions; "
                f"allowed roles: {_listing(allowed)}"
            )
        if tx_type != EPCIS_TX_TYPE or _declares_error(payload):
            return
        step = biz_step_of(payload)
        if step is None:
            step_roles = self.unlisted_biz_steps if self.no_biz_step is None else self.no_biz_step
        else:
            step_roles = self.biz_steps.get(step, self.unlisted_biz_steps)
        if not set(roles) & set(step_roles):
            what = f"bizStep {step!r}" if step else "no bizStep"
            raise NotPermittedError(
                f"{who} (roles {_listing(roles)}) may not record EPCIS events with {what}; "
                f"allowed roles: {_listing(step_roles)}"
            )


def biz_step_of(payload: dict[str, Any]) -> str | None:
    """The normalised bizStep of an "epcis.event" payload ({"event": {...}}), or None."""
    event = payload.get("event")
    if not isinstance(event, dict):
        raise SchemaError("payload.event: an epcis.event transaction carries one EPCIS event")
    step = event.get("bizStep")
    if step is None:
        return None
    if not isinstance(step, str) or not step:
        raise SchemaError("payload.event.bizStep: expected a non-empty string")
    return normalize_biz_step(step)


def _declares_error(payload: dict[str, Any]) -> bool:
    event = payload.get("event")
    return isinstance(event, dict) and "errorDeclaration" in event
