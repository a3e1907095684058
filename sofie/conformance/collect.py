"""The node tests of the installed onnx package, optionally filtered by op type."""

from __future__ import annotations

import functools
import os
import pickle
import warnings
from dataclasses import dataclass
from typing import Any


@dataclass
class NodeTest:
    name: str
    model: Any  # onnx.ModelProto
    data_sets: list[tuple[list[Any], list[Any]]]
    op: str = ""  # the op the test is about (see primary_op)

    @property
    def ops(self) -> list[str]:
        """The op types of the model's nodes (subgraphs excepted), in order, once each."""
        return list(dict.fromkeys(n.op_type for n in self.model.graph.node))


def collect(ops: set[str] | None = None, names: set[str] | None = None, cache: str | None = None) -> list[NodeTest]:
    """Every node test, sorted by name; `ops` keeps those with a node of one of these op types
    or about one of them (`op`), `names` those with one of these test names. onnx generates
    the tests in memory (20 s); `cache` is a folder where they are kept per onnx version."""
    tests = _cached_tests(cache) if cache else _generate()
    if ops:
        tests = [t for t in tests if t.op in ops or ops & set(t.ops)]
    if names is not None:
        tests = [t for t in tests if t.name in names]
    return sorted(tests, key=lambda t: t.name)


def _generate() -> list[NodeTest]:
    from onnx.backend.test.case.node import collect_testcases
    with warnings.catch_warnings():  # the generators of the cast tests overflow on purpose
        warnings.simplefilter("ignore")
        cases = collect_testcases()
    tests = [NodeTest(c.name, c.model, [([_tensor(a) for a in ins], [_tensor(a) for a in outs])
                                        for ins, outs in c.data_sets]) for c in cases]
    by_name = {t.name: t for t in tests}
    for t in tests:
        t.op = primary_op(t, by_name)
    return tests


def _cached_tests(cache: str) -> list[NodeTest]:
    import hashlib

    import onnx
    with open(__file__, "rb") as f:  # this file decides what a NodeTest holds
        mine = hashlib.sha256(f.read()).hexdigest()[:12]
    path = os.path.join(cache, f"node-tests-onnx-{onnx.__version__}-{mine}.pickle")
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, TypeError):
        pass
    tests = _generate()
    os.makedirs(cache, exist_ok=True)
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "wb") as f:
        pickle.dump(tests, f)
    os.replace(tmp, path)
    return tests


def _tensor(x: Any) -> Any:
    """Test data as numpy arrays: the cases store TensorProtos and numpy scalars too (sequences
    and optionals stay as they are)."""
    import numpy as np
    from onnx import TensorProto, numpy_helper
    if isinstance(x, TensorProto):
        return numpy_helper.to_array(x)
    return np.asarray(x) if isinstance(x, np.generic) else x


@functools.cache
def _schema_names() -> list[str]:
    import onnx.defs
    return sorted({s.name for s in onnx.defs.get_all_schemas_with_history()}, key=len, reverse=True)


def _prefix_op(name: str, ops: list[str]) -> str | None:
    """The longest op name that starts the test name, spelled without underscores."""
    flat = name.removeprefix("test_").replace("_", "").lower()
    return next((op for op in sorted(ops, key=len, reverse=True) if flat.startswith(op.lower())), None)


def primary_op(test: NodeTest, by_name: dict[str, NodeTest]) -> str:
    """The op a test is about, for the report's table. An `_expanded` test (the op's function
    body inlined) counts for the op of its plain sibling; a single-op graph for its op; else
    the op whose name starts the test name."""
    if "_expanded" in test.name:
        sibling = by_name.get(test.name[:test.name.index("_expanded")])
        if sibling is not None:
            return primary_op(sibling, by_name)
    ops = [op for op in test.ops if op != "Constant"] or test.ops
    if len(ops) == 1:
        return ops[0]
    return _prefix_op(test.name, ops) or _prefix_op(test.name, _schema_names()) or ops[0]
