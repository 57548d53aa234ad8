"""`python -m aotbuild` runs the CLI."""

from aotbuild.cli import main

raise SystemExit(main())
