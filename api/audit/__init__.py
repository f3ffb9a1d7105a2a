"""The regulator's audit: what the Market Supervision Bureau checks, and the proofs it
takes away. One module per job:

    access        only regulators: RFC 9421-signed requests from a regulator certificate
    client        the regulator's SDK (signs every request locally)
    verification  full-chain verification report of a node's own store
    compare       block digests of each node, and where nodes diverge
    proofs        receipts and consistency proofs, verifiable offline
    evidence      committed evidence of misbehaving validators
    search        events by organisation, identifier, lot, bizStep, time; CSV export
    trace         backward and forward trace of a lot
    recalls       planning a recall (which units) and listing committed ones
    recall_status what the consumer page asks: is this unit recalled?
    report        the signed audit report (JSON), its offline verification; pdf renders it
    settings      which nodes a node compares itself with, and as whom

The recall *rule* (what the chain refuses) is `ledger.recall`; this package only reads it.
"""
