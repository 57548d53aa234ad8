"""Build caches: a local content-addressed store and action cache, and later remote ones."""
