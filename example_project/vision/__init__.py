"""Second example package: a classifier whose weights come from a checkpoint."""
