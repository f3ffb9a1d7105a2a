"""When a validator whose sign state is gone may sign again.

The sign state (nodes/signstore.py) is the only record of what this validator signed at
the height it was working on. Without it, signing at that height again may contradict a
vote that already left the node: `duplicate_vote` evidence against an honest member.
CometBFT's `double_sign_check_height` is the model: look at the recent chain before
signing. Here the node follows the chain without signing until it knows a height above
anything it can have signed:

* it signed at height h only while its store ended at h - 1, so h <= its store height + 1;
* with its store lost too, some honest peer that precommitted h - 1 is at h - 1 or later,
  so its announced store height is >= h - 2: h <= the highest height peers announce + 2;
* any certificate in the chain carrying this validator's own precommit at height c shows
  it signed at c, and perhaps at c + 1.

So it waits for the heights announced by a quorum of validators (itself and 2f peers),
takes the highest bound of the three, and signs only above it. A fresh chain (every store
at height 0) is the one exception: there is nothing to have signed yet. An operator may
instead run `parktrace node reset-signstate`, which records a floor ("signed up to")
beside the sign state; the node then never signs at or below it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from ledger.block import CommitCertificate
from ledger.errors import LedgerError
from ledger.timefmt import now

log = logging.getLogger("parktrace.node")

FLOOR_FILE = "signing-floor.json"


def floor_path(data_dir: Path) -> Path:
    return Path(data_dir) / FLOOR_FILE


def read_floor(data_dir: Path) -> int | None:
    """The operator's recorded "signed up to" height, if any."""
    path = floor_path(data_dir)
    if not path.exists():
        return None
    try:
        height = json.loads(path.read_text(encoding="utf-8"))["signed_up_to"]
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise LedgerError(f"{path} is unreadable ({exc}); refusing to start") from exc
    if isinstance(height, bool) or not isinstance(height, int) or height < 0:
        raise LedgerError(f"{path}: signed_up_to must be a height")
    return height


def write_floor(data_dir: Path, height: int, reason: str) -> Path:
    from .signstore import write_durably

    path = floor_path(data_dir)
    record = {"signed_up_to": height, "recorded_at": now(), "reason": reason}
    write_durably(path, (json.dumps(record, indent=2) + "\n").encode("utf-8"))
    return path


@dataclass
class SignGuard:
    """Collects what bounds the heights this validator may have signed at, and says when
    that bound is known. Pure: the node feeds it peer heights and certificates."""

    validator_id: str
    store_height: int
    peers_needed: int
    reports: dict[str, int] = field(default_factory=dict)
    own_signed: int = 0

    def peer_height(self, peer: str, height: int) -> None:
        self.reports[peer] = max(height, self.reports.get(peer, 0))

    def certificate(self, certificate: CommitCertificate | None) -> None:
        """A certificate seen in the chain: does it carry our own precommit?"""
        if certificate is None:
            return
        if any(vid == self.validator_id for vid, _ in certificate.signatures):
            if certificate.height > self.own_signed:
                log.warning(
                    "sign guard: the chain holds this validator's precommit of height %d, "
                    "signed before the sign state was lost",
                    certificate.height,
                )
            self.own_signed = max(self.own_signed, certificate.height)

    def horizon(self) -> int | None:
        """The highest height this validator may have signed at, once enough validators
        have reported; None while waiting."""
        if len(self.reports) < self.peers_needed:
            return None
        highest_peer = max(self.reports.values(), default=0)
        if self.store_height == 0 and highest_peer == 0 and self.own_signed == 0:
            return 0  # a fresh chain: nothing can have been signed
        return max(self.store_height + 1, highest_peer + 2, self.own_signed + 1)
