"""Serialised product codes: GS1 Digital Link URIs, keyed serials, issued batches, scans.

`gtin`, `digital_link`, `keys`, `attributes` parse and format identifiers (`compression`
decompresses compressed Digital Links); `serials` and
`sealing` derive and check serials; `batch` is the ledger record of one issued batch;
`observations` (the ledger's record of consumers' scans and reports), `outbox` (a node's
own until committed), `scanbook` (the committed ones, indexed), `regions` and `copies`
keep scans and judge them; `journey` and `links` build what
the resolver shows. Drawing codes and the resolver's pages are in `api/codes/`; the design
is in docs/codes.md.
"""

from __future__ import annotations

from ledger.errors import LedgerError

from ..epcis.problems import Problem


class CodeError(LedgerError):
    """A code, GTIN, lot, serial or data attribute that breaks a GS1 rule (HTTP 400).

    Carries one `Problem` so that the API's error body names the field and the rule."""

    code = "invalid_code"

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(f"{field}: {message} [rule {rule}]")
        self.problems = [Problem(field, rule, message)]
        self.detail = message

    def __reduce__(self) -> tuple:
        problem = self.problems[0]
        return (CodeError, (problem.path, problem.rule, problem.message))

    @property
    def field(self) -> str:
        return self.problems[0].path

    @property
    def rule(self) -> str:
        return self.problems[0].rule
