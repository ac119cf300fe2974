"""The engine that gates, quarantines and commits: reading and writing Delta tables by declaration, the quarantine
protocol, the gate and write-audit-publish (with :mod:`lakehouse.quality`), incremental streams, locks."""
