"""`python -m aotbuild` runs the CLI."""

from aotbuild.cli import entry

entry()
