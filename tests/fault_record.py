"""What the fault suite measured, kept at module level so that the terminal summary
(tests/conftest.py) can print it whether or not pytest captures output."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FaultRecord:
    #: (fault name, longest commit gap in seconds, a note on what was observed)
    faults: list[tuple[str, float, str]] = field(default_factory=list)
    acknowledged: int = 0
    resubmitted: int = 0
    lost: int = 0
    equivocations: int = 0

    def add(self, name: str, gap: float, note: str = "") -> None:
        self.faults.append((name, gap, note))

    def line(self) -> str:
        gaps = ", ".join(
            f"{name} {gap:.1f} s" + (f" ({note})" if note else "")
            for name, gap, note in self.faults
        )
        return (
            f"fault suite: {len(self.faults)} faults injected, {self.acknowledged} acknowledged "
            f"({self.resubmitted} resubmitted on reading unknown), {self.lost} lost, "
            f"{self.equivocations} equivocations, longest commit gap: {gaps or 'none'}"
        )


RECORD = FaultRecord()
