"""The steps of a round."""

from __future__ import annotations

from enum import IntEnum


class Step(IntEnum):
    """Steps of a round, in order. COMMIT: the height is decided and the machine waits for the
    host to hand over the next chain state."""

    PROPOSE = 0
    PREVOTE = 1
    PRECOMMIT = 2
    COMMIT = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: object) -> Step:
        if not isinstance(label, str) or label.upper() not in cls.__members__:
            raise ValueError(f"unknown step {label!r}")
        return cls[label.upper()]
