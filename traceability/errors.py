"""Typed refusals of the domain rules. The API maps each `code` to an HTTP status
(api/errors.py); nothing here knows HTTP."""

from __future__ import annotations

from ledger.errors import DuplicateError, LedgerError, NotPermittedError


class NotFoundError(LedgerError):
    """What was asked for is not on this node's chain."""

    code = "not_found"


class InvalidRequestError(LedgerError):
    """A query or parameter that cannot be answered as given."""

    code = "invalid_request"


class DuplicateClaimError(DuplicateError):
    """An eventID or a batch id the chain already holds (or the block holds earlier)."""


class NotOwnerError(NotPermittedError):
    """Codes for a GTIN outside every GS1 Company Prefix the signer's organisation holds."""


class ErrorDeclarationError(NotPermittedError):
    """An EPCIS error declaration for an event that is not the signer's to declare."""


class UnknownEventError(NotFoundError):
    """An EPCIS error declaration for an event this chain does not hold."""
