"""The regulator's audit, as pure functions over a node's store and event index:

    compare       block digests of each node, and where nodes diverge
    proofs        receipts and consistency proofs, verifiable offline
    evidence      committed evidence of misbehaving validators
    search        events by organisation, identifier, lot, bizStep, time; CSV export
    trace         backward and forward trace of a lot
    recall_status what the consumer page asks: is this unit recalled?

The HTTP side, access control and signed reports are in `api/audit/` and `api/routes/audit.py`.
"""
