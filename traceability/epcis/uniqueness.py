"""Chain-wide eventID uniqueness: an `epcis.event` whose eventID the chain (or an earlier
transaction of the block) already holds is refused, whichever node admitted it.

The one exception is EPCIS 2.0's error declaration (§7.4.1.4): an event carrying
`errorDeclaration` repeats the eventID of the event it says was recorded in error. It is
accepted when that event is on the chain, was recorded by the declaring organisation
(whoever recorded an event is who answers for it; another party that disagrees records
its own events, and a regulator's word is a recall), and has not been declared
erroneous before. The original stays on the chain, as everything does; queries show
both.

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
    declares an event of its own organisation erroneous for the first time."""
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
    if not recorded:
        raise ErrorDeclarationError(
            f"the error declaration repeats eventID {event_id}, but no event with that "
            "eventID is recorded on this chain: declare an event erroneous once it is recorded"
        )
    original, declarer = membership.member(recorded[0][1]), membership.member(tx.signer)
    if original is None or declarer is None or original.org != declarer.org:
        owner = original.org if original is not None else "another organisation"
        raise ErrorDeclarationError(
            f"EPCIS event {event_id} was recorded by {owner!r}; only that organisation may "
            "declare it erroneous"
        )
    declared = claims.claimants(claim(ERROR_DECLARATION, event_id))
    if declared:
        raise DuplicateClaimError(
            f"EPCIS event {event_id} is already declared erroneous (transaction {declared[0][0]})"
        )
