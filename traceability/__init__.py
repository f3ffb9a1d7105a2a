"""The park's traceability rules, beneath the nodes and above the chain.

EPCIS 2.0 events and documents (`epcis`), GS1 identifiers and serialised codes (`codes`),
recalls (`recall`), receipts and audit evidence (`receipts`, `audit`), and the block rule
that combines them (`validity`). Pure: no HTTP, no environment reads; errors are typed
`LedgerError`s that the API maps to HTTP statuses. Named `traceability` rather than
`trace` because the standard library already has a `trace` module, and which one
`import trace` finds would depend on the working directory.
"""
