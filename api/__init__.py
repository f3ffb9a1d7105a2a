"""ParkTrace public API, CLI and client SDK."""
