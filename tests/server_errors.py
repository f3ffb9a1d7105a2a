"""Schemathesis over the app's own OpenAPI document, in process (ASGI) and seeded: each
operation gets generated valid and invalid input, and no answer may be a 5xx."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error


def documented_operations(app: Any) -> list[Any]:
    """Every operation `app` documents at /openapi.json."""
    api = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in api.get_all_operations()]


def assert_no_server_error(operation: Any, examples: int) -> None:
    """`examples` derandomized cases of `operation`, none answered with a 5xx."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def no_5xx(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=[not_a_server_error])

    no_5xx()
