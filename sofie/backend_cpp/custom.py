"""C++ of custom operators: the call of each custom op, and the code it needs in the header.

A custom op (see `sofie.custom_ops`) brings its C++ either as a function body, which the
header defines once inside the model's namespace, or as a header of the user's that the output
folder carries (`custom/NAME.hxx`) and the model header includes. Either way the op's call
passes each tensor as a `sofie::rt::View` (pointer, shape, rank) and each attribute as a C++
value (`sofie_rt/custom.hxx`), so the C++ side is one function with a fixed convention.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from sofie.backend_cpp.kernels import EMITTERS
from sofie.backend_cpp.names import Names
from sofie.backend_cpp.scalar import literal
from sofie.backend_cpp.types import cpp_type
from sofie.errors import SofieError
from sofie.ir.core import Function, Operation

# attribute kind -> the C++ parameter type of the custom op's function
ATTR_TYPES = {"int": "std::int64_t", "float": "float", "str": "const char*",
              "ints": "sofie::rt::List<std::int64_t>", "floats": "sofie::rt::List<float>"}
MAX_RANK = 8  # sofie_rt/custom.hxx: kMaxCustomRank


@dataclass(frozen=True)
class CustomCode:
    """The C++ of one custom op. `function` is what the call names; `body` (with parameters
    named like the op's inputs, outputs and attributes) or `header` (a file defining
    `function`) supplies it."""

    function: str
    tensors: tuple[tuple[str, bool], ...]  # (name, written) in call order
    attrs: tuple[tuple[str, str], ...]      # (name, kind) in call order
    body: str = ""
    header: str = ""

    def definition(self) -> list[str]:
        if not self.body:
            return []
        params = [f"sofie::rt::View<T_{name}> {name}" for name, _ in self.tensors]
        params += [f"{ATTR_TYPES[kind]} {name}" for name, kind in self.attrs]
        tparams = ", ".join(f"class T_{name}" for name, _ in self.tensors)
        return [f"template <{tparams}>",
                f"inline void {self.function}({', '.join(params)}) {{",
                *("  " + line if line.strip() else "" for line in self.body.strip("\n").splitlines()),
                "}", ""]

    def include(self) -> str:
        return f'#include "custom/{os.path.basename(self.header)}"' if self.header else ""


CUSTOM_CODE: dict[str, CustomCode] = {}  # low op name -> its C++


def register_custom_code(low_name: str, code: CustomCode) -> None:
    CUSTOM_CODE[low_name] = code
    EMITTERS[low_name] = _call


def used_custom_code(f: Function) -> list[CustomCode]:
    """The custom ops' C++ a function calls, once each, in first-use order."""
    seen: dict[str, CustomCode] = {}
    for op in f.ops:
        if op.name in CUSTOM_CODE:
            seen.setdefault(op.name, CUSTOM_CODE[op.name])
    return list(seen.values())


def _call(op: Operation, n: Names) -> list[str]:
    code = CUSTOM_CODE[op.name]
    lines, args = [], []
    for v, (name, written) in zip(op.operands, code.tensors, strict=True):
        if v.type.rank > MAX_RANK:
            raise SofieError(f"{op.describe()}: operand '{name}' has rank {v.type.rank}; a custom op takes "
                             f"tensors of rank <= {MAX_RANK}")
        t = ("" if written else "const ") + cpp_type(v.type.dtype)
        dims = ", ".join(n.dim(d) for d in v.type.shape)
        args.append(f"sofie::rt::View<{t}>{{{n[v]}, {{{{{dims}}}}}, {v.type.rank}}}")
    for name, kind in code.attrs:
        value = op.attr(name)
        if kind in ("ints", "floats"):
            elem = "std::int64_t" if kind == "ints" else "float"
            if value:
                items = ", ".join(str(int(x)) if kind == "ints" else literal(float(x), "f32") for x in value)
                lines.append(f"static constexpr {elem} a_{name}[] = {{{items}}};")
                args.append(f"sofie::rt::List<{elem}>{{a_{name}, {len(value)}}}")
            else:
                args.append(f"sofie::rt::List<{elem}>{{nullptr, 0}}")
        elif kind == "str":
            args.append(json.dumps(value))  # a JSON string is a valid C++ literal for printable text
        elif kind == "float":
            args.append(literal(float(value), "f32"))
        else:
            args.append(f"std::int64_t{{{int(value)}}}")
    call = f"{code.function}({', '.join(args)});"
    return ["{", *("  " + line for line in lines), "  " + call, "}"] if lines else [call]
