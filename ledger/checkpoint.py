"""A node's verified checkpoint: the chain state after a block the node has verified and
stored, so that a restart verifies only the blocks stored since instead of the whole
chain again.

The checkpoint is the node's own record, not the chain's: it is signed with the node's
key, and a file that does not verify, belongs to another chain or names a block the store
does not hold as it says is not used (the node then verifies its whole store, as before).
Below the checkpoint the stored bytes are re-hashed (`ledger.integrity`), which is cheap;
signatures and rules there were checked when the checkpoint was written and are checked
again by `parktrace verify`.

The state is pickled: it is made of the ledger's and the domain's own immutable values
(membership with its certificates, validator sets, the log frontier, the recall index).
The unpickler resolves only those packages' classes, and only after the signature over the
bytes has verified, so a file planted by someone without the node's key is never unpickled.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from . import codec
from .crypto import PrivateKey, PublicKey
from .errors import LedgerError
from .store import Store
from .timefmt import now
from .verify import Tip

#: What a checkpoint attests was checked up to its height (said in logs and `info`).
CHECKED = "signatures, hashes, block and domain rules, derived columns"

#: Modules whose classes a checkpoint may hold; anything else refuses to load.
_ALLOWED_MODULES = ("ledger.", "traceability.")
_ALLOWED_GLOBALS = {
    ("builtins", name)
    for name in ("frozenset", "set", "dict", "list", "tuple", "bytes", "int", "str", "getattr")
} | {
    ("collections", "OrderedDict"),
    ("copyreg", "_reconstructor"),
    ("builtins", "object"),
    ("datetime", "datetime"),
    ("datetime", "timezone"),
    ("datetime", "timedelta"),
    ("decimal", "Decimal"),
}


class CheckpointError(LedgerError):
    """A checkpoint that cannot be used; the message says why in one line."""

    code = "checkpoint_unusable"


@dataclass(frozen=True)
class Checkpoint:
    chain_id: str
    genesis_hash: str
    height: int
    head_hash: str
    written: str
    tip: Tip

    def summary(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "head_hash": self.head_hash,
            "written": self.written,
            "checked": CHECKED,
        }


def _certificate(der: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(der)


def _mapping(items: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(items)


class _Pickler(pickle.Pickler):
    """Pickles a Tip: certificates as DER, read-only mappings as dicts, and the store the
    domain's lookups read from as a reference resolved again on load."""

    def __init__(self, file: io.BytesIO, store: Store) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.store = store

    def persistent_id(self, obj: Any) -> str | None:
        return "store" if obj is self.store else None

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, x509.Certificate):
            return _certificate, (obj.public_bytes(Encoding.DER),)
        if isinstance(obj, MappingProxyType):
            return _mapping, (dict(obj),)
        return NotImplemented


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, store: Store) -> None:
        super().__init__(file)
        self.store = store

    def persistent_load(self, pid: Any) -> Any:
        if pid != "store":
            raise pickle.UnpicklingError(f"unknown reference {pid!r}")
        return self.store

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith(_ALLOWED_MODULES) or (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} may not appear in a checkpoint")


def _attested(meta: dict[str, Any]) -> bytes:
    return codec.domain_bytes("checkpoint", meta)


def write(path: Path, tip: Tip, store: Store, key: PrivateKey, genesis_hash: str) -> Checkpoint:
    """Sign and write the checkpoint of `tip` (a state the node verified and stored),
    replacing the previous one atomically: a crash leaves the old file or the new one."""
    buffer = io.BytesIO()
    _Pickler(buffer, store).dump(tip)
    state = buffer.getvalue()
    meta = {
        "chain_id": tip.state.chain_id,
        "genesis_hash": genesis_hash,
        "height": tip.state.height,
        "head_hash": tip.state.head_hash,
        "written": now(),
        "state_sha256": hashlib.sha256(state).hexdigest(),
    }
    head = {"checkpoint": meta, "signature": codec.b64encode(key.sign(_attested(meta)))}
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        out.write(codec.canonical(head) + b"\n" + state)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    return Checkpoint(
        meta["chain_id"], genesis_hash, meta["height"], meta["head_hash"], meta["written"], tip
    )


def read(path: Path, key: PublicKey, store: Store, genesis_hash: str) -> Checkpoint:
    """The checkpoint in `path`, or CheckpointError saying why it cannot be used."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError("no checkpoint yet") from None
    except OSError as exc:
        raise CheckpointError(f"checkpoint unreadable: {exc.strerror}") from None
    line, _, state = data.partition(b"\n")
    try:
        head = json.loads(line)
        meta, signature = head["checkpoint"], codec.b64decode(head["signature"])
        if not isinstance(meta, dict):
            raise TypeError("checkpoint is not an object")
    except (ValueError, KeyError, TypeError, LedgerError) as exc:
        raise CheckpointError(f"checkpoint is malformed: {exc}") from None
    if not key.verify(signature, _attested(meta)):
        raise CheckpointError("checkpoint is not signed by this node's key")
    if hashlib.sha256(state).hexdigest() != meta.get("state_sha256"):
        raise CheckpointError("checkpoint state differs from the one signed")
    if meta.get("genesis_hash") != genesis_hash:
        raise CheckpointError("checkpoint belongs to another chain")
    try:
        tip = _Unpickler(io.BytesIO(state), store).load()
    except Exception as exc:  # a file from another version of the code: verify instead
        raise CheckpointError(f"checkpoint state cannot be loaded ({exc})") from None
    if not isinstance(tip, Tip) or tip.state.height != meta["height"]:
        raise CheckpointError("checkpoint state does not match its height")
    if tip.state.head_hash != meta["head_hash"]:
        raise CheckpointError("checkpoint state does not match its head hash")
    return Checkpoint(
        meta["chain_id"], genesis_hash, meta["height"], meta["head_hash"], meta["written"], tip
    )
