"""A Keras model config -> graph dialect: inputs from the InputLayers, then each layer call
(Sequential: in order; Functional: the inbound nodes, shared layers called once per node)."""

from __future__ import annotations

from typing import Any

import numpy as np

from sofie.errors import SofieError
from sofie.frontends.keras.archive import KerasFile
from sofie.frontends.keras.context import Context, Layer
from sofie.frontends.keras.converters import CONVERTERS
from sofie.ir.core import Builder, Function, Module, Value
from sofie.ir.types import Dim, TensorType, dtype_name
from sofie.ir.verifier import verify

Key = tuple[str, int, int]  # (layer name, node index, tensor index): Keras's keras_history


def import_keras(kf: KerasFile, name: str) -> Module:
    cls = kf.config.get("class_name")
    cfg = kf.config.get("config", {})
    if cls not in ("Sequential", "Functional", "Model"):
        raise SofieError(f"{kf.path}: the model is a {cls}; sofie reads Sequential and Functional models")
    module = Module(name)
    importer = _Importer(kf, module)
    try:
        if cls == "Sequential":
            importer.sequential(cfg)
        else:
            importer.functional(cfg)
    except _MALFORMED as e:  # a config missing keys or with values of the wrong type
        raise SofieError(f"{kf.path}: malformed model config ({type(e).__name__}: {e})") from None
    verify(module, "Keras import")
    return module


_MALFORMED = (KeyError, TypeError, ValueError, IndexError, AttributeError)


def _layer(entry: dict[str, Any]) -> Layer:
    cfg = entry.get("config", {})
    return Layer(cfg.get("name") or entry.get("name", "?"), entry.get("class_name", "?"), cfg)


class _Importer:
    def __init__(self, kf: KerasFile, module: Module) -> None:
        self.kf = kf
        self.module = module
        self.values: dict[Key, Value] = {}

    def _start(self, inputs: list[Layer]) -> list[Value]:
        args = [Value(self._input_type(la), la.name) for la in inputs]
        f = self.module.add_function(Function("main", args))
        self.ctx = Context(Builder(f), self.kf.path, self.kf.weights)
        return args

    def _input_type(self, la: Layer) -> TensorType:
        shape = la.get("batch_shape") or la.get("batch_input_shape")
        if shape is None:
            raise SofieError(f"{self.kf.path}: input '{la.name}' has no shape in the config")
        dims: list[Dim] = ["N" if k == 0 and d is None else f"{_symbol(la.name)}_{k}" if d is None else int(d)
                           for k, d in enumerate(shape)]
        dtype = la.get("dtype") or "float32"
        if isinstance(dtype, dict):
            dtype = dtype.get("config", {}).get("name", "float32")
        try:
            return TensorType(dtype_name(np.dtype(dtype)), tuple(dims))
        except (TypeError, SofieError):
            raise SofieError(f"{self.kf.path}: input '{la.name}' has unsupported dtype {dtype}") from None

    def call(self, layer: Layer, xs: list[Value]) -> list[Value]:
        conv = CONVERTERS.get(layer.cls)
        if conv is None:
            raise SofieError(f"{self.kf.path}: layer '{layer.name}' is of class {layer.cls}, which sofie "
                             f"does not convert (supported: {', '.join(sorted(CONVERTERS))})")
        self.ctx.layer = layer
        try:
            out = conv(self.ctx, layer, xs)
        except _MALFORMED as e:  # a layer config or weights not as Keras writes them
            raise self.ctx.error(f"malformed config or weights ({type(e).__name__}: {e})") from None
        finally:
            self.ctx.layer = None
        return out if isinstance(out, list) else [out]

    # ---- Sequential -------------------------------------------------------------------------
    def sequential(self, cfg: dict[str, Any]) -> None:
        entries = cfg.get("layers", [])
        if not entries:
            raise SofieError(f"{self.kf.path}: the Sequential model has no layers")
        first = _layer(entries[0])
        if first.cls == "InputLayer":
            entries = entries[1:]
        else:
            shape = first.get("batch_input_shape") or (entries[0].get("build_config") or {}).get("input_shape")
            first = Layer("input", "InputLayer", {"batch_shape": shape, "dtype": first.get("dtype")})
        (x,) = self._start([first])
        for entry in entries:
            layer = _layer(entry)
            x = self.call(layer, [x])[0]
        self._finish([(x, entries[-1].get("config", {}).get("name") if entries else "y")])

    # ---- Functional -------------------------------------------------------------------------
    def functional(self, cfg: dict[str, Any]) -> None:
        entries = cfg.get("layers", [])
        by_name = {_layer(e).name: e for e in entries}
        inputs = [_layer(by_name[k[0]]) for k in _keys(cfg.get("input_layers", []))]
        for la in inputs:
            if la.cls != "InputLayer":
                raise SofieError(f"{self.kf.path}: model input '{la.name}' is a {la.cls}, not an InputLayer")
        for la, v in zip(inputs, self._start(inputs)):
            self.values[(la.name, 0, 0)] = v
        pending = [(e, i, node) for e in entries for i, node in enumerate(e.get("inbound_nodes", []))]
        while pending:
            waiting = []
            for e, i, node in pending:
                keys = self._node_inputs(e, node)
                if all(k in self.values for k in keys):
                    layer = _layer(e)
                    for t, v in enumerate(self.call(layer, [self.values[k] for k in keys])):
                        self.values[(layer.name, i, t)] = v
                else:
                    waiting.append((e, i, node))
            if len(waiting) == len(pending):
                missing = sorted({k[0] for e, _, n in waiting for k in self._node_inputs(e, n)
                                  if k not in self.values})
                raise SofieError(f"{self.kf.path}: layers {', '.join(missing)} are used but never computed")
            pending = waiting
        outs = []
        for k in _keys(cfg.get("output_layers", [])):
            if k not in self.values:
                raise SofieError(f"{self.kf.path}: model output {k[0]} is not computed by any layer")
            outs.append((self.values[k], k[0]))
        self._finish(outs)

    def _node_inputs(self, entry: dict[str, Any], node: Any) -> list[Key]:
        if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
            for key, v in node.get("kwargs", {}).items():
                if _tensor_keys(v):
                    raise SofieError(f"{self.kf.path}: layer '{_layer(entry).name}' takes tensor argument "
                                     f"'{key}', which sofie does not support")
            return _tensor_keys(node.get("args", []))
        return [(str(k[0]), int(k[1]), int(k[2])) for k in node]  # Keras 2: [[name, node, tensor, kwargs]]

    def _finish(self, outs: list[tuple[Value, str]]) -> None:
        func = self.ctx.b.func
        seen: set[int] = set()
        values = []
        for v, name in outs:
            if v.owner is None or id(v) in seen:  # an input or a repeated value returned: a copy
                v = self.ctx.b.create("graph.identity", [v], {}, name).result
            seen.add(id(v))
            if v.name is None or v.owner is not None:
                v.name = name
            values.append(v)
        func.set_outputs(values)


def _tensor_keys(v: Any) -> list[Key]:
    if isinstance(v, dict):
        if v.get("class_name") == "__keras_tensor__":
            h = v["config"]["keras_history"]
            return [(str(h[0]), int(h[1]), int(h[2]))]
        return [k for x in v.values() for k in _tensor_keys(x)]
    if isinstance(v, list | tuple):
        return [k for x in v for k in _tensor_keys(x)]
    return []


def _keys(spec: Any) -> list[Key]:
    """input_layers / output_layers: one [name, node, tensor] or a list of them."""
    if spec and isinstance(spec[0], str):
        spec = [spec]
    return [(str(s[0]), int(s[1]), int(s[2])) for s in spec]


def _symbol(name: str) -> str:
    from sofie.frontends.onnx import symbol_name
    return symbol_name(name)
