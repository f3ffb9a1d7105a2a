"""What an EPCIS event names, as the trust rules count it: each identifier by its
canonical key, with its product class (from the GTIN) and, for a quantity element, its
amount in the class's unit (grams for a mass class, units for a count class).

A quantity in a unit that is not the class's measure (a plot's area in hectares on a
commissioning of fruit) names the lot without an amount. An instance EPC of a GTIN that
also has a quantity element in the same list is taken as part of that quantity (GS1
examples list a few sample EPCs beside the lot's quantity), not counted again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from ledger.identifiers import MAX_IDENTIFIER

from ..identifiers import canonical_key
from .ruleset import ProductClass, RuleSet

_GTIN_KEY = re.compile(r"^https://id\.gs1\.org/01/(\d{14})(?:/(10|21)/.+)?$")
_SSCC_KEY = re.compile(r"^https://id\.gs1\.org/00/\d{18}$")
#: grams per unit of measure (UN/ECE Recommendation 20 codes, as EPCIS uses them)
MASS_UOMS = {
    "KGM": Decimal(1000),
    "GRM": Decimal(1),
    "TNE": Decimal(1_000_000),
    "MGM": Decimal("0.001"),
}
COUNT_UOMS = frozenset({"EA", "H87", "C62"})
LISTS = {
    "objects": ("epcList", "quantityList"),
    "children": ("childEPCs", "childQuantityList"),
    "inputs": ("inputEPCList", "inputQuantityList"),
    "outputs": ("outputEPCList", "outputQuantityList"),
}


@dataclass(frozen=True)
class Item:
    key: str
    text: str  # as the event spells it (for messages)
    product: ProductClass | None
    gtin: str | None
    instance: bool  # an EPC of one unit (a /21/ serial), not a quantity of a lot or class
    amount: int | None  # a quantity element's amount in the class's unit, if it has one
    container: bool = False

    @property
    def governed(self) -> bool:
        return self.product is not None


def _amount(product: ProductClass, quantity: Any, uom: Any) -> int | None:
    if isinstance(quantity, bool) or not isinstance(quantity, int | float):
        return None
    try:
        value = Decimal(str(quantity))
    except InvalidOperation:
        return None
    if not value.is_finite() or value < 0:
        return None
    if product.measure == "mass":
        factor = MASS_UOMS.get(uom) if isinstance(uom, str) else None
        if factor is None:
            return None
        return int((value * factor).to_integral_value(ROUND_HALF_EVEN))
    if uom is not None and uom not in COUNT_UOMS:
        return None
    return int(value) if value == value.to_integral_value() else None


def item(text: str, rules: RuleSet, quantity: Any = None, uom: Any = None) -> Item:
    key = canonical_key(text)
    match = _GTIN_KEY.match(key)
    gtin = match.group(1) if match else None
    product = rules.class_of(gtin)
    instance = bool(match and match.group(2) == "21")
    amount = None
    if product is not None and not instance and quantity is not None:
        amount = _amount(product, quantity, uom)
    return Item(key, text, product, gtin, instance, amount, bool(_SSCC_KEY.match(key)))


def named(event: dict[str, Any], role: str, rules: RuleSet) -> list[Item]:
    """The items of one role (objects, children, inputs, outputs) of an event."""
    epcs, quantities = LISTS[role]
    found: list[Item] = []
    for entry in event.get(quantities) or ():
        if isinstance(entry, dict) and isinstance(entry.get("epcClass"), str):
            text = entry["epcClass"]
            if 0 < len(text) <= MAX_IDENTIFIER:
                found.append(item(text, rules, entry.get("quantity"), entry.get("uom")))
    measured = {i.gtin for i in found if i.gtin}
    for text in event.get(epcs) or ():
        if isinstance(text, str) and 0 < len(text) <= MAX_IDENTIFIER:
            unit = item(text, rules)
            found.append(_sample(unit) if unit.instance and unit.gtin in measured else unit)
    return found


def _sample(unit: Item) -> Item:
    """An instance listed beside its lot's quantity: named, but counted in that quantity."""
    return Item(unit.key, unit.text, unit.product, None, True, None)


def parent(event: dict[str, Any], rules: RuleSet) -> Item | None:
    value = event.get("parentID")
    if isinstance(value, str) and 0 < len(value) <= MAX_IDENTIFIER:
        return item(value, rules)
    return None


def describe(amount: int | Decimal, product: ProductClass) -> str:
    """An amount in words a person reads: tonnes or kilograms, or units."""
    if product.measure == "count":
        return f"{amount} units"
    return grams_text(Decimal(amount))


def grams_text(grams: Decimal) -> str:
    if grams >= 1_000_000:
        return f"{_plain(grams / 1_000_000)} t"
    return f"{_plain(grams / 1000)} kg"


def _plain(value: Decimal) -> str:
    text = f"{value.quantize(Decimal('0.001'), ROUND_HALF_EVEN):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
