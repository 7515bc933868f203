"""`appeals` commands (placeholder until written)."""

commands: list = []
