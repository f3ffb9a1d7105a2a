"""RFC 6962 / RFC 9162 Merkle tree: hashing, proofs and their verification.

Small and exact on purpose (in the spirit of transparency-dev/merkle): every node's bytes are
fixed by RFC 9162 section 2.1, so anyone holding a signed root can check our proofs with any
conforming implementation. Standard library only.

Two ways to build proofs:
  * list functions (`root_of`, `inclusion_proof`, `consistency_proof`) over all leaf hashes,
    for small trees such as the transactions of one block;
  * `TreeProofs` over stored perfect-subtree nodes (as emitted by `Frontier.append`), for the
    whole-ledger log, where a pass over every leaf per proof would not scale.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Protocol

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "NodeSource",
    "ProofError",
    "TreeProofs",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32


class ProofError(ValueError):
    """A proof does not verify; message says what is wrong."""


def leaf_hash(data: bytes) -> bytes:
    """MTH of one entry; the 0x00 prefix keeps leaves from being passed off as nodes."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Interior node; the 0x01 prefix is RFC 6962's second-preimage protection."""
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()
"""MTH({}) -- the root of a log with no entries."""


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n > 1): where MTH splits D[n]."""
    return 1 << ((n - 1).bit_length() - 1)


def _mth(leaf_hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) over already-hashed leaves, without copying the sequence."""
    n = hi - lo
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[lo]
    k = _split(n)
    return node_hash(_mth(leaf_hashes, lo, lo + k), _mth(leaf_hashes, lo + k, hi))


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """Merkle Tree Hash over already-hashed leaves; the empty list gives EMPTY_ROOT."""
    return _mth(leaf_hashes, 0, len(leaf_hashes))


# -- proof generation, shared by the list functions and TreeProofs ---------------------------

_SubtreeHash = Callable[[int, int], bytes]


def _path(index: int, size: int, subtree: _SubtreeHash) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH(index, D[size]), unrolled; `subtree(lo, hi)` = MTH(D[lo:hi]).

    Every range asked for is RFC-aligned (lo is a multiple of a power of two >= hi - lo), so a
    node store can answer it from perfect-subtree nodes.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    siblings: list[bytes] = []  # collected top-down; PATH lists them bottom-up
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            siblings.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            siblings.append(subtree(lo, lo + k))
            lo += k
    siblings.reverse()
    return siblings


def _subproof(size1: int, size2: int, subtree: _SubtreeHash) -> list[bytes]:
    """RFC 9162 2.1.4.1 PROOF(size1, D[size2]) = SUBPROOF(size1, D[size2], true), unrolled."""
    if not 0 <= size1 <= size2:
        raise ValueError(f"cannot prove consistency from size {size1} to size {size2}")
    if size1 == 0:
        # RFC 9162 defines proofs for 0 < size1 only, and verify_consistency rejects size1 == 0.
        raise ValueError("a consistency proof from the empty tree is meaningless")
    nodes: list[bytes] = []  # collected top-down; SUBPROOF lists them bottom-up
    lo, hi, complete = 0, size2, True  # `complete`: the `b` flag of SUBPROOF
    while size1 != hi:  # SUBPROOF recurses until m == n
        k = _split(hi - lo)
        if size1 - lo <= k:
            nodes.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            nodes.append(subtree(lo, lo + k))
            lo += k
            complete = False
    if not complete:
        nodes.append(subtree(lo, hi))
    nodes.reverse()
    return nodes


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Audit path of leaf `index` in the tree of all `leaf_hashes` (raises ValueError if out
    of range)."""
    return _path(index, len(leaf_hashes), lambda lo, hi: _mth(leaf_hashes, lo, hi))


def consistency_proof(leaf_hashes: Sequence[bytes], size1: int) -> list[bytes]:
    """Proof that the first `size1` leaves are a prefix of all `leaf_hashes` (size2 = len).

    size1 == size2 gives []. size1 == 0 raises ValueError: RFC 9162 defines no such proof.
    """
    return _subproof(size1, len(leaf_hashes), lambda lo, hi: _mth(leaf_hashes, lo, hi))


# -- verification (RFC 9162 2.1.3.2 and 2.1.4.2) ----------------------------------------------


def _check_size(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProofError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def _check_hash(name: str, value: object) -> bytes:
    """Reject anything but a HASH_SIZE-byte string up front, so garbage never gets hashed."""
    if not isinstance(value, bytes | bytearray):
        raise ProofError(f"{name} must be bytes, got {type(value).__name__}")
    if len(value) != HASH_SIZE:
        raise ProofError(f"{name} is {len(value)} bytes, want {HASH_SIZE}")
    return bytes(value)


def _check_proof(proof: Sequence[bytes] | None) -> list[bytes]:
    return [_check_hash(f"proof[{i}]", p) for i, p in enumerate(proof or ())]


def root_from_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root implied by an inclusion proof (RFC 9162 2.1.3.2 steps 1-4).

    Raises ProofError if the sizes or the proof's shape are wrong; the caller compares roots.
    """
    index = _check_size("index", index)
    size = _check_size("size", size)
    if index >= size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    r = _check_hash("leaf hash", leaf_hash)
    path = _check_proof(proof)
    fn, sn = index, size - 1
    for p in path:
        if sn == 0:
            raise ProofError(f"inclusion proof is too long ({len(path)} hashes)")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"inclusion proof is too short ({len(path)} hashes)")
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that `leaf_hash` is leaf `index` of the tree of `size` leaves with `root`."""
    root = _check_hash("root", root)
    if root_from_inclusion(leaf_hash, index, size, proof) != root:
        raise ProofError("inclusion proof does not lead to the expected root")


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree (size1, root1) is a prefix of the tree (size2, root2).

    As in transparency-dev/merkle and its shared test vectors: size1 == 0 is always rejected
    (RFC 9162 requires 0 < size1; any tree extends the empty one, so the check proves nothing),
    and size1 == size2 needs an empty proof and root1 == root2, compared byte for byte.
    """
    size1 = _check_size("size1", size1)
    size2 = _check_size("size2", size2)
    if size1 > size2:
        raise ProofError(f"size1 ({size1}) is larger than size2 ({size2})")
    if size1 == 0:
        raise ProofError("a consistency proof from the empty tree is meaningless")
    if size1 == size2:
        if proof:
            raise ProofError("size1 == size2 but the proof is not empty")
        if not isinstance(root1, bytes | bytearray) or root1 != root2:
            raise ProofError("size1 == size2 but the roots differ")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    first_hash = _check_hash("root1", root1)
    second_hash = _check_hash("root2", root2)
    path = _check_proof(proof)

    if size1 & (size1 - 1) == 0:  # size1 is a power of 2: its root is a node of the tree
        path.insert(0, first_hash)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof is too long ({len(proof)} hashes)")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof is too short ({len(proof)} hashes)")
    if fr != first_hash:
        raise ProofError("consistency proof does not lead to root1")
    if sr != second_hash:
        raise ProofError("consistency proof does not lead to root2")


# -- the whole-ledger log ---------------------------------------------------------------------


class Frontier:
    """Compact range of the whole-ledger log: the roots of the perfect subtrees that make up the
    first `size` leaves (at most log2(size)+1 hashes). Appending costs O(log n) hashing, not O(n).

    Hashes are kept left to right, largest subtree first, one per set bit of `size`.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; return the perfect-subtree nodes this completes as
        (level, index, hash), leaf (level 0) first, so a store can persist them.

        Merges as many subtrees as `size` has trailing one bits: amortised one hash per append,
        never more than log2(size + 1).
        """
        node = _check_frontier_hash(leaf_hash)
        level, index = 0, self._size
        completed = [(0, index, node)]
        while index & 1:
            node = node_hash(self._hashes.pop(), node)
            level += 1
            index >>= 1
            completed.append((level, index, node))
        self._hashes.append(node)
        self._size += 1
        return completed

    def root(self) -> bytes:
        """MTH of all leaves: fold the subtree roots from the right (RFC 9162's split)."""
        if not self._hashes:
            return EMPTY_ROOT
        r = self._hashes[-1]
        for h in reversed(self._hashes[:-1]):
            r = node_hash(h, r)
        return r

    def to_list(self) -> list[bytes]:
        """The subtree roots, largest (leftmost) first, for persistence."""
        return list(self._hashes)

    @classmethod
    def from_list(cls, size: int, hashes: Sequence[bytes]) -> Frontier:
        """Rebuild from `size` and `to_list()`; raises ValueError if they do not fit together."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"frontier size must be a non-negative integer, got {size!r}")
        if len(hashes) != size.bit_count():
            raise ValueError(
                f"a frontier of size {size} has {size.bit_count()} hashes, got {len(hashes)}"
            )
        f = cls()
        f._size = size
        f._hashes = [_check_frontier_hash(h) for h in hashes]
        return f

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frontier):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Frontier(size={self._size}, root={self.root().hex()})"


def _check_frontier_hash(value: object) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise ValueError(f"a log hash must be {HASH_SIZE} bytes, got {value!r}")
    return bytes(value)


class NodeSource(Protocol):
    """Where TreeProofs reads stored nodes (e.g. the ledger store, or a dict in tests)."""

    def node(self, level: int, index: int) -> bytes:
        """Hash of the perfect subtree covering leaves [index*2**level, (index+1)*2**level)."""
        ...


class TreeProofs:
    """Proofs over a large log whose perfect-subtree nodes are stored (as emitted by
    Frontier.append), so an inclusion or consistency proof costs O(log^2 n) node reads, never a
    pass over all leaves.

    Perfect-subtree nodes never change once written, so proofs for any earlier size can be
    served from the same store.
    """

    def __init__(self, nodes: NodeSource) -> None:
        self._nodes = nodes

    def subtree_hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for an RFC-aligned range: start a multiple of the smallest power of
        two >= end - start (every range a proof needs is). At most log2(n)+1 node reads."""
        if not 0 <= start <= end:
            raise ValueError(f"bad leaf range [{start}, {end})")
        n = end - start
        if n == 0:
            return EMPTY_ROOT
        if start % (1 << (n - 1).bit_length()):
            raise ValueError(f"leaf range [{start}, {end}) is not a subtree of the log")
        # Perfect subtrees left to right, largest first; MTH folds them from the right.
        parts: list[bytes] = []
        offset = start
        for level in range(n.bit_length() - 1, -1, -1):
            if n >> level & 1:
                parts.append(self._nodes.node(level, offset >> level))
                offset += 1 << level
        r = parts.pop()
        while parts:
            r = node_hash(parts.pop(), r)
        return r

    def root(self, size: int) -> bytes:
        """MTH of the first `size` leaves."""
        return self.subtree_hash(0, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """Audit path of leaf `index` in the tree of the first `size` leaves."""
        return _path(index, size, self.subtree_hash)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """Proof that the tree of size1 leaves is a prefix of the tree of size2 leaves."""
        return _subproof(size1, size2, self.subtree_hash)
