"""Example models for aotbuild (built from code only, no downloads)."""
