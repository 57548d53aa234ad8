"""aotbuild: an incremental, cached build system for AOTInductor model artifacts."""

__version__ = "0.2.0"


def __getattr__(name: str):  # noqa: ANN202 - PEP 562: `aotbuild.load` without importing loader (or torch) up front
    if name == "load":
        from aotbuild.deploy.loader import load

        return load
    raise AttributeError(f"module 'aotbuild' has no attribute {name!r}")
