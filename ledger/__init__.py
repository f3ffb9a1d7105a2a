"""ParkTrace ledger: the pure rules of what a valid chain is, and its storage.

Imports nothing else of the project's: `nodes/` and `api/` build on it.
"""
