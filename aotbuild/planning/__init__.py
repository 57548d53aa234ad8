"""Planning: targets -> per-package ninja files, the plan index, toolchain and change detection."""
