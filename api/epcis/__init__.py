"""EPCIS 2.0 at the API's door: admission of captured events into the node's mempool
and capture jobs. The rules themselves are in `traceability.epcis`."""
