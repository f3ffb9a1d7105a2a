"""Chain-wide eventID uniqueness: an `epcis.event` whose eventID the chain (or an earlier
transaction of the block) already holds is refused, whichever node admitted it.

The one exception is EPCIS 2.0's error declaration (§7.4.1.4): an event carrying
`errorDeclaration` repeats the eventID of the event it says was recorded in error. Each
eventID is declared erroneous once, by whom `traceability.epcis.corrections` allows (the
recorder's organisation or the regulator, for an event on this chain).

Events recorded without an eventID (EPCIS makes it optional) claim nothing here: the API
gives every event it captures its GS1 event hash ID as eventID, and checks an event
signed without one against its own event index.
"""

from __future__ import annotations

from ledger.claims import ERROR_DECLARATION, EVENT, claim
from ledger.membership import Membership
from ledger.tx import Transaction

from ..claims import BlockClaims
from ..errors import DuplicateClaimError
from .corrections import check_declaration
from .records import event_of


def check_event_id(tx: Transaction, membership: Membership, claims: BlockClaims) -> None:
    """Raise unless the eventID of `tx` (a well-formed epcis.event) is new, or `tx` may
    declare that event erroneous and is the first to."""
    event = event_of(tx)
    event_id = event.get("eventID") if event is not None else None
    if event is not None and "errorDeclaration" in event:
        check_declaration(tx, event, membership, claims)
    if event is None or not isinstance(event_id, str):
        return
    if "errorDeclaration" not in event:
        recorded = claims.claimants(claim(EVENT, event_id))
        if recorded:
            raise DuplicateClaimError(
                f"EPCIS event {event_id} is already recorded (transaction {recorded[0][0]})"
            )
        return
    declared = claims.claimants(claim(ERROR_DECLARATION, event_id))
    if declared:
        raise DuplicateClaimError(
            f"EPCIS event {event_id} is already declared erroneous (transaction {declared[0][0]})"
        )
