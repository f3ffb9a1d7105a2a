"""What a member may read of the ledger's events: the consortium's read rule, applied to
every query and subscription the same way on every node.

A member whose certificate holds a role of the policy's `read_all` (the regulator, by
default) reads every event. Any other member reads the events its own organisation
recorded (signed by any certificate the organisation ever held) and those that name it as
a party: a source or destination whose GLN falls under one of its GS1 Company Prefixes.
So a supplier does not list another company's shipments, customers or destinations.
The consumer resolver is not a query: it shows its own public view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import false, or_, select

from ledger.membership import Membership
from traceability.epcis.index import events, parties

#: GS1 Digital Link keys of a party (GLN of a location, GLN of a party), canonical form.
_PARTY_KEYS = ("https://id.gs1.org/414/", "https://id.gs1.org/417/")


@dataclass(frozen=True)
class Reader:
    """Who is reading, as the read rule sees them."""

    org: str
    everything: bool
    signers: frozenset[str]  # fingerprints of every certificate the organisation held
    prefixes: tuple[str, ...]  # GS1 Company Prefixes held now

    def describe(self) -> str:
        return f"{self.org} ({'every event' if self.everything else 'its own and addressed'})"


def reader(membership: Membership, org: str, roles: tuple[str, ...]) -> Reader:
    """The read rule for a member of `org` whose certificate holds `roles`."""
    everything = bool(set(roles) & set(membership.policy.read_all))
    signers = frozenset(f for f, m in membership.members.items() if m.org == org)
    prefixes = tuple(sorted(g.prefix for g in membership.prefix_grants if g.org == org))
    return Reader(org, everything, signers, prefixes)


def scope(who: Reader) -> Any:
    """An SQL condition on the index's `events` selecting what `who` may read (None: all)."""
    if who.everything:
        return None
    own = events.c.signer.in_(sorted(who.signers)) if who.signers else false()
    if not who.prefixes:
        return own
    addressed = select(parties.c.log_index).where(
        or_(*(parties.c.party.startswith(key + p) for key in _PARTY_KEYS for p in who.prefixes))
    )
    return or_(own, events.c.log_index.in_(addressed))
