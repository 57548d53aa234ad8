"""The rule kinds `build` and `test` want, named without importing the rules registry (a no-op build's cost)."""

BUILD_GOAL = "compile"  # `aotbuild build` (and bench) wants artifacts
TEST_GOAL = "verify"  # `aotbuild test` wants verified artifacts
