"""The validator set: who votes, with which key, and what a quorum is.

Validators have equal power (genesis decides who they are). With n = 3f + 1 validators,
a quorum is more than two thirds: 2f + 1 of n.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import codec
from .crypto import PublicKey
from .errors import SchemaError


@dataclass(frozen=True)
class Validator:
    id: str
    public_key: PublicKey
    org: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "org": self.org, "public_key": self.public_key.to_json()}

    @classmethod
    def from_json(cls, data: Any) -> Validator:
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise SchemaError("validator: expected an object with a string 'id'")
        return cls(data["id"], PublicKey.from_json(data.get("public_key")), data.get("org", ""))


@dataclass(frozen=True)
class ValidatorSet:
    validators: tuple[Validator, ...]

    def __post_init__(self) -> None:
        ids = [v.id for v in self.validators]
        if not ids:
            raise SchemaError("validator set is empty")
        if len(set(ids)) != len(ids):
            raise SchemaError("validator set has duplicate ids")

    @property
    def size(self) -> int:
        return len(self.validators)

    @property
    def quorum(self) -> int:
        """Smallest count that is more than two thirds of the set."""
        return self.size * 2 // 3 + 1

    @property
    def max_faulty(self) -> int:
        """f: the most Byzantine validators the set tolerates."""
        return (self.size - 1) // 3

    def get(self, validator_id: str) -> Validator | None:
        return self._by_id().get(validator_id)

    def _by_id(self) -> dict[str, Validator]:
        cached = self.__dict__.get("_index")
        if cached is None:
            cached = {v.id: v for v in self.validators}
            object.__setattr__(self, "_index", cached)
        return cached

    def proposer(self, height: int, round_: int) -> Validator:
        """Deterministic round-robin rotation over height and round."""
        return self.validators[(height + round_) % self.size]

    def to_json(self) -> list[dict[str, Any]]:
        return [v.to_json() for v in self.validators]

    @classmethod
    def from_json(cls, data: Any) -> ValidatorSet:
        if not isinstance(data, list):
            raise SchemaError("validators: expected a list")
        return cls(tuple(Validator.from_json(v) for v in data))

    def hash(self) -> str:
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = codec.digest("validators", self.to_json()).hex()
            object.__setattr__(self, "_hash", cached)
        return cached
