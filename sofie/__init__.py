"""sofie: a compiler from trained neural networks to dependency-light C++."""

from sofie.errors import SofieError
from sofie.version import __version__

__all__ = ["SofieError", "__version__", "compile", "CompiledModel", "CustomOp", "Attr", "register_custom_op",
           "load_custom_ops", "TensorType"]


def __getattr__(name: str):
    # the build machinery (pybind11, compilers) loads only when asked for
    if name == "compile":
        from sofie.jit import compile
        return compile
    if name == "CompiledModel":
        from sofie.compiled import CompiledModel
        return CompiledModel
    if name in ("CustomOp", "register_custom_op", "load_custom_ops"):
        import sofie.custom_ops
        return getattr(sofie.custom_ops, name)
    if name == "Attr":
        from sofie.ir.registry import Attr
        return Attr
    if name == "TensorType":
        from sofie.ir.types import TensorType
        return TensorType
    raise AttributeError(name)
