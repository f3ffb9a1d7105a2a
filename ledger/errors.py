"""Typed errors: every rejection names its kind and says what is wrong, so callers
(CLI, HTTP API, consensus) can turn it into a clear message without guessing."""

from __future__ import annotations


class LedgerError(ValueError):
    """Base of everything the ledger rejects. `code` is a stable machine-readable name."""

    code = "ledger_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


class EncodingError(LedgerError):
    """Bytes or JSON that cannot be decoded (bad base64, wrong types, not canonical)."""

    code = "encoding_error"


class SchemaError(LedgerError):
    """A field is missing, has the wrong type, or an unknown value."""

    code = "schema_error"


class TooLargeError(LedgerError):
    """An object exceeds a size limit."""

    code = "too_large"


class SchemeError(LedgerError):
    """A signature or key names a scheme this chain does not accept."""

    code = "unknown_scheme"


class SignatureError(LedgerError):
    """A signature does not verify for the bytes and key it claims."""

    code = "bad_signature"


class DomainError(LedgerError):
    """Signed bytes of one kind presented as another (e.g. a vote as a transaction)."""

    code = "wrong_domain"


class ChainMismatchError(LedgerError):
    """An object belongs to another chain."""

    code = "wrong_chain"


class DuplicateError(LedgerError):
    """A transaction already seen (same id) or a replayed nonce."""

    code = "duplicate"


class NotPermittedError(LedgerError):
    """The signer is known but not allowed to do this."""

    code = "not_permitted"


class IdentityError(LedgerError):
    """The signer's certificate is unknown, expired, revoked, or from another CA."""

    code = "bad_identity"


class BlockError(LedgerError):
    """A block or its certificate breaks the chain rules."""

    code = "bad_block"
