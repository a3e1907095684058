"""A numpy interpreter for graph-dialect functions: each op's declared `reference`, in
schedule order. Slow, exact enough for tests: run a model before and after a pass and compare.
"""

from __future__ import annotations

import math

import numpy as np

from sofie.errors import SofieError
from sofie.ir.core import Function, Module, Operation, Value
from sofie.ir.registry import VIEW
from sofie.ir.types import Dim, dim_factors


def bind_symbols(f: Function, inputs: list[np.ndarray]) -> dict[str, int]:
    """Dim symbol -> size, read from the actual input shapes."""
    if len(inputs) != len(f.args):
        raise SofieError(f"@{f.name} takes {len(f.args)} inputs, got {len(inputs)}")
    sizes: dict[str, int] = {}
    for a, x in zip(f.args, inputs, strict=True):
        if x.ndim != a.type.rank:
            raise SofieError(f"input %{a.name}: expected rank {a.type.rank}, got shape {list(x.shape)}")
        for d, n in zip(a.type.shape, x.shape, strict=True):
            if isinstance(d, str) and sizes.setdefault(d, n) != n:
                raise SofieError(f"input %{a.name}: symbol {d} is {sizes[d]} elsewhere, {n} here")
            if isinstance(d, int) and d != n:
                raise SofieError(f"input %{a.name}: expected shape {a.type.shape}, got {list(x.shape)}")
    return sizes


def _concrete(shape: tuple[Dim, ...], sizes: dict[str, int]) -> tuple[int, ...]:
    out = []
    for d in shape:
        coef, syms = dim_factors(d)
        out.append(coef * math.prod(sizes[s] for s in syms))
    return tuple(out)


def run_op(op: Operation, args: list[np.ndarray | None], sizes: dict[str, int]) -> list[np.ndarray]:
    # A view only reinterprets operand 0; its result type may name a batch symbol, which
    # the op's own reference cannot resolve without the actual sizes.
    if op.has_trait(VIEW) and len(op.results) == 1:
        return [args[0].reshape(_concrete(op.result.type.shape, sizes))]
    return op.opdef.evaluate(op, args)


def run_function(module: Module, inputs: list[np.ndarray], func: str = "main") -> list[np.ndarray]:
    """The outputs of `func` for `inputs`, computed with the numpy references."""
    f = module.functions[func]
    sizes = bind_symbols(f, inputs)
    env: dict[int, np.ndarray] = {id(a): np.asarray(x) for a, x in zip(f.args, inputs, strict=True)}

    def get(v: Value | None) -> np.ndarray | None:
        return None if v is None else env[id(v)]

    for op in f.ops:
        try:
            results = run_op(op, [get(v) for v in op.operands], sizes)
        except SofieError:
            raise
        except Exception as e:  # noqa: BLE001  (name the op whose reference failed)
            raise SofieError(f"interpreting {op.describe()}: {type(e).__name__}: {e}") from e
        for r, y in zip(op.results, results, strict=True):
            env[id(r)] = np.asarray(y)
    return [env[id(v)] for v in f.outputs]
