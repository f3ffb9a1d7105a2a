"""What consumers' phones showed the ledger: scans, regions added to them and reports (举报),
as the node that served them records them in a `codes.scans` transaction.

Each node batches what it observed into one transaction it signs with its own validator
key every second or two (`nodes.scanbatch`), so the consortium agrees on every node's
observations like on any other fact: every node counts the same scans and reaches the
same copied-code verdict, and a restart loses nothing committed. The payload:

    {"scans":   [{"id", "code", "at", "region", "channel"}],
     "regions": [{"scan", "code", "at", "region"}],
     "reports": [{"id", "code", "at", "region", "note", "photo"}]}

`code` is the canonical key of the scanned Digital Link (`traceability.identifiers`; an
instance for scans and regions, any level for reports), `at` the node's clock in the
chain's one time spelling, `region` a coarse region (province or country,
`traceability.codes.regions`) or null, `channel` the kind of client (`CHANNELS`). A photo
is a JPEG of at most `MAX_PHOTO_BYTES`, named by its SHA-256 (content-addressed). Nothing
else about a person is kept: no address, no user agent, no precise place.

`parse_payload` is the block rule's whole shape check (`traceability.validity`); only a
validator node's certificate may sign the type (`check_signer`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger import codec
from ledger.errors import NotPermittedError, SchemaError, TooLargeError
from ledger.membership import Membership
from ledger.timefmt import format_time, parse_time
from ledger.tx import Transaction, require_keys

from . import CodeError
from .digital_link import parse_uri
from .regions import region as find_region

TX_TYPE = "codes.scans"
#: How a scan reached the node: an ordinary browser, or the in-app browser of WeChat or
#: Alipay (what most shoppers in China scan with).
CHANNELS = ("web", "wechat", "alipay")
#: Most entries of all kinds in one transaction.
MAX_ENTRIES = 500
#: Largest photo a report may carry (the node re-encodes what a phone sends to fit).
MAX_PHOTO_BYTES = 40_000
MAX_NOTE = 500
PHOTO_TYPE = "image/jpeg"
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_JPEG = b"\xff\xd8\xff"
_SCAN_FIELDS = ("id", "code", "at", "region", "channel")
_REGION_FIELDS = ("scan", "code", "at", "region")
_REPORT_FIELDS = ("id", "code", "at", "region", "note", "photo")
_PHOTO_FIELDS = ("sha256", "type", "data")


@dataclass(frozen=True)
class Scan:
    """One person's scan of a serialised code."""

    id: str
    code: str
    at: datetime
    region: str | None = None
    channel: str = "web"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "at": format_time(self.at),
            "region": self.region,
            "channel": self.channel,
        }


@dataclass(frozen=True)
class RegionNote:
    """The region a person added to their scan afterwards (the page's form)."""

    scan: str
    code: str
    at: datetime
    region: str

    def to_json(self) -> dict[str, Any]:
        return {
            "scan": self.scan,
            "code": self.code,
            "at": format_time(self.at),
            "region": self.region,
        }


@dataclass(frozen=True)
class Photo:
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "type": PHOTO_TYPE, "data": codec.b64encode(self.data)}


@dataclass(frozen=True)
class Report:
    """A consumer's report of a suspicious product, for the regulator."""

    id: str
    code: str
    at: datetime
    region: str | None = None
    note: str = ""
    photo: Photo | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "at": format_time(self.at),
            "region": self.region,
            "note": self.note,
            "photo": self.photo.to_json() if self.photo else None,
        }


Entry = Scan | RegionNote | Report


@dataclass(frozen=True)
class Observations:
    scans: tuple[Scan, ...] = ()
    regions: tuple[RegionNote, ...] = ()
    reports: tuple[Report, ...] = ()

    @classmethod
    def of(cls, entries: list[Entry]) -> Observations:
        return cls(
            tuple(e for e in entries if isinstance(e, Scan)),
            tuple(e for e in entries if isinstance(e, RegionNote)),
            tuple(e for e in entries if isinstance(e, Report)),
        )

    def to_payload(self) -> dict[str, Any]:
        return {
            "scans": [s.to_json() for s in self.scans],
            "regions": [r.to_json() for r in self.regions],
            "reports": [r.to_json() for r in self.reports],
        }


def entry_json(entry: Entry) -> dict[str, Any]:
    """An entry as the payload carries it, with its kind (for a node's own journal)."""
    kind = (
        "scan"
        if isinstance(entry, Scan)
        else "region"
        if isinstance(entry, RegionNote)
        else "report"
    )
    return {"kind": kind, **entry.to_json()}


def entry_from_json(data: dict[str, Any]) -> Entry:
    """The inverse of `entry_json` (SchemaError on anything else)."""
    kind = data.get("kind") if isinstance(data, dict) else None
    body = {k: v for k, v in data.items() if k != "kind"} if isinstance(data, dict) else data
    if kind == "scan":
        return _scan(body, "entry")
    if kind == "region":
        return _region_note(body, "entry")
    if kind == "report":
        return _report(body, "entry")
    raise SchemaError("entry.kind: expected scan, region or report")


# -- the block rule ------------------------------------------------------------------------


def parse_payload(payload: Any) -> Observations:
    """The observations a `codes.scans` payload records; a typed LedgerError naming the
    field otherwise. A function of the bytes alone, as every block rule must be."""
    obj = require_keys(payload, ("scans", "regions", "reports"), "payload")
    lists = {}
    for key in ("scans", "regions", "reports"):
        if not isinstance(obj[key], list):
            raise SchemaError(f"payload.{key}: expected a list")
        lists[key] = obj[key]
    total = sum(len(v) for v in lists.values())
    if not total:
        raise SchemaError("payload: records no observation")
    if total > MAX_ENTRIES:
        raise TooLargeError(f"payload: {total} entries; at most {MAX_ENTRIES}")
    scans = tuple(_scan(s, f"payload.scans[{i}]") for i, s in enumerate(lists["scans"]))
    notes = tuple(_region_note(r, f"payload.regions[{i}]") for i, r in enumerate(lists["regions"]))
    reports = tuple(_report(r, f"payload.reports[{i}]") for i, r in enumerate(lists["reports"]))
    ids = [s.id for s in scans] + [r.id for r in reports]
    if len(set(ids)) != len(ids):
        raise SchemaError("payload: an id is used twice")
    return Observations(scans, notes, reports)


def check_signer(tx: Transaction, membership: Membership) -> None:
    """Only a validator node records what its resolver observed: a person's certificate,
    even one of a validator's organisation, may not."""
    member = membership.member(tx.signer)
    if member is None or not member.node:
        raise NotPermittedError(f"{TX_TYPE} transactions are signed by a validator node's key")


def _id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _HEX32.fullmatch(value):
        raise SchemaError(f"{what}: expected 32 lower-case hex digits")
    return value


def _code(value: Any, what: str, *, item: bool) -> str:
    """A canonical key of a Digital Link (an instance's when `item`)."""
    if not isinstance(value, str) or len(value) > 300:
        raise SchemaError(f"{what}: expected a canonical Digital Link of at most 300 characters")
    try:
        link = parse_uri(value, what)
    except CodeError as exc:
        raise SchemaError(f"{what}: {exc.detail}") from None
    canonical = link.instance_id or link.lot_id or link.product_id
    if value != canonical or (item and link.instance_id is None):
        level = "a serialised item's" if item else "a"
        raise SchemaError(f"{what}: expected {level} canonical key, like {canonical}")
    return value


def _region(value: Any, what: str, *, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    found = find_region(value) if isinstance(value, str) and len(value) <= 8 else None
    if found is None or found.code != value:
        raise SchemaError(f"{what}: expected a region code (CN-GD, ZZ, …) or null")
    return value


def _at(value: Any, what: str) -> datetime:
    return parse_time(value, what)


def _scan(data: Any, what: str) -> Scan:
    obj = require_keys(data, _SCAN_FIELDS, what)
    channel = obj["channel"]
    if channel not in CHANNELS:
        raise SchemaError(f"{what}.channel: expected one of {', '.join(CHANNELS)}")
    return Scan(
        _id(obj["id"], f"{what}.id"),
        _code(obj["code"], f"{what}.code", item=True),
        _at(obj["at"], f"{what}.at"),
        _region(obj["region"], f"{what}.region"),
        channel,
    )


def _region_note(data: Any, what: str) -> RegionNote:
    obj = require_keys(data, _REGION_FIELDS, what)
    region = _region(obj["region"], f"{what}.region", optional=False)
    assert region is not None
    return RegionNote(
        _id(obj["scan"], f"{what}.scan"),
        _code(obj["code"], f"{what}.code", item=True),
        _at(obj["at"], f"{what}.at"),
        region,
    )


def _report(data: Any, what: str) -> Report:
    obj = require_keys(data, _REPORT_FIELDS, what)
    note = obj["note"]
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise SchemaError(f"{what}.note: expected a string of at most {MAX_NOTE} characters")
    return Report(
        _id(obj["id"], f"{what}.id"),
        _code(obj["code"], f"{what}.code", item=False),
        _at(obj["at"], f"{what}.at"),
        _region(obj["region"], f"{what}.region"),
        note,
        None if obj["photo"] is None else _photo(obj["photo"], f"{what}.photo"),
    )


def _photo(data: Any, what: str) -> Photo:
    obj = require_keys(data, _PHOTO_FIELDS, what)
    if obj["type"] != PHOTO_TYPE:
        raise SchemaError(f"{what}.type: expected {PHOTO_TYPE}")
    text = obj["data"]
    if not isinstance(text, str) or len(text) > (MAX_PHOTO_BYTES + 2) // 3 * 4:
        raise TooLargeError(f"{what}.data: a photo is at most {MAX_PHOTO_BYTES} bytes")
    photo = Photo(codec.b64decode(text, field=f"{what}.data"))
    if not photo.data.startswith(_JPEG):
        raise SchemaError(f"{what}.data: expected a JPEG image")
    sha = obj["sha256"]
    if not isinstance(sha, str) or not _HEX64.fullmatch(sha) or sha != photo.sha256:
        raise SchemaError(f"{what}.sha256: expected the SHA-256 of the photo's bytes")
    return photo
