"""Templates, stylesheets and translations of the consumer pages (served by `api/`)."""
