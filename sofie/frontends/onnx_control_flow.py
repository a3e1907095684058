"""ONNX control flow (If, Loop, Scan) resolved at import time into plain graph-dialect ops.

sofie compiles one static shape plan, so control flow is unrolled when the importer meets it:

- If: with a compile-time condition, the branch taken is imported; with a run-time one, both
  branches are, and Where picks each output (only when the branches agree in shape and type:
  ONNX ops have no side effects, so computing the branch not taken changes nothing).
- Loop: with a compile-time trip count and condition (a constant, or one the body computes
  from the iteration number and constants), the body is imported once per iteration, the
  carried values threaded through and the scan outputs stacked on a new axis 0.
- Scan (opset 8 with its batch axis, and 9+): the body is imported once per element of the
  static sequence length, honoring the input and output axes and directions.

Each body copy is imported by the importer itself (`_Importer.subgraph`), so a body holds any
op sofie imports, Constants and initializers (made once, shared by the copies), names of the
enclosing scopes, and nested control flow. Unrolling is capped (MAX_UNROLLED_NODES).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import helper

from sofie.errors import SofieError
from sofie.ir.core import Value
from sofie.ir.folding import known_value
from sofie.ir.types import dtype_name

if TYPE_CHECKING:
    from sofie.frontends.onnx import _Importer

# body nodes imported by unrolling, per model. Compile time grows faster than the op count (an
# RNN step of 8 ops unrolled 64 times: 10 s of Python, most of it the memory plan, plus g++;
# 256 times: 3.5 min in all), so a longer unrolling is refused rather than compiled for an hour.
MAX_UNROLLED_NODES = 1 << 12

RUN_TIME = "computed at run time"  # the words the conformance runner retries with bound inputs


# ---- If ---------------------------------------------------------------------------------------

def import_if(imp: _Importer, node: onnx.NodeProto, inputs: list[Value | None], attrs: dict[str, Any],
              loc: str, where: str) -> list[Value]:
    cond = _operand(inputs, 0, "cond", where)
    then_g, else_g = attrs.get("then_branch"), attrs.get("else_branch")
    if then_g is None or else_g is None:
        raise SofieError(f"{where}: If needs both then_branch and else_branch")
    if len(then_g.output) != len(else_g.output):
        raise SofieError(f"{where}: then_branch has {len(then_g.output)} outputs, else_branch "
                         f"{len(else_g.output)}; they must have as many")
    if cond.type.dtype != dtype_name(np.dtype(np.bool_)) or not cond.type.is_static or cond.type.static_size() != 1:
        raise SofieError(f"{where}: cond must be a bool tensor of one element, got {cond.type}")
    taken = _known(cond)
    if taken is not None:
        branch, label = (then_g, "then") if bool(taken.reshape(-1)[0]) else (else_g, "else")
        return _body(imp, branch, {}, f"{loc}/{label}/", where, f"{label}_branch")
    then_out = _body(imp, then_g, {}, f"{loc}/then/", where, "then_branch")
    else_out = _body(imp, else_g, {}, f"{loc}/else/", where, "else_branch")
    flag = cond if cond.type.rank == 0 else imp.create(
        "graph.reshape", [cond, imp.constant(np.zeros(0, np.int64), loc + "/scalar")], {}, loc + "/cond", where)
    outs = []
    for k, (t, e) in enumerate(zip(then_out, else_out)):
        if t is e:
            outs.append(t)
            continue
        if t.type != e.type:
            raise SofieError(f"{where}: cond is {RUN_TIME} and output {k} differs between the branches "
                             f"(then: {t.type}, else: {e.type}); sofie computes both branches and selects, "
                             f"which needs the same shape and type (a compile-time cond picks one)")
        outs.append(imp.create("graph.where", [flag, t, e], {}, f"{loc}/select{k}", where))
    return outs


# ---- Loop -------------------------------------------------------------------------------------

def import_loop(imp: _Importer, node: onnx.NodeProto, inputs: list[Value | None], attrs: dict[str, Any],
                loc: str, where: str) -> list[Value]:
    body = _graph(attrs, "body", where)
    trip_v, cond_v = (inputs + [None, None])[:2]
    carried = [_operand(inputs, k, f"v_initial {k - 2}", where) for k in range(2, len(inputs))]
    if len(body.input) != 2 + len(carried):
        raise SofieError(f"{where}: the body takes {len(body.input)} inputs; expected 2 + {len(carried)} "
                         f"(iteration number, condition, the carried values)")
    n_scan = len(body.output) - 1 - len(carried)
    if n_scan < 0:
        raise SofieError(f"{where}: the body returns {len(body.output)} outputs; expected at least "
                         f"1 + {len(carried)} (condition, the carried values)")
    trip = None if trip_v is None else _known_int(trip_v, "trip count M", where)
    go = True if cond_v is None else _known_bool(cond_v, "initial condition", where)
    if trip is None and cond_v is None:
        raise SofieError(f"{where}: neither a trip count nor a condition: the loop never ends")
    if trip is not None and cond_v is None:
        _spend(imp, trip * _size(body), where, f"{trip} iterations of a {len(body.node)}-node body", dry=True)
    scans: list[list[Value]] = [[] for _ in range(n_scan)]
    i = 0
    while go and (trip is None or i < trip):
        _spend(imp, _size(body), where, f"more than {i} iterations of a {len(body.node)}-node body")
        counter = _scalar_input(imp, body.input[0], np.int64(i), where)
        running = _scalar_input(imp, body.input[1], np.bool_(True), where)
        outs = _body(imp, body, _bindings(body, [counter, running, *carried], where), f"{loc}/iter{i}/", where,
                     f"body, iteration {i}")
        carried = outs[1:1 + len(carried)]
        for k in range(n_scan):
            scans[k].append(outs[1 + len(carried) + k])
        i += 1
        if cond_v is not None and (trip is None or i < trip):  # the last iteration's cond is not read
            go = _known_bool(outs[0], f"condition computed by iteration {i - 1}", where)
    if n_scan and i == 0:
        raise SofieError(f"{where}: the loop runs zero times, so its scan outputs are empty; not supported")
    return carried + [_stack(imp, vals, 0, f"{loc}/scan_output{k}", where) for k, vals in enumerate(scans)]


# ---- Scan -------------------------------------------------------------------------------------

def import_scan(imp: _Importer, node: onnx.NodeProto, inputs: list[Value | None], attrs: dict[str, Any],
                loc: str, where: str) -> list[Value]:
    body = _graph(attrs, "body", where)
    m = int(attrs.get("num_scan_inputs", 0))
    if imp.opset < 9:
        return _scan_batched(imp, body, inputs, attrs, m, loc, where)
    if not 0 < m <= len(inputs):
        raise SofieError(f"{where}: num_scan_inputs {m} must be between 1 and the {len(inputs)} inputs")
    values = [_operand(inputs, k, f"input {k}", where) for k in range(len(inputs))]
    states, xs = values[:len(values) - m], values[len(values) - m:]
    k = max(0, len(body.output) - len(states))  # fewer outputs than states: _scan says so
    return _scan(imp, body, states, xs, _layout(attrs, m, k, where), loc, where)


@dataclass
class _Layout:
    """Where Scan finds its sequence in each scan input and puts it in each scan output."""

    in_axes: list[int]
    in_dirs: list[int]
    out_axes: list[int]
    out_dirs: list[int]


def _layout(attrs: dict[str, Any], m: int, k: int, where: str) -> _Layout:
    return _Layout(_ints(attrs, "scan_input_axes", m, where), _ints(attrs, "scan_input_directions", m, where),
                   _ints(attrs, "scan_output_axes", k, where), _ints(attrs, "scan_output_directions", k, where))


def _ints(attrs: dict[str, Any], name: str, n: int, where: str) -> list[int]:
    """An axes or directions attribute of n entries (0 each when absent)."""
    given = attrs.get(name)
    got = [0] * n if given is None else [int(a) for a in given]
    if len(got) != n:
        raise SofieError(f"{where}: {name} has {len(got)} entries; expected {n}")
    if "directions" in name and any(d not in (0, 1) for d in got):
        raise SofieError(f"{where}: {name} must be 0 (forward) or 1 (reverse), got {got}")
    return got


def _scan(imp: _Importer, body: onnx.GraphProto, states: list[Value], xs: list[Value], d: _Layout,
          loc: str, where: str) -> list[Value]:
    n_state = len(states)
    if len(body.input) != n_state + len(xs):
        raise SofieError(f"{where}: the body takes {len(body.input)} inputs; expected {n_state} states + "
                         f"{len(xs)} scan inputs")
    if len(body.output) < n_state:
        raise SofieError(f"{where}: the body returns {len(body.output)} outputs; expected at least the "
                         f"{n_state} states")
    axes = [_axis(a, x.type.rank, f"scan_input_axes entry {a}", where) for a, x in zip(d.in_axes, xs)]
    length = _sequence_length(xs, axes, where)
    _spend(imp, length * _size(body), where, f"{length} iterations of a {len(body.node)}-node body", dry=True)
    steps = []
    for j, (x, axis) in enumerate(zip(xs, axes)):
        parts = _unstack(imp, x, axis, length, f"{loc}/scan_input{j}", where)
        steps.append(parts[::-1] if d.in_dirs[j] else parts)
    scans: list[list[Value]] = [[] for _ in range(len(body.output) - n_state)]
    for t in range(length):
        _spend(imp, _size(body), where, f"{length} iterations of a {len(body.node)}-node body")
        outs = _body(imp, body, _bindings(body, states + [s[t] for s in steps], where), f"{loc}/iter{t}/",
                     where, f"body, iteration {t}")
        states = outs[:n_state]
        for k, v in enumerate(outs[n_state:]):
            scans[k].append(v)
    stacked = []
    for k, vals in enumerate(scans):
        axis = _axis(d.out_axes[k], vals[0].type.rank + 1, f"scan_output_axes entry {d.out_axes[k]}", where)
        stacked.append(_stack(imp, vals[::-1] if d.out_dirs[k] else vals, axis, f"{loc}/scan_output{k}", where))
    return states + stacked


def _scan_batched(imp: _Importer, body: onnx.GraphProto, inputs: list[Value | None], attrs: dict[str, Any],
                  m: int, loc: str, where: str) -> list[Value]:
    """Scan-8: every input has a batch axis 0 the body does not see, and the scan inputs their
    sequence on axis 1. Each batch element is scanned on its own, the results stacked again."""
    if not 0 < m <= len(inputs) - 1:
        raise SofieError(f"{where}: num_scan_inputs {m} must be between 1 and the {len(inputs) - 1} "
                         f"inputs after sequence_lens")
    values = [_operand(inputs, k, f"input {k}", where) for k in range(1, len(inputs))]
    n_state = len(values) - m
    batch = {v.type.shape[0] if v.type.rank else None for v in values}
    if len(batch) != 1 or not isinstance(next(iter(batch)), int):
        raise SofieError(f"{where}: Scan-8 inputs need the same static batch size on axis 0, got "
                         f"{', '.join(str(v.type) for v in values)}; sofie unrolls each batch element")
    size = next(iter(batch))
    _check_sequence_lens(inputs[0], values[n_state:], where)
    k = max(0, len(body.output) - n_state)
    d = _Layout([0] * m, _ints(attrs, "directions", m, where), [0] * k, [0] * k)  # outputs in iteration order
    parts = [_unstack(imp, v, 0, size, f"{loc}/input{j}", where) for j, v in enumerate(values)]
    per_batch = [_scan(imp, body, [p[b] for p in parts[:n_state]], [p[b] for p in parts[n_state:]], d,
                       f"{loc}/batch{b}", where) for b in range(size)]
    return [_stack(imp, [r[k] for r in per_batch], 0, f"{loc}/output{k}", where)
            for k in range(len(per_batch[0]))]


def _check_sequence_lens(lens: Value | None, xs: list[Value], where: str) -> None:
    if lens is None:
        return
    got = _known(lens)
    full = xs[0].type.shape[1] if xs and xs[0].type.rank > 1 else None
    if got is None or not np.all(got == full):
        raise SofieError(f"{where}: sequence_lens must be absent or a constant equal to the sequence "
                         f"length {full} for every batch element; sofie unrolls a fixed length")


def _sequence_length(xs: list[Value], axes: list[int], where: str) -> int:
    dims = {x.type.shape[a] for x, a in zip(xs, axes)}
    if len(dims) != 1:
        raise SofieError(f"{where}: the scan inputs disagree on the sequence length "
                         f"({', '.join(str(x.type) for x in xs)} along axes {axes})")
    length = next(iter(dims))
    if not isinstance(length, int):
        raise SofieError(f"{where}: the sequence length is the symbol '{length}'; sofie unrolls Scan "
                         f"over a static sequence length")
    if length == 0:
        raise SofieError(f"{where}: the sequence is empty; not supported")
    return length


# ---- shared helpers ---------------------------------------------------------------------------

def _body(imp: _Importer, graph: onnx.GraphProto, inputs: dict[str, Value], scope: str, where: str,
          what: str) -> list[Value]:
    try:
        return imp.subgraph(graph, inputs, scope)
    except SofieError as e:
        raise SofieError(f"{where}: in its {what}: {e}") from None


def _bindings(body: onnx.GraphProto, values: list[Value], where: str) -> dict[str, Value]:
    """The body's formal inputs bound to `values`, their declared element types checked."""
    out = {}
    for formal, v in zip(body.input, values):
        elem = formal.type.tensor_type.elem_type if formal.type.HasField("tensor_type") else None
        if elem is None and formal.type.WhichOneof("value"):
            raise SofieError(f"{where}: body input '{formal.name}' is not a tensor (sequences and "
                             f"optionals are not supported)")
        if elem:
            declared = _dtype(elem)
            if declared != v.type.dtype:
                raise SofieError(f"{where}: body input '{formal.name}' is declared {declared}, but gets "
                                 f"{v.type}")
        out[formal.name] = v
    return out


def _dtype(elem: int) -> str:
    try:
        return dtype_name(helper.tensor_dtype_to_np_dtype(elem))
    except (KeyError, SofieError):
        return onnx.TensorProto.DataType.Name(elem)


def _scalar_input(imp: _Importer, formal: onnx.ValueInfoProto, value: np.generic, where: str) -> Value:
    """A Loop's iteration number or condition for one copy of the body: a scalar, or the
    one-element shape the body declares."""
    dims = formal.type.tensor_type.shape.dim if formal.type.HasField("tensor_type") else []
    shape = tuple(d.dim_value for d in dims) if all(d.dim_value == 1 for d in dims) else ()
    return imp.constant(np.full(shape, value), f"{formal.name}_{value}")


def _unstack(imp: _Importer, x: Value, axis: int, n: int, loc: str, where: str) -> list[Value]:
    """The n slices of x along axis, that axis removed."""
    parts = [x] if n == 1 else imp.b.create("graph.split", [x], {"axis": axis, "num_outputs": n}, loc).results
    return [imp.create("graph.squeeze", [p], {"axes": [axis]}, f"{loc}/{k}", where) for k, p in enumerate(parts)]


def _stack(imp: _Importer, values: list[Value], axis: int, loc: str, where: str) -> Value:
    """The values stacked along a new axis."""
    parts = [imp.create("graph.unsqueeze", [v], {"axes": [axis]}, f"{loc}/{k}", where) for k, v in enumerate(values)]
    if len(parts) == 1:
        return parts[0]
    try:
        return imp.b.create("graph.concat", parts, {"axis": axis}, loc).result
    except SofieError as e:
        raise SofieError(f"{where}: the iterations' scan outputs cannot be stacked (they differ in shape: "
                         f"{', '.join(sorted({str(v.type) for v in values}))}): {e}") from None


def _spend(imp: _Importer, nodes: int, where: str, what: str, dry: bool = False) -> None:
    """Counts unrolled body nodes against MAX_UNROLLED_NODES (`dry`: only checks they fit)."""
    if imp.unrolled + nodes > MAX_UNROLLED_NODES:
        raise SofieError(f"{where}: unrolling needs {what}, beyond sofie's budget of {MAX_UNROLLED_NODES} "
                         f"unrolled body nodes per model ({imp.unrolled} used); sofie unrolls control flow "
                         f"at compile time")
    if not dry:
        imp.unrolled += nodes


def _size(body: onnx.GraphProto) -> int:
    return max(1, len(body.node))  # a body of no nodes still costs its bindings


def _graph(attrs: dict[str, Any], name: str, where: str) -> onnx.GraphProto:
    g = attrs.get(name)
    if not isinstance(g, onnx.GraphProto):
        raise SofieError(f"{where}: missing graph attribute '{name}'")
    return g


def _operand(inputs: list[Value | None], k: int, what: str, where: str) -> Value:
    v = inputs[k] if k < len(inputs) else None
    if v is None:
        raise SofieError(f"{where}: {what} is missing")
    return v


def _axis(axis: int, rank: int, what: str, where: str) -> int:
    if not -rank <= axis < rank:
        raise SofieError(f"{where}: {what} is out of range for rank {rank}")
    return axis % rank


def _known(v: Value) -> np.ndarray | None:
    got = known_value(v)
    return None if got is None or got.dtype == object else got


def _known_scalar(v: Value, what: str, where: str, known_as: str) -> np.generic:
    """The one element of a value Loop needs at compile time; `known_as` says how it may be known."""
    got = _known(v)
    if got is None:
        raise SofieError(f"{where}: the {what} is {RUN_TIME}; sofie unrolls Loop at compile time and "
                         f"needs it known ({known_as})")
    if got.size != 1:
        raise SofieError(f"{where}: the {what} has {got.size} elements; expected one")
    return got.reshape(-1)[0]


def _known_bool(v: Value, what: str, where: str) -> bool:
    return bool(_known_scalar(v, what, where, "a constant, or computed from the iteration number and constants"))


def _known_int(v: Value, what: str, where: str) -> int:
    return max(0, int(_known_scalar(v, what, where, "a constant, or derived from static shapes")))


CONTROL_FLOW = {"If": import_if, "Loop": import_loop, "Scan": import_scan}

# inputs read at compile time (positions): Loop's trip count and initial condition
COMPILE_TIME_INPUTS = {"Loop": (0, 1)}
