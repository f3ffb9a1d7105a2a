"""Who may correct a recorded event: EPCIS 2.0 error declarations (§7.4.1.4) as a block
rule.

An error declaration is the erroneous event again, with the same eventID and an
`errorDeclaration` (declarationTime, reason, correctiveEventIDs). Declared once per
eventID (`traceability.epcis.uniqueness`), it is accepted only if

* it names the event by its eventID (an event captured without one has its GS1 hash ID
  as eventID; a declaration signed without any could not say which event it voids);
* the event is on this chain, committed or earlier in the same block: a declaration is
  a statement about a record, and an unknown eventID could otherwise be declared by
  anyone before its event is recorded, taking the one declaration its recorder may make;
* its signer belongs to the organisation that recorded the event (whoever recorded an
  event answers for it, whichever of its certificates signs) or holds the regulator
  role (the park's regulator corrects the record as it may recall goods).

The original stays on the chain, as everything does: queries return both, and the
product history shows the original withdrawn, with the reason and its corrective events
(`traceability.epcis.history`). A corrective event may be recorded before or after the
declaration, so correctiveEventIDs are linked when read, not required here.
"""

from __future__ import annotations

from typing import Any

from ledger.claims import EVENT, claim
from ledger.membership import Membership
from ledger.tx import Transaction

from ..claims import BlockClaims
from ..errors import ErrorDeclarationError, UnknownEventError

#: Roles that may declare any organisation's event erroneous.
CORRECTING_ROLES = frozenset({"regulator"})


def check_declaration(
    tx: Transaction, event: dict[str, Any], membership: Membership, claims: BlockClaims
) -> None:
    """Raise unless `tx` (whose `event` carries errorDeclaration) may declare its event
    erroneous. Whether it was declared already is `uniqueness`'s to judge."""
    event_id = event.get("eventID")
    if not isinstance(event_id, str):
        raise ErrorDeclarationError(
            "eventID: an error declaration names the erroneous event by its eventID (the "
            "GS1 event hash ID of an event recorded without one)"
        )
    recorded = claims.claimants(claim(EVENT, event_id))
    if not recorded:
        raise UnknownEventError(
            f"eventID: EPCIS event {event_id} is not recorded on this chain, so it cannot be "
            "declared erroneous here (record the event first, or declare it where it was "
            "captured)"
        )
    original = membership.member(recorded[0][1])
    declarer = membership.member(tx.signer)
    if declarer is None:  # the chain's rules refuse an unknown signer first
        raise ErrorDeclarationError(f"signer {tx.signer} is not a member")
    if original is not None and original.org == declarer.org:
        return
    if CORRECTING_ROLES & set(declarer.roles):
        return
    owner = original.org if original is not None else "another organisation"
    raise ErrorDeclarationError(
        f"EPCIS event {event_id} was recorded by {owner!r}; only that organisation or the "
        f"regulator may declare it erroneous, not {declarer.org!r}"
    )
