"""Trust rules: what a signature cannot prove, the ledger checks.

For goods of the rule set's product classes (genesis `rules`, versioned by `rules.set`):

- **plots** (`plots`): a producer's plots, registered with an M-of-N approval, inside the
  GI zone of their crop;
- **origin**: a commissioning or harvest of a GI product names a registered plot of the
  signer (by `pt:plot` or its readPoint), happens there (the plot's GLN, or a `geo:` point
  inside it), and the plot's harvest per season stays within its registered yield × the
  tolerance;
- **mass balance**: a transformation makes at most its inputs × the classes' yield
  factors; aggregations pack at most the units commissioned; a lot ships, sells or goes
  into a transformation at most what it holds (received − shipped − consumed), and
  receives at most what is in transit;
- **sequence**: nothing ships, sells, transforms or is packed before it was commissioned
  or received on the chain; a unit sells once; a recalled identifier sees recall handling
  only; an eventTime far ahead of its record time is refused, one long before it flagged;
- **cold chain**: a sensor reading outside the class's temperature range is recorded but
  marks the goods non-conformant and raises an alert.

Every rule reads only the chain (the block time, not a clock), so every node agrees.
"""

from .errors import RuleViolation
from .plots import PLOT_TX_TYPE, Plot
from .ruleset import RuleSet, park_rules, parse_ruleset
from .state import RULES_TX_TYPE, TRUST_TYPES, TrustBlock, TrustState, check_trust_shape

__all__ = [
    "PLOT_TX_TYPE",
    "RULES_TX_TYPE",
    "TRUST_TYPES",
    "Plot",
    "RuleSet",
    "RuleViolation",
    "TrustBlock",
    "TrustState",
    "check_trust_shape",
    "park_rules",
    "parse_ruleset",
]
