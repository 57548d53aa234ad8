"""`python -m aotbuild` runs the CLI."""

import sys

from aotbuild.cli import main

sys.exit(main())
