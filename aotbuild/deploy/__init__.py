"""Deployment: loading built artifacts from Python and running a package's model."""
