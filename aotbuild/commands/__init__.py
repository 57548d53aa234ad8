"""What each CLI command does; aotbuild/cli.py only parses arguments and dispatches here."""
