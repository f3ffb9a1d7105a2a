"""The fault schedule of one run, drawn from its seed before the run starts.

Until `heal` the network is hostile: random delays (a slow tail reorders messages), loss,
duplication, partitions that come and go, and honest nodes that crash (sometimes half-way
through executing a batch of actions) and restart from what they persisted. From `heal` on
the network is synchronous (small delays, nothing lost) and every honest node is up, so the
liveness invariant applies. Byzantine validators (at most f) misbehave for the whole run.

Plans come in three profiles: calm (only the Byzantine nodes misbehave), lock stress (f
lock-forgetting validators and lossy, slow voting: the conditions under which only the
locking rules prevent a fork), and the general mix of everything.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

#: Byzantine behaviours; a Byzantine node gets one to three (silent stands alone).
BEHAVIOURS = (
    "silent",  # sends nothing at all
    "double_vote",  # signs a second, conflicting vote; peers get one, the other or both
    "equivocate",  # as proposer, signs two different blocks for one round
    "amnesia",  # forgets its lock: prevotes anything, proposes fresh blocks, splits votes
    "selective",  # sends each message to a random subset only
    "garbage",  # sends undecodable and ill-typed messages
    "huge_rounds",  # signs votes and proposals for absurd rounds
    "mutate",  # sends copies of its messages with fields changed
    "replay",  # re-sends old messages it has seen
    "bad_block",  # proposes blocks with forged, duplicate or invalid content
)


@dataclass(frozen=True)
class Partition:
    start: float
    end: float
    side: frozenset[int]  # nodes on one side; the rest are on the other
    one_way: bool = False  # only messages from `side` to the rest are lost

    def splits(self, src: int, dst: int, now: float) -> bool:
        if not self.start <= now < self.end or (src in self.side) == (dst in self.side):
            return False
        return not self.one_way or src in self.side


@dataclass(frozen=True)
class Crash:
    node: int
    at: float
    down_for: float
    #: crash after this many more actions of the node (None: between events)
    mid_batch: int | None


@dataclass(frozen=True)
class FaultPlan:
    heal: float
    loss: float
    duplicate: float
    mean_delay: float
    slow: float  # share of messages on the slow tail before heal
    slow_max: float
    slow_commit: float  # share of precommits and decisions on the slow tail before heal
    value_loss: float  # extra loss of votes for a value before heal
    decision_loss: float  # loss of catch-up decisions before heal: laggards stay behind
    post_heal_delay: float  # delays after heal are uniform in [1 ms, this]
    partitions: tuple[Partition, ...]
    crashes: tuple[Crash, ...]
    byzantine: dict[int, tuple[str, ...]]

    @classmethod
    def draw(cls, rng: random.Random, n: int, f: int) -> FaultPlan:
        byzantine = {
            node: _behaviours(rng) for node in sorted(rng.sample(range(n), rng.randint(0, f)))
        }
        honest = [i for i in range(n) if i not in byzantine]
        profile = rng.random()
        if profile < 0.1:  # a calm run: only the Byzantine nodes misbehave
            return cls(0.0, 0.0, 0.0, 0.02, 0.0, 0.0, 0.0, 0.0, 0.0, 0.05, (), (), byzantine)
        if profile < 0.25 and f:  # lock stress: the conditions under which only locks save us
            byzantine = {node: ("amnesia",) for node in sorted(rng.sample(range(n), f))}
            return cls(
                heal=rng.uniform(6.0, 14.0),
                loss=0.0,
                duplicate=0.0,
                mean_delay=rng.choice((0.03, 0.1)),
                slow=0.1,
                slow_max=2.0,
                slow_commit=0.0,
                value_loss=rng.choice((0.2, 0.3)),
                decision_loss=rng.choice((0.5, 0.9)),
                post_heal_delay=0.05,
                partitions=(),
                crashes=(),
                byzantine=byzantine,
            )
        heal = rng.uniform(1.0, 14.0)
        partitions = []
        for _ in range(rng.choice((0, 0, 1, 2, 3))):
            start = rng.uniform(0.0, heal)
            end = min(heal, start + rng.uniform(0.5, 6.0))
            side = frozenset(rng.sample(range(n), rng.randint(1, n // 2)))
            partitions.append(Partition(start, end, side, one_way=rng.random() < 0.5))
        crashes = []
        for node in rng.sample(honest, rng.choice((0, 0, 1, 1, 2))):
            at = rng.uniform(0.0, max(0.0, heal - 1.0))
            down_for = rng.uniform(0.1, 4.0)
            mid_batch = rng.randint(1, 4) if rng.random() < 0.5 else None
            crashes.append(Crash(node, at, down_for, mid_batch))
        return cls(
            heal=heal,
            loss=rng.choice((0.0, 0.0, 0.05, 0.1, 0.2, 0.35)),
            duplicate=rng.choice((0.0, 0.02, 0.1)),
            # up to the order of the first rounds' timeouts: nodes then see different quorums
            mean_delay=rng.choice((0.01, 0.03, 0.1, 0.25, 0.4)),
            slow=rng.choice((0.0, 0.05, 0.2)),
            slow_max=rng.uniform(0.5, 4.0),
            slow_commit=rng.choice((0.0, 0.0, 0.3, 0.6)),
            value_loss=rng.choice((0.0, 0.0, 0.2, 0.4, 0.6)),
            decision_loss=rng.choice((0.0, 0.5, 0.9, 1.0)),
            post_heal_delay=rng.uniform(0.01, 0.1),
            partitions=tuple(partitions),
            crashes=tuple(crashes),
            byzantine=byzantine,
        )

    def summary(self) -> dict[str, object]:
        return {
            "heal": round(self.heal, 3),
            "loss": self.loss,
            "duplicate": self.duplicate,
            "slow": self.slow,
            "slow_commit": self.slow_commit,
            "value_loss": self.value_loss,
            "decision_loss": self.decision_loss,
            "partitions": len(self.partitions),
            "crashes": [c.node for c in self.crashes],
            "byzantine": {str(k): list(v) for k, v in self.byzantine.items()},
        }


def _behaviours(rng: random.Random) -> tuple[str, ...]:
    """Silence stands alone; amnesia, the attack on locks, is drawn more often than the rest
    because breaking a lock needs the rarest network conditions to pay off."""
    if rng.random() < 0.2:
        return ("silent",)
    drawn = set(rng.sample(BEHAVIOURS[1:], rng.randint(1, 3)))
    if rng.random() < 0.4:
        drawn.add("amnesia")
    return tuple(sorted(drawn))
