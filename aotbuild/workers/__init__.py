"""Warm workers: ninja's action commands hand their work to a fork server that imported torch once."""
