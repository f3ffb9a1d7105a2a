"""EPCIS 2.0 for the ledger: validation (GS1's JSON schema, then the CBV 2.0 rules it
cannot express), GS1 event hash IDs, the recorded form of an event, capture jobs, the
query index, queries and product histories, and bulk-load formats."""
