"""Byzantine validators. A faulty node runs an honest machine and host underneath (so it has
plausible messages to corrupt and a real key to sign with), and an `Adversary` rewrites
everything it sends and adds attacks of its own on a timer.

Signed lies (double votes, two blocks for one round, absurd rounds, invalid blocks, false
proofs of lock) are signed with the node's own key: the attacks a real faulty validator can
make. Forgeries (mutated fields without a new signature, garbage) test the other side: that
nothing unverifiable or malformed gets in.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ledger.block import Block, Vote
from ledger.chain import build_block
from nodes.consensus import Action, ConsensusState
from nodes.consensus.messages import MAX_ROUND, Decision, Evidence, Message, Proposal, encode

from .network import Raw
from .world import block_time, tx_pool, validator_id

if TYPE_CHECKING:
    from .node import Node

TICK = 0.3
AMNESIA_PRECOMMIT_SHARE = 0.5  # peers that get an amnesiac's precommit for a value
HISTORY = 300


class Amnesiac(ConsensusState):
    """The machine of an "amnesia" validator: it forgets its lock and its valid value, so it
    prevotes any valid proposal and proposes fresh blocks. Its adversary sends each of its
    precommits for a value to some peers and nil to the others, so one honest node may
    decide while the others move on: the situation in which only locks keep them from
    deciding something else."""

    def _may_prevote(self, block: Block, pol_round: int) -> bool:
        return True

    def _start_round(self, round_: int) -> list[Action]:
        self.valid_value, self.valid_round = None, -1
        return super()._start_round(round_)

    def _rule_decide(self) -> list[Action] | None:
        """Lingers: decides only when a peer hands it a Decision, so it is still proposing
        fresh blocks at a height where some honest nodes have decided and others have not."""
        return None


def _random_hash(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


class Adversary:
    def __init__(self, node: Node, behaviours: tuple[str, ...], rng: random.Random, n: int):
        self.node, self.behaviours, self.rng, self.n = node, frozenset(behaviours), rng, n
        self.peers = [i for i in range(n) if i != node.index]
        self.history: list[Message] = []
        self.ticking = bool(self.behaviours & {"garbage", "huge_rounds", "replay"})

    def _has(self, behaviour: str) -> bool:
        return behaviour in self.behaviours

    @property
    def silent(self) -> bool:
        return self._has("silent")

    # -- rewriting what the honest machine sends ----------------------------------------
    def outgoing(self, message: Message) -> list[tuple[int, Any]]:
        if self.silent:
            return []
        ours = isinstance(message, Proposal) and message.proposer == self.node.id
        if ours and self._has("bad_block") and self.rng.random() < 0.7:
            message = self._bad_proposal(message)  # type: ignore[arg-type]
        plan: list[tuple[int, Any]] = [(dst, message) for dst in self.peers]
        if self._amnesiac_precommit(message):  # some peers may decide, the others move on
            nil = replace(message, block_hash=None).signed(self.node.key)
            share = AMNESIA_PRECOMMIT_SHARE
            plan = [(dst, message if self.rng.random() < share else nil) for dst in self.peers]
        elif isinstance(message, Vote) and self._has("double_vote"):
            plan = self._split(message, self._alt_vote(message))
        elif ours and self._has("equivocate"):
            alt = self._alt_proposal(message)  # type: ignore[arg-type]
            if alt is not None:
                plan = self._split(message, alt)
        if self._has("selective"):
            plan = [item for item in plan if self.rng.random() < 0.6]
        if self._has("mutate"):
            plan += [(dst, self._mutated(m)) for dst, m in plan if self.rng.random() < 0.3]
        return plan

    def _amnesiac_precommit(self, message: Message) -> bool:
        return (
            self._has("amnesia")
            and isinstance(message, Vote)
            and message.type == "precommit"
            and message.block_hash is not None
        )

    def _split(self, a: Message, b: Message) -> list[tuple[int, Any]]:
        """Each peer gets one version, the other, or both in either order."""
        plan: list[tuple[int, Any]] = []
        for dst in self.peers:
            choice = self.rng.randrange(4)
            if choice == 0:
                plan.append((dst, a))
            elif choice == 1:
                plan.append((dst, b))
            else:
                first, second = (a, b) if choice == 2 else (b, a)
                plan += [(dst, first), (dst, second)]
        return plan

    def _alt_vote(self, vote: Vote) -> Vote:
        other: str | None
        if vote.block_hash is None:
            seen = [p.block.hash for p in self._proposals_seen(vote.height)]
            other = self.rng.choice(seen) if seen else _random_hash(self.rng)
        else:
            other = None if self.rng.random() < 0.5 else _random_hash(self.rng)
        return replace(vote, block_hash=other).signed(self.node.key)

    def _proposals_seen(self, height: int) -> list[Proposal]:
        return [m for m in self.history if isinstance(m, Proposal) and m.height == height]

    def _block(self, txs: list[Any], evidence: list[dict[str, Any]] | None = None) -> Block:
        store = self.node.store
        chain = store.chain
        return build_block(
            chain,
            txs=txs,
            time=block_time(self.node.sim.clock.now + 0.001, chain.head_time),
            proposer=self.node.id,
            last_commit=store.certs[-1] if store.certs else None,
            evidence=evidence,
        )

    def _alt_proposal(self, proposal: Proposal) -> Proposal | None:
        """Another block for the same round, claiming no proof of lock."""
        if self.node.store.chain.height + 1 != proposal.height:
            return None
        alt = self._block(list(proposal.block.txs[:-1]))
        if alt.hash == proposal.block.hash:
            return None
        return replace(proposal, pol_round=-1, block=alt).signed(self.node.key)

    def _bad_proposal(self, proposal: Proposal) -> Proposal:
        """A well-formed, properly signed proposal of a block the rules must reject."""
        store = self.node.store
        if store.chain.height + 1 != proposal.height:
            return proposal
        fresh = [tx for tx in tx_pool()[:200] if tx.id not in store.tx_ids][:1]
        kind = self.rng.randrange(4)
        if kind == 0 and fresh:  # a transaction whose payload no longer matches its signature
            block = self._block([replace(fresh[0], payload={"seq": -1, "forged": True})])
        elif kind == 1 and store.blocks and store.blocks[-1].txs:  # replay a committed tx
            block = self._block([store.blocks[-1].txs[0]])
        elif kind == 2:  # evidence that proves nothing (the same vote twice)
            vote = Vote(proposal.chain_id, proposal.height, 0, "prevote", None, self.node.id)
            signed = vote.signed(self.node.key).to_json()
            block = self._block(
                [], [{"type": "duplicate_vote", "vote_a": signed, "vote_b": signed}]
            )
        else:  # a block that does not carry the previous commit
            chain = store.chain
            block = build_block(
                chain,
                txs=[],
                time=block_time(self.node.sim.clock.now, chain.head_time),
                proposer=self.node.id,
                last_commit=None,
            )
            if chain.height == 0:
                return proposal
        return replace(proposal, pol_round=-1, block=block).signed(self.node.key)

    # -- forgeries ---------------------------------------------------------------------
    def _mutated(self, message: Message) -> Raw:
        """The message as JSON with one field changed and the old signature kept (or, for a
        proposal's pol_round, re-signed: a lying proof-of-lock claim)."""
        rng = self.rng
        data = json.loads(json.dumps(encode(message)))  # a copy: never touch shared objects
        body = data["body"]
        field = rng.choice(sorted(body))
        value = body[field]
        if isinstance(message, Proposal) and field == "pol_round" and message.round > 0:
            lie = replace(message, pol_round=rng.randrange(message.round)).signed(self.node.key)
            return Raw(encode(lie))
        if isinstance(value, bool) or value is None:
            body[field] = _random_hash(rng)
        elif isinstance(value, int):
            body[field] = rng.choice((value + 1, value - 1, -1, 2**62, str(value)))
        elif isinstance(value, str):
            body[field] = rng.choice(
                ("", value[::-1], value + "x", validator_id(rng.randrange(self.n)))
            )
        elif isinstance(value, dict):
            if "header" in value and rng.random() < 0.5:  # new header: signature breaks
                header = value["header"]
                header["time"] = rng.choice(
                    (header["time"].replace("Z", "+00:00"), "2020-01-01T00:00:00.000Z")
                )
            elif "header" in value:  # same header, other body: the signature still holds
                value["evidence"] = [{"type": "duplicate_vote"}]
            elif value:
                value.pop(rng.choice(sorted(value)))
        elif isinstance(value, list):
            body[field] = value[:-1] if value else [{"junk": True}]
        if rng.random() < 0.1:
            data["kind"] = rng.choice(("vote", "proposal", "decision", "commit"))
        return Raw(data)

    # -- attacks on a timer ------------------------------------------------------------
    def observe(self, message: Message) -> None:
        if isinstance(message, Decision | Evidence):
            return
        if len(self.history) < HISTORY:
            self.history.append(message)
        else:
            self.history[self.rng.randrange(HISTORY)] = message

    def tick(self) -> list[tuple[int, Any]]:
        machine = self.node.machine
        if machine is None:
            return []
        plan: list[tuple[int, Any]] = []
        if self._has("garbage"):
            plan += [(self.rng.choice(self.peers), self._garbage()) for _ in range(2)]
        if self._has("huge_rounds"):
            plan += [(dst, self._huge_vote(machine.height, machine.round)) for dst in self.peers]
            proposal = self._huge_proposal(machine.height, machine.round)
            if proposal is not None:
                plan += [(dst, proposal) for dst in self.peers]
        if self._has("replay") and self.history:
            for _ in range(3):
                plan.append((self.rng.choice(self.peers), self.rng.choice(self.history)))
        return plan

    def _huge_round(self, current: int) -> int:
        return self.rng.choice(
            (current + self.rng.randint(2, 40), self.rng.randint(10**6, MAX_ROUND), MAX_ROUND)
        )

    def _huge_vote(self, height: int, current: int) -> Any:
        if self.rng.random() < 0.2:  # beyond what the wire format allows at all
            vote = Vote(self.node.store.chain.chain_id, height, 0, "prevote", None, self.node.id)
            data = encode(vote.signed(self.node.key))
            data["body"]["round"] = 2**60
            return Raw(data)
        type_ = self.rng.choice(("prevote", "precommit"))
        block_hash = None if self.rng.random() < 0.5 else _random_hash(self.rng)
        vote = Vote(
            self.node.store.chain.chain_id,
            height,
            self._huge_round(current),
            type_,
            block_hash,
            self.node.id,
        )
        return vote.signed(self.node.key)

    def _huge_proposal(self, height: int, current: int) -> Proposal | None:
        """A proposal for an absurd round in which this node really is the proposer."""
        chain = self.node.store.chain
        if chain.height + 1 != height:
            return None
        base = min(self._huge_round(current), MAX_ROUND - self.n)
        round_ = base + (self.node.index - height - base) % self.n
        block = self._block([])
        return Proposal(chain.chain_id, height, round_, -1, block, self.node.id).signed(
            self.node.key
        )

    def _garbage(self) -> Raw:
        rng = self.rng
        options: list[Any] = [
            bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64))),
            "{not json",
            "[" * 20000 + "]" * 20000,
            {"kind": "vote"},
            {"kind": "vote", "body": rng.randint(-5, 5)},
            [1, 2, 3],
            {"kind": "proposal", "body": {"chain_id": 7, "height": "1", "round": None}},
            {"kind": "decision", "body": {"block": [], "certificate": "x"}},
            encode(
                Vote(
                    self.node.store.chain.chain_id,
                    max(1, self.node.store.chain.height + 1),
                    0,
                    "prevote",
                    None,
                    rng.choice(("mallory", self.node.id)),
                    bytes(rng.getrandbits(8) for _ in range(64)),
                )
            ),
        ]
        return Raw(rng.choice(options))
