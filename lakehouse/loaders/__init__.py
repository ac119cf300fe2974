"""Gold tables -> PyTorch DataLoaders."""
