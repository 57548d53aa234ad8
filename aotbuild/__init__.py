"""aotbuild: an incremental, cached build system for AOTInductor model artifacts."""

__version__ = "0.3.0"  # 0.3: the graph hash is made of a structure hash and a weights digest


def __getattr__(name: str):  # noqa: ANN202 - PEP 562: `aotbuild.load` without importing loader (or torch) up front
    if name == "load":
        from aotbuild.deploy.loader import load

        return load
    raise AttributeError(f"module 'aotbuild' has no attribute {name!r}")
