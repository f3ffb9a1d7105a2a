"""Chain-wide eventID uniqueness: an `epcis.event` whose eventID the chain (or an earlier
transaction of the block) already holds is refused, whichever node admitted it.

The one exception is EPCIS 2.0's error declaration (§7.4.1.4): an event carrying
`errorDeclaration` repeats the eventID of the event it says was recorded in error. Each
eventID is declared erroneous once. When the event is on the chain, only the organisation
that recorded it may declare it erroneous (whoever recorded an event answers for it;
another party that disagrees records its own events, and a regulator's word is a
recall). The original stays on the chain, as everything does; queries show both.

A declaration whose event is not on this chain is recorded too: EPCIS events travel
between repositories, and GS1's own examples declare events captured elsewhere. It voids
nothing here, and the eventID stays free for the event itself.

Events recorded without an eventID (EPCIS makes it optional) claim nothing here: the API
gives every event it captures its GS1 event hash ID as eventID, and checks an event
signed without one against its own event index.
"""

from __future__ import annotations

from ledger.claims import ERROR_DECLARATION, EVENT, claim
from ledger.membership import Membership
from ledger.tx import Transaction

from ..claims import BlockClaims
from ..errors import DuplicateClaimError, ErrorDeclarationError
from .records import event_of


def check_event_id(tx: Transaction, membership: Membership, claims: BlockClaims) -> None:
    """Raise unless the eventID of `tx` (a well-formed epcis.event) is new, or `tx`
    declares it erroneous for the first time (and the event, if recorded, is its
    organisation's)."""
    event = event_of(tx)
    event_id = event.get("eventID") if event is not None else None
    if event is None or not isinstance(event_id, str):
        return
    recorded = claims.claimants(claim(EVENT, event_id))
    if "errorDeclaration" not in event:
        if recorded:
            raise DuplicateClaimError(
                f"EPCIS event {event_id} is already recorded (transaction {recorded[0][0]})"
            )
        return
    if recorded:
        original, declarer = membership.member(recorded[0][1]), membership.member(tx.signer)
        if original is None or declarer is None or original.org != declarer.org:
            owner = original.org if original is not None else "another organisation"
            raise ErrorDeclarationError(
                f"EPCIS event {event_id} was recorded by {owner!r}; only that organisation "
                "may declare it erroneous"
            )
    declared = claims.claimants(claim(ERROR_DECLARATION, event_id))
    if declared:
        raise DuplicateClaimError(
            f"EPCIS event {event_id} is already declared erroneous (transaction {declared[0][0]})"
        )
