"""Who may issue codes for a GTIN: the rule a `codes.issue` transaction must meet to be
recorded, and the one the resolver applies before it calls a code genuine.

A GTIN belongs to the organisation holding the longest GS1 Company Prefix it lies under
(`membership.set_prefixes`, genesis `gs1_prefixes`) at the batch's height; the prefix is
matched against the GTIN-14 after its indicator digit, which is where a GTIN-13 or a
park-issued GTIN (`gtin.park_gtin`) begins. A batch id is recorded once on the chain.

A chain whose genesis predates prefixes holds none until a first set_prefixes commits;
until then no issuer can be checked, so the ownership rule starts with that block, and
the resolver judges the batches recorded before it by the prefixes held now (an
organisation that is given its prefix gets its earlier batches back; a competitor's
batches never become genuine).
"""

from __future__ import annotations

from ledger.claims import BATCH, claim
from ledger.membership import Membership, PrefixGrant
from ledger.tx import Transaction

from ..claims import BlockClaims, ClaimLookup
from ..errors import DuplicateClaimError, NotOwnerError
from .batch import Batch, RecordedBatch, parse_payload


def company_digits(gtin14: str) -> str:
    """The digits of a GTIN-14 a GS1 Company Prefix is a prefix of (after the indicator)."""
    return gtin14[1:]


def owner(membership: Membership, gtin14: str, height: int) -> PrefixGrant | None:
    """The grant that makes an organisation the owner of `gtin14` at block `height`."""
    return membership.prefix_owner(company_digits(gtin14), height)


def check_issue(tx: Transaction, membership: Membership, height: int, claims: BlockClaims) -> Batch:
    """Raise unless `tx` (a well-formed codes.issue) may be recorded in block `height`."""
    batch = parse_payload(tx.payload)
    member = membership.member(tx.signer)
    org = member.org if member is not None else "?"
    gtin = batch.link.gtin
    if membership.prefixes_declared(height):
        grant = owner(membership, gtin, height)
        if grant is None:
            held = membership.organizations[org].gs1_prefixes if member is not None else ()
            raise NotOwnerError(
                f"GTIN {gtin} lies under no GS1 Company Prefix of any member; {org!r} "
                f"holds {', '.join(held) or 'none'} (change it with membership.set_prefixes)"
            )
        if grant.org != org:
            raise NotOwnerError(
                f"GTIN {gtin} lies under GS1 Company Prefix {grant.prefix} of {grant.org!r}; "
                f"{org!r} may not issue codes for it"
            )
    earlier = claims.claimants(claim(BATCH, batch.id))
    if earlier:
        raise DuplicateClaimError(f"batch {batch.id} is already recorded ({earlier[0][0]})")
    return batch


def rightful(membership: Membership, recorded: RecordedBatch, lookup: ClaimLookup) -> bool:
    """Whether a recorded batch's codes may be called genuine: its issuer owned the GTIN
    at the batch's height (by today's prefixes for a batch from before any prefix), and
    it is the first batch with its id. `membership`: the chain's latest."""
    member = membership.member(recorded.signer)
    if member is None:
        return False
    height = recorded.height
    at = height if membership.prefixes_declared(height) else _NOW
    grant = owner(membership, recorded.batch.link.gtin, at)
    if grant is None or grant.org != member.org:
        return False
    key = claim(BATCH, recorded.batch.id)
    first = lookup([key], _NOW).get(key)
    return not first or first[0][0] == recorded.tx_id


#: A height above every block: "as the chain holds it now".
_NOW = 2**62
