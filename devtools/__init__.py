"""Tooling for development and demos: local clusters, compose bundles, sample chains, and
the deterministic consensus simulator (used by tests and bench)."""
