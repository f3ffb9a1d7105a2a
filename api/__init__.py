"""The HTTP API: the FastAPI app, its routes, request authentication and error mapping."""
