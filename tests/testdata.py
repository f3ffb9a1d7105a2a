"""The shared test data beside the checkout (`../shared`, or PARKTRACE_SHARED): GS1's
official EPCIS 2.0 examples, schema and REST binding, and the RFC 6962 vectors. The data
is always there (CI clones the repository beside it), so a test that needs it fails when
it is missing rather than skipping."""

from __future__ import annotations

import os
from pathlib import Path

SHARED = Path(os.environ.get("PARKTRACE_SHARED") or Path(__file__).resolve().parents[2] / "shared")
EPCIS_EXAMPLES = SHARED / "testdata" / "epcis" / "JSON"
EPCIS_EXAMPLE_FILES = sorted(EPCIS_EXAMPLES.rglob("*.jsonld"))
RFC6962 = SHARED / "testdata" / "rfc6962"
assert EPCIS_EXAMPLE_FILES, f"no EPCIS examples under {EPCIS_EXAMPLES} (set PARKTRACE_SHARED)"
