"""Executors: export and compile misses run on a cluster (Ray), inputs and results moving through the remote cache."""
