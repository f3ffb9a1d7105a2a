"""Typed refusals of the domain rules. The API maps each `code` to an HTTP status
(api/errors.py); nothing here knows HTTP."""

from __future__ import annotations

from ledger.errors import LedgerError


class NotFoundError(LedgerError):
    """What was asked for is not on this node's chain."""

    code = "not_found"


class InvalidRequestError(LedgerError):
    """A query or parameter that cannot be answered as given."""

    code = "invalid_request"
