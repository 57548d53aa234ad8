"""Loading: the workspace on disk, BUILD files, labels and target schemas (no torch, no ninja)."""
