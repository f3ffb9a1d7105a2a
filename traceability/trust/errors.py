"""The one refusal of the trust rules."""

from __future__ import annotations

from ledger.errors import NotPermittedError


class RuleViolation(NotPermittedError):
    """A transaction breaks a trust rule; the message names the rule and the figures."""

    code = "rule_violation"

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{rule} rule: {message}")
        self.rule = rule
