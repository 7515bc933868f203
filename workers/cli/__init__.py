"""The `appeals datasets` and `appeals releases` command groups: plain click over the engine, no Flask."""
