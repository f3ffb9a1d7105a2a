"""The Python SDK: a client for a node's API, and RFC 9421 request signing."""
