"""`GS1-EPC-Format` of the EPCIS REST binding: how the identifiers of events answered to a
query are spelled. Both spellings are accepted in (queries match either, see
`traceability.identifiers`); out, the default is GS1 Digital Link.

  * Always_GS1_Digital_Link (default): EPC URNs become their canonical Digital Link on
    id.gs1.org (GS1's own translator, through `canonical_key`);
  * Always_EPC_URN: Digital Links of a GTIN (item or lot), SSCC or GLN become EPC URNs.
    A URN splits the key at the end of the GS1 Company Prefix, which the key itself does
    not tell: the consortium's prefix grants do, so keys under a member's prefix are
    translated and any other is left as a Digital Link;
  * No_Preference, Never_Translates: as recorded.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from traceability.identifiers import canonical_key

FORMATS = ("Always_GS1_Digital_Link", "Always_EPC_URN", "No_Preference", "Never_Translates")
DEFAULT_FORMAT = FORMATS[0]
_EPC_LISTS = ("epcList", "childEPCs", "inputEPCList", "outputEPCList")
_QUANTITY_LISTS = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")
_DL = re.compile(
    r"^https://id\.gs1\.org/(?:(01)/(\d{14})/(21|10)/([^/]+)|(00)/(\d{18})|(414)/(\d{13})(?:/254/([^/]+))?)$"
)


def _to_urn(uri: str, prefix_of: Callable[[str], str | None]) -> str:
    match = _DL.match(canonical_key(uri))
    if match is None:
        return uri
    if match.group(1):
        gtin, kind, value = match.group(2), match.group(3), unquote(match.group(4))
        cp = prefix_of(gtin[1:13])
        if cp is None:
            return uri
        ref = gtin[0] + gtin[1 + len(cp) : 13]
        scheme = "id:sgtin" if kind == "21" else "class:lgtin"
        return f"urn:epc:{scheme}:{cp}.{ref}.{value}"
    if match.group(5):
        sscc = match.group(6)
        cp = prefix_of(sscc[1:17])
        return uri if cp is None else f"urn:epc:id:sscc:{cp}.{sscc[0]}{sscc[1 + len(cp) : 17]}"
    gln, ext = match.group(8), unquote(match.group(9) or "0")
    cp = prefix_of(gln[:12])
    return uri if cp is None else f"urn:epc:id:sgln:{cp}.{gln[len(cp) : 12]}.{ext}"


def _to_link(uri: str) -> str:
    return canonical_key(uri) if uri.startswith("urn:epc:") else uri


def converter(fmt: str, prefix_of: Callable[[str], str | None]) -> Callable[[str], str] | None:
    """The spelling function of a format (None: as recorded)."""
    if fmt == "Always_GS1_Digital_Link":
        return _to_link
    if fmt == "Always_EPC_URN":
        return lambda uri: _to_urn(uri, prefix_of)
    return None


def respell(event: dict[str, Any], spell: Callable[[str], str]) -> dict[str, Any]:
    """A copy of `event` with its EPCs, parent and quantity classes spelled by `spell`."""
    out = dict(event)
    for key in _EPC_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [spell(v) if isinstance(v, str) else v for v in out[key]]
    if isinstance(out.get("parentID"), str):
        out["parentID"] = spell(out["parentID"])
    for key in _QUANTITY_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [
                {**q, "epcClass": spell(q["epcClass"])}
                if isinstance(q, dict) and isinstance(q.get("epcClass"), str)
                else q
                for q in out[key]
            ]
    return out
