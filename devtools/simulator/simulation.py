"""One seeded run: n validators on the virtual network and clock, the fault plan, and the
invariants checked all the way. `run(seed, n)` is deterministic: the same seed (and code)
takes the same path in any process, which the trace digest proves.

Randomness comes only from `random.Random` streams derived from the seed (one per purpose,
so drawing the plan never shifts the network's draws).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ledger.block import Block, CommitCertificate, Vote
from nodes.consensus import Config, ConsensusState
from nodes.consensus.messages import Message

from .byzantine import TICK, Adversary, Amnesiac
from .clock import Clock
from .faults import FaultPlan
from .invariants import Checker, Violation
from .network import Network
from .node import Node
from .trace import Trace, describe
from .world import genesis

#: Timeouts of the simulated cluster: well above the healed network's delays (<= 0.1 s).
SIM_CONFIG = Config(
    timeout_propose=1.0,
    timeout_propose_delta=0.25,
    timeout_prevote=0.5,
    timeout_prevote_delta=0.25,
    timeout_precommit=0.5,
    timeout_precommit_delta=0.25,
)
HEIGHTS_AFTER_HEAL = 3
LIVENESS_BOUND = 90.0  # virtual seconds after heal for every honest node to get there
MAX_EVENTS = 400_000


@dataclass
class Result:
    seed: int
    n: int
    f: int
    variant: str
    plan: dict[str, Any]
    violations: list[Violation]
    heights: dict[str, int]
    time: float
    heal: float
    events: int
    digest: str
    stats: dict[str, int] = field(default_factory=dict)
    evidence_delay: dict[str, int] = field(default_factory=dict)
    settle_time: float | None = None  # virtual seconds from heal to the liveness target

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "n": self.n,
            "variant": self.variant,
            "ok": self.ok,
            "violations": [str(v) for v in self.violations],
            "heights": self.heights,
            "virtual_time": round(self.time, 3),
            "events": self.events,
            "digest": self.digest,
            "plan": self.plan,
        }


class Simulation:
    def __init__(
        self,
        seed: int,
        n: int,
        *,
        machine_class: type[ConsensusState] = ConsensusState,
        variant: str = "correct",
        plan: FaultPlan | None = None,
        config: Config = SIM_CONFIG,
        heights_after_heal: int = HEIGHTS_AFTER_HEAL,
        check_locking: bool = True,
    ) -> None:
        self.seed, self.n, self.f = seed, n, (n - 1) // 3
        self.machine_class, self.variant, self.config = machine_class, variant, config
        self.heights_after_heal = heights_after_heal
        self.plan = plan or FaultPlan.draw(random.Random(f"{seed}/plan"), n, self.f)
        self.clock = Clock()
        self.trace = Trace()
        self.stats: Counter[str] = Counter()
        self.validity: dict[tuple[str, int], tuple[Block, str | None]] = {}
        chain = genesis(n)
        self.checker = Checker(chain, check_locking=check_locking)
        self.network = Network(self.clock, self.plan, random.Random(f"{seed}/net"), self._deliver)
        self.nodes = [Node(self, i, chain) for i in range(n)]
        adversary_rng = random.Random(f"{seed}/byzantine")
        for index, behaviours in self.plan.byzantine.items():
            node = self.nodes[index]
            node.honest = False
            node.adversary = Adversary(node, behaviours, adversary_rng, n)
            node.machine_class = Amnesiac if "amnesia" in behaviours else ConsensusState
        self.honest = [node for node in self.nodes if node.honest]
        self.target: int | None = None
        self.settled_at: float | None = None

    # -- wiring used by the nodes -----------------------------------------------------------
    def broadcast(self, node: Node, message: Message) -> None:
        self.trace.add(self.clock.now, "send", node.index, describe(message))
        if node.adversary is not None:
            for dst, payload in node.adversary.outgoing(message):
                self._send(node.index, dst, payload)
            return
        if isinstance(message, Vote):
            self.checker.on_wire(message)
        for dst in range(self.n):
            if dst != node.index:
                self.network.send(node.index, dst, message)

    def send(self, node: Node, dst: int, message: Message) -> None:
        if node.adversary is not None and node.adversary.silent:
            return
        self.network.send(node.index, dst, message)

    def _send(self, src: int, dst: int, payload: Any) -> None:
        """A faulty node's message: its votes may complete someone's proof of lock."""
        if isinstance(payload, Vote):
            self.checker.on_wire(payload)
        self.network.send(src, dst, payload)

    def committed(self, node: Node, block: Block, cert: CommitCertificate) -> None:
        self.checker.on_commit(node.id, block, cert, self.clock.now)

    def crashed(self, node: Node) -> None:
        """The node just crashed: bring it back after its planned downtime, by heal time."""
        crash = next(c for c in self.plan.crashes if c.node == node.index)
        self.clock.at(min(self.clock.now + crash.down_for, self.plan.heal), self._restart, node)

    def _deliver(self, dst: int, src: int, payload: Any) -> None:
        node = self.nodes[dst]
        if node.up:
            self.trace.add(self.clock.now, "recv", dst, f"{describe(payload)} from n{src}")
            node.deliver(src, payload)

    # -- fault events -----------------------------------------------------------------------
    def _crash(self, index: int) -> None:
        node = self.nodes[index]
        crash = next(c for c in self.plan.crashes if c.node == index)
        if not node.up:
            return
        if crash.mid_batch is not None:  # crash inside the node's next batches of actions
            node.crash_after = crash.mid_batch
            self.clock.after(0.5, self._force_crash, index, node.epoch)
            return
        node.crash()
        self.crashed(node)

    def _force_crash(self, index: int, epoch: int) -> None:
        node = self.nodes[index]
        if node.up and node.epoch == epoch and node.crash_after is not None:
            node.crash()
            self.crashed(node)

    def _restart(self, node: Node) -> None:
        if not node.up:
            node.boot()

    def _byzantine_tick(self, node: Node) -> None:
        for dst, payload in node.adversary.tick():
            self._send(node.index, dst, payload)
        self.clock.after(TICK, self._byzantine_tick, node)

    def _heal(self) -> None:
        self.trace.add(self.clock.now, "heal", -1)
        self.target = self._honest_height() + self.heights_after_heal

    def _honest_height(self) -> int:
        return max(node.store.chain.height for node in self.honest)

    # -- the run --------------------------------------------------------------------------
    def run(self) -> Result:
        for node in self.nodes:
            node.boot()
            if node.adversary is not None and node.adversary.ticking:
                self.clock.after(TICK, self._byzantine_tick, node)
        for crash in self.plan.crashes:
            self.clock.at(crash.at, self._crash, crash.node)
        self.clock.at(self.plan.heal, self._heal)
        deadline = self.plan.heal + LIVENESS_BOUND
        events = 0
        while self.checker.violations == [] and not self._settled():
            step = self.clock.pop()
            if step is None or self.clock.now > deadline:
                break
            handler, args = step
            handler(*args)
            events += 1
            if events >= MAX_EVENTS:
                self.checker.violations.append(
                    Violation("liveness", self.clock.now, f"event budget of {MAX_EVENTS} spent")
                )
        if not self.checker.violations and not self._settled():
            self.checker.violations.append(self._liveness_failure())
        for node in self.honest:
            if node.machine is not None:
                self.checker.on_guard(node.id, node.machine.guard_conflicts, self.clock.now)
        return self._result(events)

    def _settled(self) -> bool:
        if self.target is None:
            return False
        if all(node.store.chain.height >= self.target for node in self.honest):
            if self.settled_at is None:
                self.settled_at = self.clock.now
            return True
        return False

    def _liveness_failure(self) -> Violation:
        states = ", ".join(
            f"{node.id}@h{node.store.chain.height}"
            + (f"/r{node.machine.round}/{node.machine.step.label}" if node.machine else "/down")
            for node in self.honest
        )
        return Violation(
            "liveness",
            self.clock.now,
            f"honest nodes did not all reach height {self.target} within {LIVENESS_BOUND}s "
            f"of healing: {states}",
        )

    def _result(self, events: int) -> Result:
        stats = Counter(self.stats)
        for node in self.honest:
            if node.machine is not None:
                stats.update({f"dropped.{k}": v for k, v in node.machine.dropped.items()})
        stats["sent"] = self.network.sent
        stats["lost"] = self.network.lost
        delays = {}
        for key, committed_at in self.checker.offences.items():
            detected = self.checker.detected.get(key)
            if detected is not None:
                delays[key] = committed_at - detected
        return Result(
            seed=self.seed,
            n=self.n,
            f=self.f,
            variant=self.variant,
            plan=self.plan.summary(),
            violations=list(self.checker.violations),
            heights={node.id: node.store.chain.height for node in self.nodes},
            time=self.clock.now,
            heal=self.plan.heal,
            events=events,
            digest=self.trace.digest(),
            stats=dict(stats),
            evidence_delay=delays,
            settle_time=None if self.settled_at is None else self.settled_at - self.plan.heal,
        )


def run(seed: int, n: int, **kwargs: Any) -> Result:
    return Simulation(seed, n, **kwargs).run()
