"""What a node's audit endpoints need beyond the node itself: the other validators' API
addresses (for the cross-node comparison) and the regulator identity the node asks them
with. Kept on the app (`app.state.audit`); without `install` it is read from the
environment on first use:

    PARKTRACE_AUDIT_NODES   "node-id=http://host:port,node-id=http://…" (every validator,
                            this one included or not)
    PARKTRACE_AUDIT_KEY     key and certificate (PEM) of a regulator certificate delegated
    PARKTRACE_AUDIT_CERT    to this node for asking the others (like --capture-signer)

Why a delegated identity: each node refuses audit requests that no regulator signed, so a
node comparing itself with its peers must sign as a regulator. The regulator can instead
run the comparison from its own machine (`parktrace audit compare`), needing nothing here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request

from sdk.signing import Identity

from ..errors import ApiError


@dataclass(frozen=True)
class AuditSettings:
    #: validator id -> base URL of its API
    nodes: Mapping[str, str] = field(default_factory=dict)
    #: the regulator identity this node signs its requests to the others with
    identity: Identity | None = None
    #: this node's own validator id (answered from its own store, not over HTTP)
    self_id: str | None = None

    @classmethod
    def from_env(cls) -> AuditSettings:
        nodes = parse_nodes(os.environ.get("PARKTRACE_AUDIT_NODES", ""))
        key, cert = os.environ.get("PARKTRACE_AUDIT_KEY"), os.environ.get("PARKTRACE_AUDIT_CERT")
        identity = Identity.from_files(Path(key), Path(cert)) if key and cert else None
        return cls(nodes, identity)


def parse_nodes(text: str) -> dict[str, str]:
    """'id=url,id=url' (or one per line) -> {id: url}; ApiError naming a bad entry."""
    nodes: dict[str, str] = {}
    for item in text.replace("\n", ",").split(","):
        item = item.strip()
        if not item:
            continue
        node_id, sep, url = item.partition("=")
        if not sep or not node_id.strip() or not url.strip().startswith(("http://", "https://")):
            raise ApiError("invalid_request", f"node {item!r}: expected ID=http(s)://host:port")
        nodes[node_id.strip()] = url.strip().rstrip("/")
    return nodes


def install(app: FastAPI, settings: AuditSettings) -> AuditSettings:
    app.state.audit = settings
    return settings


def audit_settings(request: Request) -> AuditSettings:
    """The app's audit settings (FastAPI dependency), from the environment if not installed."""
    settings = getattr(request.app.state, "audit", None)
    if settings is None:
        settings = install(request.app, AuditSettings.from_env())
    return settings
