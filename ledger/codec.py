"""Canonical bytes for everything that is hashed or signed.

Objects are encoded with the JSON Canonicalization Scheme (RFC 8785), so every node
derives the same bytes from the same object whatever its JSON library. Every hash and
signature is taken over `domain_bytes(domain, obj)`: a fixed prefix naming the kind of
object, then the canonical JSON. Bytes signed as a vote can therefore never verify as a
transaction, a block or anything else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import Any

import rfc8785

from .errors import DomainError, EncodingError

PREFIX = b"parktrace/v1/"

#: Every kind of object that is hashed or signed. A domain outside this set is a bug.
DOMAINS = frozenset(
    {
        "tx",  # transaction body, signed by its author
        "block",  # block header, hashed into the chain
        "vote",  # prevote / precommit, signed by a validator
        "proposal",  # block proposal, signed by the round's proposer
        "genesis",  # the genesis document
        "evidence",  # proof of a validator's misbehaviour
        "report",  # a regulator's signed audit report
        "approval",  # a regulator's approval of a membership change
        "codes",  # a batch of issued product codes
        "commit",  # commit certificate, hashed into the next header
        "validators",  # a validator set, hashed into every header
        "peer",  # peer-link handshake
        "request",  # HTTP request signatures
        "checkpoint",  # a node's signed record of the state it verified up to a height
    }
)

_DOMAIN_RE = re.compile(r"^[a-z]+$")
#: The tag each domain's bytes start with (computed once: every tx id needs one).
_PREFIXES = {d: PREFIX + d.encode("ascii") + b"\n" for d in DOMAINS if _DOMAIN_RE.match(d)}


_MAX_SAFE_INT = 2**53 - 1


def _no_default(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


#: The C encoder of `json.JSONEncoder(ensure_ascii=False, sort_keys=True,
#: separators=(",", ":"), allow_nan=False).encode`, built once instead of on every call
#: (what `encode` does; that cost more than encoding a small object). No circular-reference
#: markers: `_fast_path_applies` walks the value first, and a cycle never gets here.
_C_ENCODER = getattr(json.encoder, "c_make_encoder", None)
if _C_ENCODER is not None:
    _c_encode = _C_ENCODER(
        None, _no_default, json.encoder.encode_basestring, None, ":", ",", True, False, False
    )

    def _fast_dumps(obj: Any) -> str:
        return "".join(_c_encode(obj, 0))

else:  # an interpreter without the C accelerator
    _fast_dumps = json.JSONEncoder(
        ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    ).encode


def _fast_path_applies(obj: Any) -> bool:
    """True when the C JSON encoder with sorted keys produces exactly RFC 8785's bytes.

    It does unless the value holds a float (JCS prints numbers the ECMAScript way), an
    integer JCS cannot represent exactly, a non-string key, or a key with a character
    beyond the BMP (JCS sorts keys by UTF-16 code units, Python by code points; the two
    orders differ only there). tests/test_codec.py checks the equivalence on generated
    values; anything unusual goes to the reference library.

    Every hashed or signed object passes through here, so the exact JSON types are
    dispatched first on `type()`; subclasses get the general checks of `_applies_one`.
    """
    stack = [obj]
    pop, extend = stack.pop, stack.extend
    while stack:
        value = pop()
        kind = type(value)
        if kind is str or value is None or kind is bool:
            continue
        if kind is dict:
            try:
                keys = "".join(value)  # all keys at once: one check, not one per key
            except TypeError:  # a key that is not a string
                return False
            if not keys.isascii() and max(keys) >= "\U00010000":
                return False
            extend(value.values())
        elif kind is list:
            extend(value)
        elif kind is int:
            if not -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
                return False
        elif not _applies_one(value, stack):
            return False
    return True


def _applies_one(value: Any, stack: list[Any]) -> bool:
    """`_fast_path_applies` for one value of any type; its children go on `stack`."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not (key.isascii() or max(key) < "\U00010000"):
                return False
            stack.append(item)
        return True
    if isinstance(value, list):
        stack.extend(value)
        return True
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, int):
        return -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT
    return False


def canonical(obj: Any) -> bytes:
    """RFC 8785 canonical JSON. Rejects what JCS cannot represent (NaN, huge ints, bytes)."""
    if _fast_path_applies(obj):
        try:
            return _fast_dumps(obj).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: let the reference implementation reject it
    try:
        try:
            return rfc8785.dumps(obj)
        except rfc8785.IntegerDomainError:
            return rfc8785.dumps(_large_ints_as_doubles(obj))
    except (rfc8785.CanonicalizationError, TypeError, ValueError, OverflowError) as exc:
        raise EncodingError(f"cannot encode canonically: {exc}") from exc


def _large_ints_as_doubles(value: Any) -> Any:
    """`value` with each integer beyond 2^53 replaced by the double it stands for, when
    its digits are exactly that double's canonical text; other such integers still fail.

    JCS prints a double such as 5.9304870432468816e16 as the digits 59304870432468820,
    which a JSON parser here reads back as an integer: without this, canonical bytes could
    parse to a value that has no canonical bytes (a signed transaction a verifier cannot
    re-encode). An integer of any other digits is no JSON number JCS can hold exactly.
    """
    if isinstance(value, dict):
        return {key: _large_ints_as_doubles(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_large_ints_as_doubles(item) for item in value]
    if type(value) is int and not -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
        double = float(value)
        if rfc8785.dumps(double) == str(value).encode("ascii"):
            return double
    return value


class _NotPlain(Exception):
    """A number `loads_with_canonical` leaves to the general path."""


def _not_plain(_text: str) -> Any:
    raise _NotPlain


def _plain_int(text: str) -> int:
    value = int(text)
    if -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
        return value
    raise _NotPlain


#: json's decoder, refusing (by raising _NotPlain) floats, NaN/Infinity and integers JCS
#: cannot represent exactly: with none of those, and no character beyond the BMP, a value
#: parsed from JSON is one `_fast_path_applies` accepts (its keys are strings).
_PLAIN_DECODER = json.JSONDecoder(
    parse_float=_not_plain, parse_int=_plain_int, parse_constant=_not_plain
)
#: Lead bytes of 4-byte UTF-8 sequences (characters beyond the BMP); F5-FF are never UTF-8.
_FOUR_BYTE_LEADS = (b"\xf0", b"\xf1", b"\xf2", b"\xf3", b"\xf4")


def loads_with_canonical(raw: bytes) -> tuple[Any, bytes | None]:
    """`json.loads(raw)`, and `canonical()` of the value when it comes cheaper than walking
    the value first: when the text has no float, no integer beyond 2^53, no \\u escape
    (which could spell a character beyond the BMP) and no such character, the C encoder's
    bytes are RFC 8785's (see `_fast_path_applies`). Otherwise (or for a lone surrogate)
    the encoding is None: call `canonical()`."""
    plain = b"\\u" not in raw and (
        raw.isascii() or not any(lead in raw for lead in _FOUR_BYTE_LEADS)
    )
    if plain:
        try:
            value = _PLAIN_DECODER.decode(raw.decode("utf-8", "surrogatepass"))
        except _NotPlain:
            pass
        else:
            try:
                return value, _fast_dumps(value).encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate: canonical() decides
                return value, None
    return json.loads(raw), None


def reference_canonical(obj: Any) -> bytes:
    """The reference implementation alone, for tests that compare the two."""
    return rfc8785.dumps(obj)


def domain_prefix(domain: str) -> bytes:
    prefix = _PREFIXES.get(domain)
    if prefix is None:
        raise DomainError(f"unknown signing domain {domain!r}")
    return prefix


def domain_bytes(domain: str, obj: Any) -> bytes:
    """The bytes that are signed or hashed for `obj` of kind `domain`."""
    return domain_prefix(domain) + canonical(obj)


def digest(domain: str, obj: Any) -> bytes:
    """SHA-256 of the domain-tagged canonical bytes: the id of a tx, the hash of a block…"""
    return hashlib.sha256(domain_bytes(domain, obj)).digest()


def b64encode(data: bytes) -> str:
    """Standard base64 with padding (RFC 4648 §4): what JSON fields carry."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: Any, *, field: str = "value", size: int | None = None) -> bytes:
    """Strict base64: rejects non-strings, stray characters, bad padding and wrong lengths."""
    if not isinstance(text, str):
        raise EncodingError(f"{field}: expected a base64 string, got {type(text).__name__}")
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise EncodingError(f"{field}: not valid base64 ({exc})") from exc
    if base64.b64encode(data).decode("ascii") != text:
        raise EncodingError(f"{field}: base64 is not in canonical form")
    if size is not None and len(data) != size:
        raise EncodingError(f"{field}: expected {size} bytes, got {len(data)}")
    return data


def hexdecode(text: Any, *, field: str = "value", size: int | None = None) -> bytes:
    """Strict lowercase hex, as used for hashes and ids."""
    if not isinstance(text, str) or not re.fullmatch(r"[0-9a-f]*", text) or len(text) % 2:
        raise EncodingError(f"{field}: expected lowercase hex")
    data = bytes.fromhex(text)
    if size is not None and len(data) != size:
        raise EncodingError(f"{field}: expected {size} bytes, got {len(data)}")
    return data
