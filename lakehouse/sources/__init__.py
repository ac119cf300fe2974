"""Raw sources and how each lands in bronze: logs, database snapshots, image references."""
