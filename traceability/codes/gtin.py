"""GTINs: the GS1 mod-10 check digit, padding to GTIN-14, and GTINs the park issues.

A tenant without a GS1 Company Prefix of its own gets item references under the park's
prefix (configuration); `park_gtin` turns one into a GTIN-14 with its check digit, so a
park-issued identifier is an ordinary GTIN everywhere else (Digital Link, EPCIS, QR).
"""

from __future__ import annotations

import functools

from traceability.codes import CodeError

GTIN_LENGTHS = (8, 12, 13, 14)


@functools.lru_cache(maxsize=4096)
def check_digit(body: str) -> int:
    """The GS1 check digit of `body` (all digits but the last): weights 3,1,3,… from the
    right. Memoised: the same few GTINs and GLNs recur in every event."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def normalize_gtin(value: str, field: str = "gtin") -> str:
    """A GTIN-8/12/13/14 as GTIN-14 (left-padded with zeros), its check digit verified."""
    if not isinstance(value, str) or not value:
        raise CodeError(field, "gtin-format", "expected a GTIN of 8, 12, 13 or 14 digits")
    if not value.isascii() or not value.isdigit():
        bad = next(c for c in value if not (c.isascii() and c.isdigit()))
        raise CodeError(field, "gtin-format", f"a GTIN has only digits; found {bad!r}")
    if len(value) not in GTIN_LENGTHS:
        raise CodeError(
            field,
            "gtin-length",
            f"a GTIN has 8, 12, 13 or 14 digits; {value!r} has {len(value)}",
        )
    expected = check_digit(value[:-1])
    if int(value[-1]) != expected:
        raise CodeError(
            field,
            "gtin-check-digit",
            f"wrong check digit in GTIN {value}: the last digit should be {expected}, "
            f"not {value[-1]}",
        )
    return value.rjust(14, "0")


def park_gtin(prefix: str, item_reference: str, field: str = "parkItem") -> str:
    """GTIN-14 for item reference `item_reference` under the park's company prefix."""
    if not item_reference.isascii() or not item_reference.isdigit():
        raise CodeError(field, "park-item-format", "a park item reference has only digits")
    room = 12 - len(prefix)
    if not 1 <= len(item_reference) <= room:
        raise CodeError(
            field,
            "park-item-length",
            f"the park's prefix {prefix} leaves {room} digits for the item reference; "
            f"{item_reference!r} has {len(item_reference)}",
        )
    body = "0" + prefix + item_reference.rjust(room, "0")
    return body + str(check_digit(body))


def check_prefix(prefix: str) -> str:
    """A GS1 Company Prefix (6 to 11 digits) as configuration gives it."""
    if not prefix.isascii() or not prefix.isdigit() or not 6 <= len(prefix) <= 11:
        raise ValueError(f"park GS1 Company Prefix {prefix!r}: expected 6 to 11 digits")
    return prefix
