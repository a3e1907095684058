"""ONNX -> graph dialect. Opsets 7 to current; initializers and Constant nodes become weights.

Ops import generically from their declaration (inputs by position, attributes by name); the
few ops whose ONNX form changed across opsets have a small adapter in `_ADAPTERS`.
"""

from __future__ import annotations

import hashlib
import os
from collections import ChainMap
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from sofie.errors import SofieError
from sofie.frontends.files import check_model_file
from sofie.frontends.names import module_name
from sofie.frontends.onnx_control_flow import CONTROL_FLOW
from sofie.frontends.onnx_functions import defines_function, function_body
from sofie.frontends.onnx_quantization import ADAPTERS as QUANTIZATION_ADAPTERS
from sofie.ir.core import Builder, Function, Module, Value
from sofie.ir.registry import OpDef, lookup_onnx, onnx_domains, onnx_op_types
from sofie.ir.types import SUB_BYTE_BITS, Dim, TensorType, dtype_name
from sofie.ir.verifier import verify

MIN_OPSET = 7
MAX_OPSET = onnx.defs.onnx_opset_version()

# attributes that only matter for training or for layouts sofie does not take
_IGNORED_ATTRS = {"momentum", "is_test", "consumed_inputs", "spatial", "broadcast", "training_mode"}


def load_onnx(model: str | os.PathLike | onnx.ModelProto, name: str | None = None) -> Module:
    """Imports an ONNX file or ModelProto into a verified graph-dialect module."""
    source = str(model) if not isinstance(model, onnx.ModelProto) else "<ModelProto>"
    if isinstance(model, onnx.ModelProto):
        proto, base = model, None
    else:
        proto, base = _read(str(model)), os.path.dirname(os.path.abspath(str(model)))
    if name is None:
        name = os.path.splitext(os.path.basename(source))[0] if base else (proto.graph.name or "model")
    return _Importer(proto, base, source).run(module_name(name))


# ModelProto's field numbers and their protobuf wire types (0 varint, 2 length-delimited)
_MODEL_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}


def is_onnx(path: str, head: bytes) -> bool:
    """By content: the first bytes parse as fields of an ONNX ModelProto (what a protobuf
    reader would see), up to the end of `head`; any other byte stream fails within a few."""
    pos, fields = 0, 0
    while pos < len(head):
        key, pos = _varint(head, pos)
        if key is None:  # cut by the end of `head`
            return fields > 0
        if _MODEL_FIELDS.get(key >> 3) != key & 7:
            return False
        value, pos = _varint(head, pos)
        if value is None:
            return pos >= len(head) and fields > 0
        if key & 7 == 2:
            pos += value
        fields += 1
    return fields > 0


def _varint(data: bytes, pos: int) -> tuple[int | None, int]:
    value = shift = 0
    while pos < len(data) and shift < 64:
        b = data[pos]
        value |= (b & 0x7F) << shift
        pos += 1
        if not b & 0x80:
            return value, pos
        shift += 7
    return None, len(data)


def _read(path: str) -> onnx.ModelProto:
    check_model_file(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
        proto = onnx.ModelProto()
        proto.ParseFromString(data)
    except Exception as e:  # protobuf raises several types for a damaged file
        raise SofieError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})") from None
    if not proto.graph.node and not proto.graph.output:
        raise SofieError(f"{path}: not a readable ONNX model (no graph; truncated or not ONNX?)")
    return proto


class _Importer:
    def __init__(self, proto: onnx.ModelProto, base: str | None, source: str) -> None:
        self.proto = proto
        self.base = base
        self.source = source
        self._used: dict[int, tuple[set[str], onnx.GraphProto]] = {}  # see _used_names
        # names in scope: a control-flow body's own names sit in a child map over its outer scope
        self.values: ChainMap[str, Value] = ChainMap()
        self.opset = self._opset()
        self.graph = proto.graph  # the graph (or body) being imported
        self.scope = ""  # prefix of the node locations of a body copy ("Loop_0/iter3/")
        self.unrolled = 0  # body nodes imported by unrolling control flow (see onnx_control_flow)
        self._constants: dict[tuple, Value] = {}

    def _opset(self) -> int:
        for o in self.proto.opset_import:
            if o.domain in ("", "ai.onnx"):
                if o.version < MIN_OPSET and not _changed_since(self.proto.graph, o.version):
                    return MIN_OPSET  # every op it uses is defined as at MIN_OPSET
                if not MIN_OPSET <= o.version <= MAX_OPSET:
                    changed = ", ".join(_changed_since(self.proto.graph, o.version)) if o.version < MIN_OPSET else ""
                    raise SofieError(f"{self.source}: opset {o.version} is outside the supported "
                                     f"range {MIN_OPSET}..{MAX_OPSET}" +
                                     (f" (ops defined differently before opset {MIN_OPSET}: {changed})"
                                      if changed else ""))
                return o.version
        raise SofieError(f"{self.source}: the model imports no default-domain opset")

    def run(self, name: str) -> Module:
        g = self.proto.graph
        m = Module(name)
        inits = {t.name: t for t in g.initializer}
        args = [Value(self._input_type(i), i.name) for i in g.input if i.name not in inits]
        self._check_supported(g)
        f = m.add_function(Function("main", args))
        self.b = Builder(f)
        for a in args:
            self.values[a.name] = a
        for t in g.initializer:
            self.values[t.name] = self.b.weight(self._tensor(t), t.name)
        for i, node in enumerate(g.node):
            self._node(node, i)
        for o in g.output:
            if o.name not in self.values:
                raise SofieError(f"{self.source}: graph output '{o.name}' is not produced by any node")
        f.set_outputs(self.values[o.name] for o in g.output)
        verify(m, "ONNX import")
        return m

    def _input_type(self, vi: onnx.ValueInfoProto) -> TensorType:
        tt = vi.type.tensor_type
        if not vi.type.HasField("tensor_type"):
            raise SofieError(f"{self.source}: input '{vi.name}' is not a tensor")
        dims: list[Dim] = []
        for k, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(int(d.dim_value))
            elif d.HasField("dim_param") and d.dim_param:
                dims.append(symbol_name(d.dim_param))
            elif k == 0:
                dims.append("N")
            else:  # an unnamed dynamic dim: a symbol of its own, named after where it is
                dims.append(symbol_name(f"{vi.name}_{k}"))
        try:
            dt = dtype_name(helper.tensor_dtype_to_np_dtype(tt.elem_type))
        except (KeyError, SofieError):
            raise SofieError(f"{self.source}: input '{vi.name}' has unsupported element type "
                             f"{onnx.TensorProto.DataType.Name(tt.elem_type)}") from None
        return TensorType(dt, tuple(dims))

    def _tensor(self, t: onnx.TensorProto) -> np.ndarray:
        try:
            dtype_name(helper.tensor_dtype_to_np_dtype(t.data_type))
        except (KeyError, SofieError):  # float6, complex, strings: no sofie element type
            raise SofieError(f"{self.source}: tensor '{t.name}' has unsupported element type "
                             f"{onnx.TensorProto.DataType.Name(t.data_type)}") from None
        if t.data_location == onnx.TensorProto.EXTERNAL:
            return self._external(t)
        try:
            return np.array(numpy_helper.to_array(t), order="C")  # ascontiguousarray would make scalars 1-D
        except Exception as e:
            raise SofieError(f"{self.source}: tensor '{t.name}' cannot be read: {e}") from None

    def _external(self, t: onnx.TensorProto) -> np.ndarray:
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        if self.base is None:
            raise SofieError(f"tensor '{t.name}' has external data '{loc}'; load the model from its "
                             f"file so the data can be found")
        path = os.path.realpath(os.path.join(self.base, loc))
        base = os.path.realpath(self.base)
        if os.path.isabs(loc) or os.path.commonpath([path, base]) != base:
            raise SofieError(f"{self.source}: external data path '{loc}' of tensor '{t.name}' escapes "
                             f"the model's folder; refused")
        if not os.path.isfile(path):
            raise SofieError(f"{self.source}: external data file '{loc}' of tensor '{t.name}' is missing")
        dt = helper.tensor_dtype_to_np_dtype(t.data_type)
        count = int(np.prod(t.dims)) if t.dims else 1
        bits = SUB_BYTE_BITS.get(dtype_name(dt), 8 * dt.itemsize)  # 4- and 2-bit types are packed
        size = -(-count * bits // 8)
        offset, length = int(info.get("offset", 0)), int(info.get("length", size))
        if length != size:
            raise SofieError(f"{self.source}: tensor '{t.name}' external length {length} != "
                             f"{count} x {bits} bits ({size} bytes)")
        with open(path, "rb") as f:
            f.seek(offset)
            raw = f.read(length)
        if len(raw) != length:
            raise SofieError(f"{self.source}: external data file '{loc}' is truncated (tensor '{t.name}' "
                             f"needs bytes {offset}..{offset + length})")
        if bits < 8:
            return unpack_bits(raw, bits, count).view(dt).reshape(tuple(t.dims))
        return np.frombuffer(raw, dtype=dt).reshape(tuple(t.dims)).copy()

    def _node(self, node: onnx.NodeProto, index: int) -> None:
        loc = self.scope + (node.name or f"{node.op_type}_{index}")
        where = f"{self.source}: node '{loc}' ({node.op_type}, opset {self.opset})"
        if node.domain not in ("", "ai.onnx"):
            self._custom_node(node, loc, where)
            return
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Constant":
            data = self._constant(attrs, where)
            self.values[node.output[0]] = (self.constant(data, node.output[0], loc) if self.scope
                                           else self.b.weight(data, node.output[0], loc))
            return
        if node.op_type in CONTROL_FLOW:
            inputs = [self._input(name, where) for name in node.input]
            self._bind(node, CONTROL_FLOW[node.op_type](self, node, inputs, attrs, loc, where), where)
            return
        opdef = lookup_onnx(node.op_type)
        if opdef is None and node.op_type not in _ADAPTERS and self._expand(node, where):
            return
        if opdef is None and node.op_type not in _ADAPTERS:  # some ops import as others (CastLike)
            raise SofieError(f"{where}: unsupported op '{node.op_type}'. Supported ops: "
                             f"{', '.join(onnx_op_types() + ['Constant', *CONTROL_FLOW])}")
        inputs = [self._input(name, where) for name in node.input]
        while inputs and inputs[-1] is None:
            inputs.pop()
        adapter = _ADAPTERS.get(node.op_type)
        self.n_outputs = len(node.output)  # for adapters of ops whose result count is the node's
        if adapter is not None:
            self.node_outputs = list(node.output)
            result = adapter(self, inputs, attrs, loc, where)
            if result is not None:
                self._bind(node, [result] if isinstance(result, Value) else result, where)
                return
        attrs = {k: v for k, v in attrs.items() if k not in _IGNORED_ATTRS}
        self._create(node, opdef, inputs, attrs, loc, where, list(node.output)[:1])

    def _create(self, node: onnx.NodeProto, opdef: OpDef, inputs: list, attrs: dict, loc: str, where: str,
                result_names: list[str]) -> None:
        """The op `opdef` declares, from the node's inputs and attributes, bound to its outputs."""
        for k in attrs:
            if k not in opdef.attrs:
                raise SofieError(f"{where}: attribute '{k}' is not supported "
                                 f"(supported: {', '.join(opdef.attrs) or 'none'})")
        try:
            op = self.b.create(opdef.name, inputs, attrs, loc, result_names=result_names)
        except SofieError as e:
            raise SofieError(f"{where}: {e}") from None
        self._bind(node, op.results, where)

    def _supported(self, op_type: str) -> bool:
        return is_supported(op_type, self.opset)

    def _check_supported(self, g: onnx.GraphProto) -> None:
        """Refuses a model with unsupported ops up front, naming every one (its first node and
        how many nodes use it), so the user needs no try per op. Control-flow bodies are not
        scanned: a branch that folds away is never imported; their nodes say so when they are."""
        missing: dict[str, tuple[str, int]] = {}
        for i, node in enumerate(g.node):
            if node.domain in ("", "ai.onnx") and not self._supported(node.op_type):
                first, n = missing.get(node.op_type, (node.name or f"{node.op_type}_{i}", 0))
                missing[node.op_type] = (first, n + 1)
        if not missing:
            return
        supported = f"Supported ops: {', '.join(onnx_op_types() + ['Constant', *CONTROL_FLOW])}"
        if len(missing) == 1:
            (op_type, (first, n)), = missing.items()
            more = f" ({n} nodes, this is the first)" if n > 1 else ""
            raise SofieError(f"{self.source}: node '{first}' ({op_type}, opset {self.opset}): "
                             f"unsupported op '{op_type}'{more}. {supported}")
        listed = ", ".join(f"'{op}' at node '{first}' ({n} node{'s' if n > 1 else ''})"
                           for op, (first, n) in missing.items())
        raise SofieError(f"{self.source}: {len(missing)} unsupported ops (opset {self.opset}): {listed}. "
                         f"{supported}")

    def _custom_node(self, node: onnx.NodeProto, loc: str, where: str) -> None:
        """A node of a custom domain imports only as a custom op the user declared."""
        opdef = lookup_onnx(node.op_type, node.domain)
        if opdef is None:
            known = ", ".join(f"{d}: {', '.join(onnx_op_types(d))}" for d in onnx_domains())
            raise SofieError(f"{where}: op '{node.op_type}' of custom domain '{node.domain}' is not declared; "
                             f"declare it with sofie.CustomOp (or sofie-compile --custom-ops FILE)"
                             + (f" (declared custom ops: {known})" if known else ""))
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        self._create(node, opdef, [self._input(name, where) for name in node.input], attrs, loc, where,
                     list(node.output))

    def _input(self, name: str, where: str) -> Value | None:
        if not name:
            return None
        if name not in self.values:
            raise SofieError(f"{where}: input '{name}' is not defined before this node")
        return self.values[name]

    def _expand(self, node: onnx.NodeProto, where: str) -> bool:
        """Imports an op ONNX defines as a function of other ops as its body; False when it is
        not one (see `onnx_functions`)."""
        types = [self.values[i].type if i in self.values else None for i in node.input]
        body = function_body(node, self.opset, types)
        if body is None:
            return False
        nodes, opset = body
        outer, self.opset = self.opset, opset
        try:
            for k, sub in enumerate(nodes):
                self._node(sub, k)
        except SofieError as e:
            raise SofieError(f"{where}: in its ONNX function body: {e}") from None
        finally:
            self.opset = outer
        return True

    def _bind(self, node: onnx.NodeProto, results: list[Value], where: str) -> None:
        outs = list(node.output)
        for name, v in zip(outs, results):
            if name:
                if v.name is None:
                    v.name = name
                self.values[name] = v
        extras = [e for e in outs[len(results):] if e]
        used = self._used_names() if extras else set()
        for extra in extras:
            if extra in used:
                raise SofieError(f"{where}: output '{extra}' (an optional training/indices output) is "
                                 f"used but not supported")

    def _used_names(self) -> set[str]:
        """Names the current graph's nodes read or it returns (computed once per graph: per node
        it made importing a 2000-node graph quadratic)."""
        key = id(self.graph)
        if key not in self._used:  # the graph kept with its names: its id stays unique
            self._used[key] = ({i for n in self.graph.node for i in n.input}
                               | {o.name for o in self.graph.output}, self.graph)
        return self._used[key][0]

    def _constant(self, attrs: dict[str, Any], where: str) -> np.ndarray:
        if "value" in attrs:
            return self._tensor(attrs["value"])
        for key, dt in (("value_float", np.float32), ("value_floats", np.float32),
                        ("value_int", np.int64), ("value_ints", np.int64)):
            if key in attrs:
                return np.array(attrs[key], dtype=dt)
        if "sparse_value" in attrs:
            raise SofieError(f"{where}: a sparse Constant (sparse_value) is not supported")
        raise SofieError(f"{where}: Constant with attributes {sorted(attrs)} is not supported "
                         f"(string constants have no sofie element type)")

    # helpers for adapters and control flow ----------------------------------------------------
    def subgraph(self, graph: onnx.GraphProto, inputs: dict[str, Value], scope: str) -> list[Value]:
        """Imports one copy of a control-flow body (an If branch, a Loop or Scan body) into the
        function: its formal inputs bound to `inputs`, the names it defines visible only inside,
        names of the enclosing scopes resolved there; node locations start with `scope`.
        Returns the values of the body's outputs."""
        saved = self.values, self.graph, self.scope
        self.values, self.graph, self.scope = self.values.new_child(dict(inputs)), graph, scope
        try:
            if graph.sparse_initializer:
                raise SofieError(f"{self.source}: body '{graph.name}' has sparse initializers (not supported)")
            for t in graph.initializer:
                self.values[t.name] = self.constant(self._tensor(t), t.name, scope + t.name)
            for k, node in enumerate(graph.node):
                self._node(node, k)
            missing = [o.name for o in graph.output if o.name not in self.values]
            if missing:
                raise SofieError(f"{self.source}: body '{graph.name}' output '{missing[0]}' is not produced "
                                 f"by any node")
            return [self.values[o.name] for o in graph.output]
        finally:
            self.values, self.graph, self.scope = saved

    def constant(self, data: np.ndarray, name: str, loc: str = "") -> Value:
        """A weight holding `data`, made once per content: each unrolled copy of a body reuses
        its constants instead of adding them to the weights again."""
        key = (data.dtype.str, data.shape, hashlib.blake2b(data.tobytes(), digest_size=20).digest())
        v = self._constants.get(key)
        if v is None:
            v = self._constants[key] = self.b.weight(data, name, loc)
        return v

    def const_input(self, v: Value | None, what: str, where: str) -> np.ndarray | None:
        if v is None:
            return None
        data = self.b.func.module.constant_value(v)
        if data is None:
            raise SofieError(f"{where}: {what} must be a constant")
        return data

    def create(self, name: str, inputs: list, attrs: dict, loc: str, where: str) -> Value:
        try:
            return self.b.create(name, inputs, attrs, loc).result
        except SofieError as e:
            raise SofieError(f"{where}: {e}") from None


def is_supported(op_type: str, opset: int = MAX_OPSET) -> bool:
    """Whether the importer takes default-domain nodes of `op_type` at `opset`: declared, through
    an adapter, as control flow, as a Constant, or as the function body ONNX defines for it."""
    return (op_type == "Constant" or op_type in CONTROL_FLOW or op_type in _ADAPTERS
            or lookup_onnx(op_type) is not None or defines_function(op_type, opset))


def symbol_name(param: str) -> str:
    """A dim symbol spelled so the type syntax stays unambiguous ('x' separates dims)."""
    import re
    s = re.sub(r"[^A-Za-z0-9_]", "_", param).replace("x", "X")
    return s if s and not s[0].isdigit() else "d_" + s


# ---- opset adapters: return the result value(s), or None to import generically --------------

def _flattened(graph_op: str) -> Callable[..., Value | None]:
    """Softmax, LogSoftmax, Hardmax: before opset 13 they work on the input flattened to 2-D
    at `axis` (default 1)."""
    def adapt(imp: _Importer, inputs, attrs, loc, where):
        if imp.opset >= 13:
            return None
        x = inputs[0]
        axis = attrs.get("axis", 1)
        axis = axis + x.type.rank if axis < 0 else axis
        if axis == x.type.rank - 1:
            return imp.create(graph_op, [x], {"axis": -1}, loc, where)
        flat = imp.create("graph.flatten", [x], {"axis": axis}, loc + "/flatten", where)
        y = imp.create(graph_op, [flat], {"axis": -1}, loc, where)
        shape = imp.b.weight(np.array([0 if isinstance(d, str) else d for d in x.type.shape], np.int64),
                             loc + "/shape")
        return imp.create("graph.reshape", [y, shape], {}, loc + "/unflatten", where)
    return adapt


def _top_k(imp: _Importer, inputs, attrs, loc, where):
    if "k" not in attrs:
        return None
    # TopK-1: k is an attribute
    k = imp.b.weight(np.array([attrs["k"]], np.int64), loc + "/k")
    op = imp.b.create("graph.top_k", [inputs[0], k], {key: v for key, v in attrs.items() if key != "k"}, loc)
    return op.results


def _clip(imp: _Importer, inputs, attrs, loc, where):
    if imp.opset < 11:
        return imp.create("graph.clip", inputs[:1], {k: v for k, v in attrs.items()
                                                     if k in ("min", "max")}, loc, where)
    if any(imp.b.func.module.constant_value(v) is None for v in inputs[1:] if v is not None):
        # a bound computed at run time: Min(Max(x, min), max), broadcasting the scalar bounds
        x, lo, hi = (inputs + [None, None])[:3]
        for kind, bound in (("graph.max", lo), ("graph.min", hi)):
            if bound is not None:
                x = imp.create(kind, [x, bound], {}, loc, where)
        return x
    lo = imp.const_input(inputs[1] if len(inputs) > 1 else None, "Clip min", where)
    hi = imp.const_input(inputs[2] if len(inputs) > 2 else None, "Clip max", where)
    bounds = {}
    if lo is not None:
        bounds["min"] = float(lo)
    if hi is not None:
        bounds["max"] = float(hi)
    return imp.create("graph.clip", inputs[:1], bounds, loc, where)


def _changed_since(graph: onnx.GraphProto, opset: int) -> list[str]:
    """The default-domain ops of `graph` whose definition at `opset` is not the one in force at
    MIN_OPSET (Add before 7 had a `broadcast` attribute; Not has not changed since 1)."""
    changed = set()
    for node in graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        try:
            same = (onnx.defs.get_schema(node.op_type, opset).since_version
                    == onnx.defs.get_schema(node.op_type, MIN_OPSET).since_version)
        except onnx.defs.SchemaError:
            same = False
        if not same or any(a.type == onnx.AttributeProto.GRAPH for a in node.attribute):
            changed.add(node.op_type)
    return sorted(changed)


def _reshape(imp: _Importer, inputs, attrs, loc, where):
    if "shape" not in attrs:
        return None
    shape = imp.b.weight(np.array(attrs["shape"], np.int64), loc + "/shape")
    return imp.create("graph.reshape", [inputs[0], shape], {}, loc, where)


def _target_type(attrs: dict, where: str, op: str) -> str:
    """The IR element type of a Cast's (BitCast's) `to` attribute."""
    to = attrs.get("to")
    try:
        return dtype_name(helper.tensor_dtype_to_np_dtype(int(to)))
    except (KeyError, SofieError, TypeError, ValueError):
        raise SofieError(f"{where}: {op} to {_type_name(to)} is not supported (sofie's element types: "
                         f"float, double, int8-64, uint8-64, bool; storage only: float16, bfloat16, "
                         f"float8 (e4m3fn, e4m3fnuz, e5m2, e5m2fnuz, e8m0), float4e2m1, int4, uint4, "
                         f"int2, uint2)") from None


def _cast(imp: _Importer, inputs, attrs, loc, where):
    return imp.create("graph.cast", inputs, {"to": _target_type(attrs, where, "Cast"), **_cast_options(attrs)},
                      loc, where)


def _cast_options(attrs: dict) -> dict:
    """Cast's `saturate` and `round_mode` (float8 / float8e8m0 results), when given."""
    out = {}
    if "saturate" in attrs:
        out["saturate"] = int(attrs["saturate"])
    if "round_mode" in attrs:
        mode = attrs["round_mode"]
        out["round_mode"] = mode.decode() if isinstance(mode, bytes) else str(mode)
    return out


def unpack_bits(raw: bytes, bits: int, count: int) -> np.ndarray:
    """ONNX's packing of 4- and 2-bit elements, undone: element i is in byte i * bits // 8,
    the first one in the low bits; one byte per element out, holding its bits."""
    per_byte = 8 // bits
    shifts = np.arange(per_byte, dtype=np.uint8) * bits
    out = (np.frombuffer(raw, np.uint8)[:, None] >> shifts) & np.uint8((1 << bits) - 1)
    return np.ascontiguousarray(out.reshape(-1)[:count])


def _bit_cast(imp: _Importer, inputs, attrs, loc, where):
    return imp.create("graph.bit_cast", inputs, {"to": _target_type(attrs, where, "BitCast")}, loc, where)


def _type_name(to: Any) -> str:
    try:
        return onnx.TensorProto.DataType.Name(int(to))
    except (TypeError, ValueError):
        return f"type {to}"


def _cast_like(imp: _Importer, inputs, attrs, loc, where):
    """CastLike(x, like) is Cast(x, to=like's element type); `like` is read for its type only."""
    if len(inputs) != 2:
        raise SofieError(f"{where}: CastLike takes 2 inputs, got {len(inputs)}")
    return imp.create("graph.cast", inputs[:1], {"to": inputs[1].type.dtype, **_cast_options(attrs)}, loc, where)


def _dropout(imp: _Importer, inputs, attrs, loc, where):
    """Inference: the identity, and a mask (when asked for) that keeps every element."""
    training = inputs[2] if len(inputs) > 2 else None
    if training is not None:
        mode = imp.b.func.module.constant_value(training)
        if mode is None:
            raise SofieError(f"{where}: training_mode is computed at run time; sofie compiles for "
                             f"inference (training_mode false) only")
        ratio = imp.const_input(inputs[1] if len(inputs) > 1 else None, "Dropout ratio", where)
        if bool(mode) and (ratio is None or float(ratio) != 0.0):
            raise SofieError(f"{where}: training_mode=true drops elements at random; sofie compiles "
                             f"for inference only")
    y = imp.create("graph.identity", inputs[:1], {}, loc, where)
    x = inputs[0].type
    if len(imp.node_outputs) < 2 or not imp.node_outputs[1] or not x.is_static:
        return y  # a mask of a symbolic shape that is used fails in _bind, naming the output
    return [y, imp.b.weight(np.ones(tuple(x.shape), np.bool_), imp.node_outputs[1])]


def _constant_of_shape(imp: _Importer, inputs, attrs, loc, where):
    value = attrs.get("value")
    arr = numpy_helper.to_array(value).reshape(-1) if value is not None else np.zeros(1, np.float32)
    return imp.create("graph.constant_of_shape", inputs,
                      {"value": [float(arr[0])], "dtype": dtype_name(arr.dtype)}, loc, where)


def _batchnorm(imp: _Importer, inputs, attrs, loc, where):
    if attrs.get("training_mode", 0):
        raise SofieError(f"{where}: training_mode=1 is not supported (inference only)")
    return None


def _split(imp: _Importer, inputs, attrs, loc, where):
    # before opset 18 (and without `split`) the parts are equal and as many as the node's outputs
    if len(inputs) < 2 and not attrs.get("split") and not attrs.get("num_outputs"):
        attrs["num_outputs"] = imp.n_outputs
    return None


def _attrs_to_inputs(op_type: str, *names: str):
    """Slice (opset < 10) and Pad (< 11) took as attributes what later opsets take as inputs."""
    def adapt(imp: _Importer, inputs, attrs, loc, where):
        if not any(n in attrs for n in names):
            return None
        extra = [imp.b.weight(np.array(attrs.pop(n), np.int64 if n != "value" else np.float32), f"{loc}/{n}")
                 if n in attrs else None for n in names]
        return imp.create(lookup_onnx(op_type).name, inputs[:1] + extra, attrs, loc, where)
    return adapt


def _compress(imp: _Importer, inputs, attrs, loc, where):
    """Compress's optional axis: graph.compress takes [axis], or [] to flatten the input."""
    attrs["axis"] = [attrs["axis"]] if "axis" in attrs else []
    return None


def _dft(imp: _Importer, inputs, attrs, loc, where):
    """DFT before opset 20: the axis is an attribute (default 1); since, an input (default -2)."""
    if imp.opset >= 20:
        return None
    axis = imp.b.weight(np.array(attrs.pop("axis", 1), np.int64), loc + "/axis")
    x, length = (inputs + [None])[:2]
    return imp.create("graph.dft", [x, length, axis], attrs, loc, where)


def _eye_like(imp: _Importer, inputs, attrs, loc, where):
    if "dtype" in attrs:
        attrs["dtype"] = dtype_name(helper.tensor_dtype_to_np_dtype(int(attrs["dtype"])))
    return None


def _resize(imp: _Importer, inputs, attrs, loc, where):
    return None if imp.opset >= 11 else _upsample(imp, inputs, attrs, loc, where)


def _upsample(imp: _Importer, inputs, attrs, loc, where):
    """Upsample and Resize-10: scales only (Upsample-7/8: an attribute), asymmetric coordinates,
    nearest rounding down when upsampling an axis and up when downsampling it."""
    if "scales" in attrs:
        inputs = [*inputs[:1], imp.b.weight(np.array(attrs["scales"], np.float32), loc + "/scales")]
    mode = attrs.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if len(inputs) != 2:
        raise SofieError(f"{where}: expected X and scales, got {len(inputs)} inputs")
    return imp.create("graph.resize", [inputs[0], None, inputs[1]],
                      {"mode": "linear" if mode == "bilinear" else mode,
                       "coordinate_transformation_mode": "asymmetric", "nearest_mode": "simple"}, loc, where)


# ops whose result holds only elements of their first operand (so zeros stay zeros)
_PICKING = ("graph.slice", "graph.reshape", "graph.squeeze", "graph.unsqueeze", "graph.transpose",
            "graph.flatten", "graph.identity")


def _zeros_of_runtime_shape(v: Value | None) -> bool:
    """Whether `v` is ConstantOfShape(0), or a part of one: all zeros by construction."""
    op = v.owner if v is not None else None
    while op is not None and op.isa(*_PICKING):
        op = op.operands[0].owner
    return op is not None and op.isa("graph.constant_of_shape") and op.attr("value") == [0.0]


def _recurrent(name: str) -> Callable[..., list[Value]]:
    """RNN / GRU / LSTM: every result is made (Y, Y_h, Y_c); the node may name fewer. An
    initial state of zeros of the batch's shape (PyTorch exports slice each layer's out of one
    ConstantOfShape) is the absent one, which the kernel starts from."""
    def adapt(imp: _Importer, inputs, attrs, loc, where):
        for k in (5, 6):  # initial_h, initial_c
            if k < len(inputs) and _zeros_of_runtime_shape(inputs[k]):
                inputs[k] = None
        try:
            return imp.b.create(name, inputs, attrs, loc).results
        except SofieError as e:
            raise SofieError(f"{where}: {e}") from None
    return adapt


def _grid_sample(imp: _Importer, inputs, attrs, loc, where):
    # GridSample-16 names the modes bilinear / bicubic; opset 20 linear / cubic (and N-D)
    mode = attrs.get("mode", b"bilinear")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    attrs = {**attrs, "mode": {"bilinear": "linear", "bicubic": "cubic"}.get(mode, mode)}
    return imp.create("graph.grid_sample", inputs, attrs, loc, where)


def _roi_align(imp: _Importer, inputs, attrs, loc, where):
    # RoiAlign-10 had no coordinate_transformation_mode: it worked as output_half_pixel
    if imp.opset < 16:
        attrs = {**attrs, "coordinate_transformation_mode": "output_half_pixel"}
    return imp.create("graph.roi_align", inputs, attrs, loc, where)


def _max_pool(imp: _Importer, inputs, attrs, loc, where):
    """MaxPool's second output (Indices), when the node names it, is a second result."""
    if imp.n_outputs < 2 or not imp.node_outputs[1]:
        return None
    try:
        return imp.b.create("graph.max_pool", inputs, {**attrs, "indices": 1}, loc).results
    except SofieError as e:
        raise SofieError(f"{where}: {e}") from None


_ADAPTERS: dict[str, Callable[..., Value | list[Value] | None]] = {
    "Softmax": _flattened("graph.softmax"),
    "LogSoftmax": _flattened("graph.log_softmax"),
    "Hardmax": _flattened("graph.hardmax"),
    "TopK": _top_k,
    "Split": _split,
    "Slice": _attrs_to_inputs("Slice", "starts", "ends", "axes"),
    "Pad": _attrs_to_inputs("Pad", "pads", "value"),
    "EyeLike": _eye_like,
    "Compress": _compress,
    "DFT": _dft,
    "RNN": _recurrent("graph.rnn"),
    "GRU": _recurrent("graph.gru"),
    "LSTM": _recurrent("graph.lstm"),
    "Clip": _clip,
    "Reshape": _reshape,
    "Cast": _cast,
    "BitCast": _bit_cast,
    "ConstantOfShape": _constant_of_shape,
    "BatchNormalization": _batchnorm,
    "CastLike": _cast_like,
    "Dropout": _dropout,
    "Resize": _resize,
    "Upsample": _upsample,
    "GridSample": _grid_sample,
    "RoiAlign": _roi_align,
    "MaxPool": _max_pool,
    **QUANTIZATION_ADAPTERS,
}
