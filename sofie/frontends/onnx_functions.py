"""ONNX ops that sofie has no declaration for but that ONNX defines as a function of other ops
(Mish, Range, SoftmaxCrossEntropyLoss, Attention, ...): the schema's function body, inlined
into the importing graph, so they import as the ops they are made of.

A context-dependent function (one whose body depends on the input types or on which optional
inputs are present) is built by onnx for this node and these input types. The body's values
are renamed into the node's scope; attribute references (`ref_attr_name`) take the node's
attribute, or the schema's default.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import defs, helper

from sofie.ir.types import TensorType, numpy_dtype


def function_body(node: onnx.NodeProto, opset: int,
                  input_types: list[TensorType | None]) -> tuple[list[onnx.NodeProto], int] | None:
    """(the nodes that compute `node`, the opset they are written in), or None when the op is
    not defined as a function at this opset."""
    try:
        schema = defs.get_schema(node.op_type, opset, node.domain)
    except defs.SchemaError:
        return None
    fn = _function(schema, node, opset, input_types)
    if fn is None:
        return None
    version = next((o.version for o in fn.opset_import if o.domain in ("", "ai.onnx")), opset)
    return _inline(fn, node, schema), version


def defines_function(op_type: str, opset: int) -> bool:
    """Whether ONNX defines the default-domain op as a function at `opset` (it may still refuse
    a context-dependent body for some input types; importing the node says so)."""
    try:
        schema = defs.get_schema(op_type, opset, "")
    except defs.SchemaError:
        return False
    return bool(schema.has_context_dependent_function or schema.has_function)


def _function(schema: defs.OpSchema, node: onnx.NodeProto, opset: int,
              input_types: list[TensorType | None]) -> onnx.FunctionProto | None:
    fn = onnx.FunctionProto()
    if schema.has_context_dependent_function:
        types = [_type_proto(t).SerializeToString() if t is not None else onnx.TypeProto().SerializeToString()
                 for t in input_types]
        # the body is written for the newest function version at or below the model's opset
        version = max((v for v in schema.context_dependent_function_opset_versions if v <= opset), default=opset)
        try:
            data = schema.get_context_dependent_function_with_opset_version(version, node.SerializeToString(), types)
        except Exception:  # onnx refuses to build the body for these inputs
            return None
        if not data:
            return None
        fn.ParseFromString(data)
        return fn
    if schema.has_function:
        versions = [v for v in schema.function_opset_versions if v <= opset]
        if versions:
            fn.ParseFromString(schema.get_function_with_opset_version(max(versions)))
        else:
            fn.CopyFrom(schema.function_body)
        return fn
    return None


def _type_proto(t: TensorType) -> onnx.TypeProto:
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(numpy_dtype(t.dtype)))
    return helper.make_tensor_type_proto(elem, [d if isinstance(d, int) else str(d) for d in t.shape])


def _inline(fn: onnx.FunctionProto, node: onnx.NodeProto, schema: defs.OpSchema) -> list[onnx.NodeProto]:
    scope = (node.name or node.op_type) + "/"
    names = {formal: actual for formal, actual in zip(fn.input, node.input)}
    names.update({formal: "" for formal in fn.input[len(node.input):]})
    names.update({formal: actual for formal, actual in zip(fn.output, node.output)})
    given = {a.name: a for a in node.attribute}

    def rename(v: str) -> str:
        if v == "":
            return ""
        return names.setdefault(v, scope + v)

    out = []
    for k, body_node in enumerate(fn.node):
        n = onnx.NodeProto()
        n.CopyFrom(body_node)
        n.name = scope + (body_node.name or f"{body_node.op_type}_{k}")
        n.input[:] = [rename(v) for v in body_node.input]
        n.output[:] = [rename(v) for v in body_node.output]
        del n.attribute[:]
        for a in body_node.attribute:
            resolved = _resolve(a, given, schema)
            if resolved is not None:
                n.attribute.append(resolved)
        for a in n.attribute:  # a body (If branch, Loop body) reads function values by their names too
            for g in [a.g] if a.type == onnx.AttributeProto.GRAPH else a.graphs:
                _rename_captures(g, names)
        out.append(n)
    return out


def _rename_captures(g: onnx.GraphProto, names: dict[str, str]) -> None:
    """Renames, in place, the function-scope names a subgraph reads (its own names cannot
    shadow them: ONNX names are unique across scopes)."""
    for n in g.node:
        n.input[:] = [names.get(v, v) for v in n.input]
        for a in n.attribute:
            for sub in [a.g] if a.type == onnx.AttributeProto.GRAPH else a.graphs:
                _rename_captures(sub, names)
    for o in g.output:
        o.name = names.get(o.name, o.name)


def _resolve(a: onnx.AttributeProto, given: dict[str, onnx.AttributeProto],
             schema: defs.OpSchema) -> onnx.AttributeProto | None:
    """The body attribute `a`, with a reference to one of the node's attributes replaced by its
    value (the schema's default when the node leaves it out; dropped when there is none)."""
    if not a.ref_attr_name:
        return a
    src = given.get(a.ref_attr_name)
    if src is None:
        spec = schema.attributes.get(a.ref_attr_name)
        if spec is None or not spec.default_value.name and spec.default_value.type == 0:
            return None
        src = spec.default_value
    out = onnx.AttributeProto()
    out.CopyFrom(src)
    out.name = a.name
    return out
