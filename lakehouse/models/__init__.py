"""Models trained and applied by the platform: their code, their versions and where their weights live."""
