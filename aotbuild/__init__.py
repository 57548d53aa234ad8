"""aotbuild: an incremental, cached build system for AOTInductor model artifacts."""

__version__ = "0.1.0"
