"""API routes (placeholder until written)."""

OPENAPI_PATHS: dict = {}
