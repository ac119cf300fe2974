"""Data versioning on top of Delta Lake: tags, history, diffs, restore, retention, time travel."""
