"""The ``lakehouse`` command: one module per group of subcommands (``main`` is the entry point)."""
