"""Lineage: which versions of which tables (and which source files) a table version or a training run came from."""
