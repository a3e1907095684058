"""sofie: a compiler from trained neural networks to dependency-light C++."""

from sofie.errors import SofieError
from sofie.version import __version__

__all__ = ["SofieError", "__version__", "compile", "CompiledModel"]


def __getattr__(name: str):
    # the build machinery (pybind11, compilers) loads only when asked for
    if name == "compile":
        from sofie.jit import compile
        return compile
    if name == "CompiledModel":
        from sofie.compiled import CompiledModel
        return CompiledModel
    raise AttributeError(name)
