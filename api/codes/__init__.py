"""Serialised product codes at the API's edge: QR images (`render`, `png`, `sheets`), the
resolver's pages and translations (`pages`, `i18n`) and the codes service wiring
(`service`). The GS1 rules (Digital Link, GTINs, serials, batches, scans) are in
`traceability.codes`; the HTTP side is in `api/routes/codes.py` and `api/routes/resolver.py`;
the design is in docs/codes.md.
"""
