"""The rule kinds the two commands want: their names, without importing the rules registry (a no-op build's
cost)."""

BUILD_GOAL = "compile"  # `aotbuild build` (and bench) wants artifacts
TEST_GOAL = "verify"  # `aotbuild test` wants verified artifacts
