"""What is wrong with an EPCIS document, said so that a producer can fix it: every problem
names the field (a JSON path), the rule it breaks, and why."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.errors import SchemaError

#: At most this many problems are reported for one document or event; the rest are counted.
MAX_REPORTED = 20


@dataclass(frozen=True)
class Problem:
    path: str  # where, e.g. "epcisBody.eventList[3].bizStep"
    rule: str  # which rule, e.g. "cbv-bare-word" or "schema:enum"
    message: str  # what is wrong, in words

    def __str__(self) -> str:
        return f"{self.path}: {self.message} [rule {self.rule}]"

    def to_json(self) -> dict[str, str]:
        return {"field": self.path, "rule": self.rule, "message": self.message}


class EpcisValidationError(SchemaError):
    """An EPCIS document or event breaks the EPCIS 2.0 / CBV 2.0 rules."""

    code = "invalid_epcis"

    def __init__(self, problems: list[Problem]) -> None:
        assert problems, "an EpcisValidationError needs at least one problem"
        self.problems = problems[:MAX_REPORTED]
        first = str(problems[0])
        more = len(problems) - 1
        super().__init__(first + (f" (and {more} more problem{'s' * (more > 1)})" if more else ""))

    def __reduce__(self) -> tuple:
        return (EpcisValidationError, (self.problems,))  # picklable for worker processes

    @property
    def field(self) -> str:
        return self.problems[0].path

    def within(self, where: str) -> str:
        """The message said from `where` (an event's path, or a label naming the event):
        a report that already names the event does not repeat its path."""
        first = self.problems[0]
        inner = relative_path(first.path, where)
        more = len(self.problems) - 1
        return (
            (f"{inner}: " if inner else "")
            + f"{first.message} [rule {first.rule}]"
            + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")
        )

    @property
    def rule(self) -> str:
        return self.problems[0].rule


def join_path(base: str, *parts: str | int) -> str:
    """JSON path text: join_path("a", "b", 2) == "a.b[2]"."""
    text = base
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text = f"{text}.{part}" if text else part
    return text


def relative_path(path: str, where: str) -> str:
    """`path` from inside `where`: relative_path("a[0].b", "a[0]") == "b"; a path outside
    it is kept whole."""
    if path == where:
        return ""
    if where and path.startswith(where) and path[len(where)] in ".[":
        return path[len(where) :].removeprefix(".")
    return path


def relabel(error: Exception, where: str) -> Exception:
    """Say where in a larger request an error happened ("transactions[3]: …"), in place."""
    from ledger.errors import LedgerError

    if isinstance(error, EpcisValidationError):
        moved = [Problem(join_path(where, p.path), p.rule, p.message) for p in error.problems]
        EpcisValidationError.__init__(error, moved)
    elif isinstance(error, LedgerError):
        error.message = f"{where}: {error.message}"
        error.args = (error.message,)
    return error
