"""The ninja layer: graph, build-file writing and running ninja; knows rules and edges, not models."""
