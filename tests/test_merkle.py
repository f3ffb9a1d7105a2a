"""ledger.merkle against the shared RFC 6962 vectors (transparency-dev/merkle's golden probes)
and against itself: list proofs, Frontier and TreeProofs must agree exactly, since signed roots
and proofs leave the node and are checked by other implementations."""

from __future__ import annotations

import base64
import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import merkle
from ledger.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    Frontier,
    ProofError,
    TreeProofs,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from tests.testdata import RFC6962

INCLUSION_FILES = sorted(RFC6962.glob("inclusion/**/*.json"))
CONSISTENCY_FILES = sorted(RFC6962.glob("consistency/**/*.json"))


def _rel(path: Path) -> str:
    return path.relative_to(RFC6962).as_posix()


def _b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def _load(path: Path) -> dict[str, Any]:
    """One probe with every base64 field decoded; a null proof is the empty proof."""
    raw = json.loads(path.read_text())
    probe = dict(raw)
    probe["proof"] = [_b64(p) for p in raw.get("proof") or []]
    for key in ("root", "leafHash", "root1", "root2"):
        if key in raw:
            probe[key] = _b64(raw[key])
    return probe


def _happy(files: list[Path]) -> list[Path]:
    """Happy paths over the reference tree (numbered folders); not the single-entry one."""
    return [p for p in files if p.name == "happy-path.json" and p.parent.name.isdigit()]


# The RFC 6962 reference tree: these eight entries give every root and proof in the vectors.
REFERENCE_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
REFERENCE_HASHES = [leaf_hash(d) for d in REFERENCE_LEAVES]
# MTH of the first 1..8 reference leaves (transparency-dev/merkle, cmd/proofgen).
REFERENCE_ROOTS = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]

MAX_SIZE = 300
LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(MAX_SIZE)]

SETTINGS = settings(derandomize=True, database=None, deadline=None, max_examples=150)


class DictNodes:
    """NodeSource over a dict, counting reads."""

    def __init__(self, nodes: dict[tuple[int, int], bytes]) -> None:
        self.nodes = nodes
        self.reads = 0

    def node(self, level: int, index: int) -> bytes:
        self.reads += 1
        return self.nodes[(level, index)]


def _grow(leaves: list[bytes]) -> tuple[Frontier, dict[tuple[int, int], bytes]]:
    """A Frontier over `leaves` and every node its appends emitted."""
    frontier = Frontier()
    nodes: dict[tuple[int, int], bytes] = {}
    for h in leaves:
        for level, index, value in frontier.append(h):
            assert (level, index) not in nodes
            nodes[(level, index)] = value
    return frontier, nodes


@cache
def _proofs(size: int) -> TreeProofs:
    """TreeProofs over exactly the nodes a log of `size` leaves has stored."""
    return TreeProofs(DictNodes(_grow(LEAVES[:size])[1]))


def _flip(data: bytes, bit: int) -> bytes:
    bit %= len(data) * 8
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# -- the shared vectors -----------------------------------------------------------------------


def test_testdata_present() -> None:
    # A missing directory would otherwise just parametrize zero cases and pass.
    assert len(INCLUSION_FILES) > 50, f"no inclusion vectors under {RFC6962}"
    assert len(CONSISTENCY_FILES) > 50, f"no consistency vectors under {RFC6962}"
    assert _happy(INCLUSION_FILES) and _happy(CONSISTENCY_FILES)


@pytest.mark.parametrize("path", INCLUSION_FILES, ids=_rel)
def test_inclusion_vector(path: Path) -> None:
    p = _load(path)
    args = (p["leafHash"], p["leafIdx"], p["treeSize"], p["proof"], p["root"])
    if p["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", CONSISTENCY_FILES, ids=_rel)
def test_consistency_vector(path: Path) -> None:
    p = _load(path)
    args = (p["size1"], p["size2"], p["root1"], p["root2"], p["proof"])
    if p["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def test_reference_roots() -> None:
    assert leaf_hash(b"") == REFERENCE_ROOTS[0]
    frontier = Frontier()
    for n, h in enumerate(REFERENCE_HASHES, start=1):
        frontier.append(h)
        assert root_of(REFERENCE_HASHES[:n]) == REFERENCE_ROOTS[n - 1]
        assert frontier.root() == REFERENCE_ROOTS[n - 1]
    proofs = TreeProofs(DictNodes(_grow(REFERENCE_HASHES)[1]))
    assert [proofs.root(n) for n in range(1, 9)] == REFERENCE_ROOTS


def test_reference_tree_matches_testdata() -> None:
    """Every root and leaf hash named by a happy path is the reference tree's.

    The vectors name leaf hashes only for leaves 0, 1, 2 and 5; the other four entries are
    pinned by the roots and proof nodes (see the generation tests below)."""
    seen = set()
    for path in _happy(INCLUSION_FILES):
        p = _load(path)
        assert p["leafHash"] == REFERENCE_HASHES[p["leafIdx"]], _rel(path)
        assert p["root"] == REFERENCE_ROOTS[p["treeSize"] - 1], _rel(path)
        seen.add(p["treeSize"])
    for path in _happy(CONSISTENCY_FILES):
        p = _load(path)
        assert p["root1"] == REFERENCE_ROOTS[p["size1"] - 1], _rel(path)
        assert p["root2"] == REFERENCE_ROOTS[p["size2"] - 1], _rel(path)
        seen |= {p["size1"], p["size2"]}
    # No vector names the 4-leaf root directly; it appears as a proof node instead.
    assert seen == {1, 2, 3, 5, 6, 7, 8}
    proof_nodes = {h for path in _happy(INCLUSION_FILES) for h in _load(path)["proof"]}
    assert REFERENCE_ROOTS[3] in proof_nodes


@pytest.mark.parametrize("path", _happy(INCLUSION_FILES), ids=_rel)
def test_generated_inclusion_matches_testdata(path: Path) -> None:
    p = _load(path)
    leaves = REFERENCE_HASHES[: p["treeSize"]]
    assert inclusion_proof(leaves, p["leafIdx"]) == p["proof"]
    proofs = TreeProofs(DictNodes(_grow(leaves)[1]))
    assert proofs.inclusion_proof(p["leafIdx"], p["treeSize"]) == p["proof"]
    assert root_of(leaves) == p["root"]


@pytest.mark.parametrize("path", _happy(CONSISTENCY_FILES), ids=_rel)
def test_generated_consistency_matches_testdata(path: Path) -> None:
    p = _load(path)
    leaves = REFERENCE_HASHES[: p["size2"]]
    assert consistency_proof(leaves, p["size1"]) == p["proof"]
    proofs = TreeProofs(DictNodes(_grow(leaves)[1]))
    assert proofs.consistency_proof(p["size1"], p["size2"]) == p["proof"]
    assert root_of(leaves[: p["size1"]]) == p["root1"]
    assert root_of(leaves) == p["root2"]


def test_single_entry_tree() -> None:
    p = _load(RFC6962 / "inclusion" / "single-entry" / "matching-root-and-leaf.json")
    assert p["root"] == p["leafHash"] == leaf_hash(b"data")
    assert root_of([p["leafHash"]]) == p["root"]
    assert inclusion_proof([p["leafHash"]], 0) == []


def test_every_bit_flip_fails_on_reference_tree() -> None:
    """Exhaustive over all bits for one inclusion and one consistency proof."""
    leaves = REFERENCE_HASHES
    root = REFERENCE_ROOTS[7]
    proof = inclusion_proof(leaves, 5)
    for bit in range(HASH_SIZE * 8):
        with pytest.raises(ProofError):
            verify_inclusion(_flip(leaves[5], bit), 5, 8, proof, root)
        with pytest.raises(ProofError):
            verify_inclusion(leaves[5], 5, 8, proof, _flip(root, bit))
        for i in range(len(proof)):
            bad = [*proof[:i], _flip(proof[i], bit), *proof[i + 1 :]]
            with pytest.raises(ProofError):
                verify_inclusion(leaves[5], 5, 8, bad, root)
    root1 = REFERENCE_ROOTS[5]
    proof = consistency_proof(leaves, 6)
    for bit in range(HASH_SIZE * 8):
        with pytest.raises(ProofError):
            verify_consistency(6, 8, _flip(root1, bit), root, proof)
        with pytest.raises(ProofError):
            verify_consistency(6, 8, root1, _flip(root, bit), proof)
        for i in range(len(proof)):
            bad = [*proof[:i], _flip(proof[i], bit), *proof[i + 1 :]]
            with pytest.raises(ProofError):
                verify_consistency(6, 8, root1, root, bad)


# -- edge cases and argument checking ---------------------------------------------------------


def test_empty_tree() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert EMPTY_ROOT.hex().startswith("e3b0c442")
    assert root_of([]) == EMPTY_ROOT
    assert Frontier().root() == EMPTY_ROOT
    assert Frontier().size == 0 and Frontier().to_list() == []
    assert TreeProofs(DictNodes({})).root(0) == EMPTY_ROOT


def test_domain_separation() -> None:
    a, b = LEAVES[0], LEAVES[1]
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert leaf_hash(a + b) != node_hash(a, b)
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()


def test_generation_rejects_bad_arguments() -> None:
    leaves = LEAVES[:5]
    for index in (-1, 5, 6):
        with pytest.raises(ValueError):
            inclusion_proof(leaves, index)
    with pytest.raises(ValueError):
        inclusion_proof([], 0)
    for size1 in (-1, 0, 6):
        with pytest.raises(ValueError):
            consistency_proof(leaves, size1)
    assert consistency_proof(leaves, 5) == []
    proofs = _proofs(5)
    with pytest.raises(ValueError):
        proofs.inclusion_proof(5, 5)
    with pytest.raises(ValueError):
        proofs.consistency_proof(0, 5)
    with pytest.raises(ValueError):
        proofs.consistency_proof(4, 3)
    assert proofs.consistency_proof(5, 5) == []
    for start, end in ((1, 3), (2, 5), (3, 2), (-1, 0)):
        with pytest.raises(ValueError):
            proofs.subtree_hash(start, end)
    assert proofs.subtree_hash(4, 5) == LEAVES[4]
    assert proofs.subtree_hash(2, 4) == root_of(LEAVES[2:4])


GOOD_INCLUSION = (LEAVES[2], 2, 5, inclusion_proof(LEAVES[:5], 2), root_of(LEAVES[:5]))


@pytest.mark.parametrize(
    "position, value",
    [
        (0, LEAVES[2][:31]),
        (0, LEAVES[2] + b"\x00"),
        (0, None),
        (0, LEAVES[2].hex()),
        (1, -1),
        (1, True),
        (1, "2"),
        (1, 2**64 + 2),
        (2, 2),
        (2, 0),
        (2, None),
        (3, [*GOOD_INCLUSION[3][:-1], None]),
        (3, [*GOOD_INCLUSION[3][:-1], GOOD_INCLUSION[3][-1][:16]]),
        (3, [*GOOD_INCLUSION[3], GOOD_INCLUSION[4]]),
        (3, GOOD_INCLUSION[3][:-1]),
        (4, GOOD_INCLUSION[4][:31]),
        (4, b""),
        (4, None),
    ],
)
def test_verify_inclusion_rejects(position: int, value: Any) -> None:
    verify_inclusion(*GOOD_INCLUSION)
    args = list(GOOD_INCLUSION)
    args[position] = value
    with pytest.raises(ProofError):
        verify_inclusion(*args)


GOOD_CONSISTENCY = (
    3,
    7,
    root_of(LEAVES[:3]),
    root_of(LEAVES[:7]),
    consistency_proof(LEAVES[:7], 3),
)


@pytest.mark.parametrize(
    "position, value",
    [
        (0, 0),
        (0, -3),
        (0, 8),
        (0, None),
        (1, 2),
        (1, 3),
        (1, 14),
        (1, "7"),
        (2, GOOD_CONSISTENCY[2][:31]),
        (2, None),
        (3, GOOD_CONSISTENCY[3] + b"\x00"),
        (3, EMPTY_ROOT),
        (4, []),
        (4, None),
        (4, [*GOOD_CONSISTENCY[4], EMPTY_ROOT]),
        (4, GOOD_CONSISTENCY[4][1:]),
        (4, [b"", *GOOD_CONSISTENCY[4]]),
        (4, [*GOOD_CONSISTENCY[4][:-1], 7]),
    ],
)
def test_verify_consistency_rejects(position: int, value: Any) -> None:
    verify_consistency(*GOOD_CONSISTENCY)
    args = list(GOOD_CONSISTENCY)
    args[position] = value
    with pytest.raises(ProofError):
        verify_consistency(*args)


def test_verify_consistency_equal_and_empty_sizes() -> None:
    root = root_of(LEAVES[:4])
    verify_consistency(4, 4, root, root, [])
    verify_consistency(4, 4, root, root, None)  # type: ignore[arg-type]  # JSON null
    with pytest.raises(ProofError):
        verify_consistency(4, 4, root, root, [root])
    with pytest.raises(ProofError):
        verify_consistency(4, 4, root, _flip(root, 0), [])
    with pytest.raises(ProofError):
        verify_consistency(4, 4, None, None, [])  # type: ignore[arg-type]
    # From the empty tree nothing is proved, so nothing is accepted (as in the vectors).
    with pytest.raises(ProofError):
        verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    with pytest.raises(ProofError):
        verify_consistency(0, 4, EMPTY_ROOT, root, [])


def test_frontier_checks_its_input() -> None:
    with pytest.raises(ValueError):
        Frontier().append(LEAVES[0][:31])
    frontier, _ = _grow(LEAVES[:6])
    hashes = frontier.to_list()
    assert len(hashes) == 2
    with pytest.raises(ValueError):
        Frontier.from_list(7, hashes)
    with pytest.raises(ValueError):
        Frontier.from_list(6, [*hashes, LEAVES[0]])
    with pytest.raises(ValueError):
        Frontier.from_list(6, [hashes[0], hashes[1][:5]])
    with pytest.raises(ValueError):
        Frontier.from_list(-1, [])
    assert Frontier.from_list(6, hashes) == frontier


def test_frontier_root_after_every_append() -> None:
    frontier = Frontier()
    for n, h in enumerate(LEAVES, start=1):
        frontier.append(h)
        assert frontier.size == n
        assert frontier.root() == root_of(LEAVES[:n])
        assert len(frontier.to_list()) == n.bit_count()


# -- properties -------------------------------------------------------------------------------


@SETTINGS
@given(st.data())
def test_inclusion_proofs_verify_and_bit_flips_fail(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, MAX_SIZE), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    leaves = LEAVES[:size]
    root = root_of(leaves)
    proof = inclusion_proof(leaves, index)
    assert len(proof) <= (size - 1).bit_length()
    verify_inclusion(leaves[index], index, size, proof, root)
    assert merkle.root_from_inclusion(leaves[index], index, size, proof) == root

    bits = st.integers(0, HASH_SIZE * 8 - 1)
    with pytest.raises(ProofError):
        verify_inclusion(leaves[index], index, size, proof, _flip(root, data.draw(bits)))
    with pytest.raises(ProofError):
        verify_inclusion(_flip(leaves[index], data.draw(bits)), index, size, proof, root)
    for i in range(len(proof)):
        bad = [*proof[:i], _flip(proof[i], data.draw(bits)), *proof[i + 1 :]]
        with pytest.raises(ProofError):
            verify_inclusion(leaves[index], index, size, bad, root)
    with pytest.raises(ProofError):
        verify_inclusion(leaves[index], index, size, [*proof, root], root)
    if proof:
        with pytest.raises(ProofError):
            verify_inclusion(leaves[index], index, size, proof[:-1], root)


@SETTINGS
@given(st.data())
def test_consistency_proofs_verify_and_bit_flips_fail(data: st.DataObject) -> None:
    size2 = data.draw(st.integers(1, MAX_SIZE), label="size2")
    size1 = data.draw(st.integers(1, size2), label="size1")
    leaves = LEAVES[:size2]
    root1, root2 = root_of(leaves[:size1]), root_of(leaves)
    proof = consistency_proof(leaves, size1)
    assert len(proof) <= 2 * size2.bit_length()
    assert (proof == []) == (size1 == size2)
    verify_consistency(size1, size2, root1, root2, proof)

    bits = st.integers(0, HASH_SIZE * 8 - 1)
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, _flip(root1, data.draw(bits)), root2, proof)
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, root1, _flip(root2, data.draw(bits)), proof)
    for i in range(len(proof)):
        bad = [*proof[:i], _flip(proof[i], data.draw(bits)), *proof[i + 1 :]]
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, root1, root2, bad)
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, root1, root2, [*proof, root2])
    if proof:
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, root1, root2, proof[:-1])


@SETTINGS
@given(n=st.integers(0, MAX_SIZE), extra=st.integers(0, 20))
def test_frontier_matches_root_of_and_round_trips(n: int, extra: int) -> None:
    frontier, nodes = _grow(LEAVES[:n])
    assert frontier.size == n
    assert frontier.root() == root_of(LEAVES[:n])
    assert len(frontier.to_list()) == n.bit_count() <= n.bit_length()
    # Every emitted node is the perfect subtree it claims to be.
    for (level, index), value in nodes.items():
        assert value == root_of(LEAVES[index << level : (index + 1) << level])
    assert len(nodes) == 2 * n - n.bit_count()

    restored = Frontier.from_list(frontier.size, frontier.to_list())
    assert restored == frontier
    assert restored.root() == frontier.root()
    for h in LEAVES[n : n + extra]:
        assert restored.append(h) == frontier.append(h)
    assert restored.to_list() == frontier.to_list()
    assert restored.root() == root_of(LEAVES[: frontier.size])


@SETTINGS
@given(st.data())
def test_tree_proofs_match_list_proofs(data: st.DataObject) -> None:
    stored = data.draw(st.integers(1, MAX_SIZE), label="stored")
    size2 = data.draw(st.integers(1, stored), label="size2")
    size1 = data.draw(st.integers(1, size2), label="size1")
    index = data.draw(st.integers(0, size2 - 1), label="index")
    proofs = _proofs(stored)
    leaves = LEAVES[:size2]
    assert proofs.root(size2) == root_of(leaves)
    assert proofs.root(size1) == root_of(leaves[:size1])
    assert proofs.inclusion_proof(index, size2) == inclusion_proof(leaves, index)
    assert proofs.consistency_proof(size1, size2) == consistency_proof(leaves, size1)


# -- cost -------------------------------------------------------------------------------------


def test_frontier_append_hashes_are_logarithmic(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0

    def counting_node_hash(left: bytes, right: bytes) -> bytes:
        nonlocal calls
        calls += 1
        return node_hash(left, right)

    monkeypatch.setattr(merkle, "node_hash", counting_node_hash)
    n = 2**12
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    frontier = Frontier()
    worst = 0
    for size, h in enumerate(leaves, start=1):
        before = calls
        emitted = frontier.append(h)
        spent = calls - before
        assert spent == len(emitted) - 1
        assert spent <= size.bit_length() + 1  # <= log2(size) + 2
        worst = max(worst, spent)
    assert calls < 2 * n
    assert calls == n - 1  # a perfect tree: one hash per interior node, never recomputed
    assert worst == 12
    monkeypatch.undo()
    assert frontier.root() == root_of(leaves)


def test_tree_proofs_read_polylog_nodes() -> None:
    n = 2**12 + 2**9 + 2**5 + 3
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    source = DictNodes(_grow(leaves)[1])
    proofs = TreeProofs(source)
    bound = n.bit_length() ** 2
    for index in (0, 1, n // 2, n - 4, n - 1):
        source.reads = 0
        proof = proofs.inclusion_proof(index, n)
        assert source.reads <= bound
        verify_inclusion(leaves[index], index, n, proof, proofs.root(n))
    for size1 in (1, 3, 2**12, 2**12 + 1, n - 1):
        source.reads = 0
        proof = proofs.consistency_proof(size1, n)
        assert source.reads <= bound
        verify_consistency(size1, n, proofs.root(size1), proofs.root(n), proof)
