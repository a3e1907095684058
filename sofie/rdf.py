"""`sofie.rdf.define(df, name, model, columns)`: a model's output as an RDataFrame column.

The model runs from a shared library built with the C++ compiler at -O3 (cling would JIT the
generated code at -O1, several times slower); ROOT's interpreter sees only a small bridge
header: a functor whose call operator takes each column in its own type, converts to the
model's input types and calls into the library. On a local RDataFrame the functor goes to a
typed `DefineSlot` (one Session per slot, weights loaded once and shared); a distributed
RDataFrame has no `DefineSlot`, so the bridge also offers a process-wide instance for a
string `Define`, and the library, the bridge header and the weights are shipped to the
workers with ROOT.RDF.Distributed.DistributeSharedLibs/DistributeHeaders/DistributeFiles.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from typing import Any

from sofie.backend_cpp.toolchain import blas_flags, run_compiler
from sofie.backend_cpp.types import cpp_type
from sofie.compiled import CompiledModel
from sofie.errors import SofieError
from sofie.jit import cache_dir, cpu_id, source_hash
from sofie.jit import compile as sofie_compile

_LOCK = threading.Lock()


@dataclass
class _Tensor:
    name: str
    dtype: str
    event_size: int  # elements per event (the batch axis excluded)


@dataclass
class _Model:
    name: str
    header: str
    weights: str
    blas: str
    inputs: list[_Tensor]
    outputs: list[_Tensor]


def define(df: Any, name: str, model: Any, columns: list[str], *, output: int = 0,
           ship_weights: bool = True, **compile_options: Any) -> Any:
    """Returns `df` with a column `name`: output `output` of `model` on each event, whose
    inputs are `columns` in order: arithmetic scalars of any type (converted to the model's
    input types; the model's inputs, flattened, take them in order), or, for a model with one
    input, also RVec columns (TTree arrays), whose sizes are checked on every event. The new
    column is a single value when the output has one element per event, else an ROOT::RVec.

    `model`: a `CompiledModel`, a `sofie.compile` cache folder, or anything `sofie.compile`
    takes (with `compile_options`). `df` may be a local or a distributed RDataFrame; a
    distributed one gets the bridge library and header shipped to its workers, and the weights
    too unless `ship_weights=False` (the workers read them at the same path: a shared file
    system)."""
    import ROOT

    m = _model(model, compile_options)
    columns = list(columns)
    wanted = sum(t.event_size for t in m.inputs)
    types = [str(df.GetColumnType(c)) for c in columns]
    arrays = [_is_array(t) for t in types]
    if any(arrays) and len(m.inputs) != 1:
        raise SofieError(f"sofie.rdf.define: array columns ({', '.join(c for c, a in zip(columns, arrays) if a)}) "
                         f"need a model with one input; {m.name} has {len(m.inputs)}")
    if not any(arrays) and len(columns) != wanted:
        raise SofieError(f"sofie.rdf.define: model {m.name} takes {wanted} value(s) per event "
                         f"({_describe(m.inputs)}), got {len(columns)} column(s)")
    if not 0 <= output < len(m.outputs):
        raise SofieError(f"sofie.rdf.define: model {m.name} has {len(m.outputs)} output(s), asked for {output}")
    lib, symbol = _library(m)
    bridge, ns = _bridge(m, lib, symbol, types, output)
    if type(df).__module__.startswith("ROOT._distrdf"):
        dist = ROOT.RDF.Distributed
        dist.DistributeSharedLibs([lib])
        dist.DistributeHeaders([bridge])
        if ship_weights:
            dist.DistributeFiles([m.weights])
        return df.Define(name, f"{ns}::instance()(rdfslot_, {', '.join(columns)})")
    _load(ROOT, lib, bridge)
    node = ROOT.RDF.AsRNode(df)
    try:
        return getattr(ROOT, ns).define(node, name, columns, node.GetNSlots())
    except Exception as e:  # a std::runtime_error from loading the weights
        raise SofieError(f"sofie.rdf.define: {e}") from None


def _is_array(column_type: str) -> bool:
    """RVec columns (TTree arrays read as RVecs) feed several values; other columns must be
    arithmetic scalars (the interpreter refuses any other type in the conversion)."""
    t = column_type.replace(" ", "")
    if t.startswith(("ROOT::VecOps::RVec<", "ROOT::RVec<", "RVec<")):
        return True
    if "<" in t or "[" in t:
        raise SofieError(f"sofie.rdf.define: a column of type {column_type} cannot feed a model "
                         f"(scalar or RVec columns only)")
    return False


def _load(ROOT: Any, lib: str, bridge: str) -> None:
    if ROOT.gSystem.Load(lib) < 0:
        raise SofieError(f"sofie.rdf: ROOT could not load {lib}")
    if not ROOT.gInterpreter.Declare(f'#include "{bridge}"'):
        raise SofieError(f"sofie.rdf: ROOT could not declare {bridge}")


def _describe(tensors: list[_Tensor]) -> str:
    return ", ".join(f"{t.name}: {t.event_size} {t.dtype}" for t in tensors)


def _model(model: Any, compile_options: dict[str, Any]) -> _Model:
    if isinstance(model, CompiledModel):
        folder, info = model.folder, model.info
    elif isinstance(model, str | os.PathLike) and os.path.isfile(os.path.join(model, "manifest.json")):
        folder = str(model)
        with open(os.path.join(folder, "manifest.json")) as f:
            info = json.load(f)
    else:
        cm = sofie_compile(model, **compile_options)
        folder, info = cm.folder, cm.info
    header = os.path.join(folder, info["header"])
    with open(header) as f:
        blas = re.search(r"^#define SOFIE_BLAS_(\w+)", f.read(), re.M)
    batch = info.get("batch_symbol")
    if info.get("dims"):
        raise SofieError(f"sofie.rdf: model {info['name']} has dims other than the batch "
                         f"({', '.join(info['dims'])}): one event per call needs fixed sizes")

    def tensors(entries: list) -> list[_Tensor]:
        out = []
        for n, dt, shape in entries:
            dims = list(shape)
            if dims and dims[0] == batch:
                dims = dims[1:]
            elif batch is not None:
                raise SofieError(f"sofie.rdf: model {info['name']}: '{n}' does not hold the batch {batch} "
                                 f"on axis 0 (shape {shape})")
            elif dims and dims[0] == 1:
                dims = dims[1:]
            if any(not isinstance(d, int) for d in dims):
                raise SofieError(f"sofie.rdf: model {info['name']}: '{n}' has shape {shape}")
            cpp_type(dt)  # refuses element types with no C++ spelling
            size = 1
            for d in dims:
                size *= d
            out.append(_Tensor(n, dt, size))
        return out

    return _Model(info["name"], header, os.path.join(folder, info["weights"]),
                  blas.group(1).lower() if blas else "none", tensors(info["inputs"]), tensors(info["outputs"]))


def _library(m: _Model) -> tuple[str, str]:
    """The bridge library for a model, built once (cached by the header's content, sofie's
    sources and the CPU); returns its path and the prefix of its C symbols."""
    with open(m.header, "rb") as f:
        text = f.read()
    key = hashlib.sha256(b"|".join([text, m.blas.encode(), source_hash().encode(), cpu_id().encode()]))
    key = key.hexdigest()[:20]
    symbol = f"sofie_rdf_{key}"
    folder = os.path.join(cache_dir(), "rdf", key)
    lib = os.path.join(folder, f"lib{symbol}.so")
    with _LOCK:
        if not os.path.isfile(lib):
            os.makedirs(os.path.join(cache_dir(), "rdf"), exist_ok=True)
            tmp = tempfile.mkdtemp(prefix=f"{key}.", dir=os.path.join(cache_dir(), "rdf"))
            src = os.path.join(tmp, "bridge.cpp")
            with open(src, "w") as f:
                f.write(_library_source(m, symbol))
            run_compiler(["-std=c++17", "-O3", "-march=native", "-shared", "-fPIC", "-fvisibility=hidden",
                          f"-I{os.path.dirname(m.header)}", src, "-o", os.path.join(tmp, os.path.basename(lib)),
                          *blas_flags(m.blas)], f"the RDataFrame library for {m.name}")
            try:
                os.rename(tmp, folder)  # atomic: a concurrent builder of the same key loses harmlessly
            except OSError:
                import shutil
                shutil.rmtree(tmp, ignore_errors=True)
    return lib, symbol


def _library_source(m: _Model, symbol: str) -> str:
    """C entry points around the model's Sessions (C, so that the bridge need not see the
    model's code and no C++ exception crosses into the interpreter's frames)."""
    args = ["1"]
    args += [f"static_cast<const {cpp_type(t.dtype)}*>(in[{i}])" for i, t in enumerate(m.inputs)]
    args += [f"static_cast<{cpp_type(t.dtype)}*>(out[{i}])" for i, t in enumerate(m.outputs)]
    return f'''// The RDataFrame bridge library of model {m.name}, generated by sofie.rdf.
#include "{os.path.basename(m.header)}"

#include <exception>
#include <string>

namespace {{
using Sessions = sofie::rt::SlotSessions<TMVA_SOFIE_{m.name}::Session>;
thread_local std::string last_error;

const char* fail(const std::exception& e) {{
  last_error = e.what();
  return last_error.c_str();
}}
}}  // namespace

#define SOFIE_EXPORT extern "C" __attribute__((visibility("default")))

// Sessions for `nslots` slots sharing one load of the weights, found as given or beside `beside`.
SOFIE_EXPORT const char* {symbol}_make(unsigned nslots, const char* weights, const char* beside, void** state) {{
  try {{
    *state = new Sessions(nslots, sofie::rt::find_weights(weights, beside));
    return nullptr;
  }} catch (const std::exception& e) {{
    return fail(e);
  }}
}}

SOFIE_EXPORT void {symbol}_free(void* state) {{ delete static_cast<Sessions*>(state); }}

// One event: in[i] and out[i] point at each input's and output's values. nullptr, or the error.
SOFIE_EXPORT const char* {symbol}_eval(void* state, unsigned slot, const void* const* in, void* const* out) {{
  try {{
    (*static_cast<Sessions*>(state))[slot].infer({", ".join(args)});
    return nullptr;
  }} catch (const std::exception& e) {{
    return fail(e);
  }}
}}
'''


def _bridge(m: _Model, lib: str, symbol: str, types: list[str], output: int) -> tuple[str, str]:
    """The header ROOT's interpreter reads for one (model, column types, output): returns its
    path and its namespace."""
    key = hashlib.sha256(repr((symbol, m.weights, types, output)).encode()).hexdigest()[:16]
    ns = f"sofie_rdf_{key}"
    path = os.path.join(os.path.dirname(lib), f"{ns}.hxx")
    text = _bridge_source(m, symbol, ns, types, output)
    with _LOCK:
        if not os.path.isfile(path):
            tmp = path + f".{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, path)
    return path, ns


def _fill_scalars(m: _Model) -> list[str]:
    """Scalar columns: each input's values, in order, converted to its element type."""
    fill, k = [], 0
    for i, t in enumerate(m.inputs):
        ct = cpp_type(t.dtype)
        values = ", ".join(f"static_cast<{ct}>(c{k + j})" for j in range(t.event_size))
        fill.append(f"    const {ct} in{i}[{t.event_size}] = {{{values}}};")
        k += t.event_size
    return fill


def _fill_arrays(m: _Model, types: list[str]) -> list[str]:
    """Scalar and RVec columns filling the model's single input; sizes checked per event."""
    t = m.inputs[0]
    ct, n = cpp_type(t.dtype), t.event_size
    size_error = (f'throw std::runtime_error("sofie model {m.name}: the columns hold " + std::to_string(k) '
                  f'+ " value(s) in this event, the model takes {n}");')
    fill = [f"    {ct} in0[{n}];", "    std::size_t k = 0;"]
    for i, ty in enumerate(types):
        if _is_array(ty):
            fill += [f"    if (k + c{i}.size() > {n}) {{ k += c{i}.size(); {size_error} }}",
                     f"    for (const auto& v : c{i}) in0[k++] = static_cast<{ct}>(v);"]
        else:
            fill += [f"    if (k < {n}) in0[k] = static_cast<{ct}>(c{i});", "    ++k;"]
    fill.append(f"    if (k != {n}) {size_error}")
    return fill


def _bridge_source(m: _Model, symbol: str, ns: str, types: list[str], output: int) -> str:
    params = ", ".join(f"const {t}& c{i}" if _is_array(t) else f"{t} c{i}" for i, t in enumerate(types))
    fill = _fill_arrays(m, types) if any(_is_array(t) for t in types) else _fill_scalars(m)
    outs = []
    for i, t in enumerate(m.outputs):
        if i != output:
            outs.append(f"    {cpp_type(t.dtype)} out{i}[{t.event_size}];")
    sel = m.outputs[output]
    ct = cpp_type(sel.dtype)
    single = sel.event_size == 1
    result = ct if single else f"ROOT::RVec<{ct}>"
    make_result = f"    {ct} y{{}};" if single else f"    ROOT::RVec<{ct}> y({sel.event_size});"
    out_ptrs = ", ".join(("&y" if single else "y.data()") if i == output else f"out{i}"
                         for i in range(len(m.outputs)))
    guard = ns.upper() + "_HXX"
    return f'''// RDataFrame bridge to sofie model {m.name} (library lib{symbol}.so), generated by sofie.rdf.
// Column types: {", ".join(types)}; output {output} ({m.outputs[output].name}).
#ifndef {guard}
#define {guard}

#include <algorithm>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "ROOT/RDataFrame.hxx"
#include "ROOT/RVec.hxx"
#include "TROOT.h"

extern "C" {{
const char* {symbol}_make(unsigned nslots, const char* weights, const char* beside, void** state);
void {symbol}_free(void* state);
const char* {symbol}_eval(void* state, unsigned slot, const void* const* in, void* const* out);
}}

namespace {ns} {{

// The weights as given, else the file of that name beside this header (where a distributed
// worker finds the files shipped to it).
inline std::shared_ptr<void> make(unsigned nslots) {{
  void* state = nullptr;
  if (const char* e = {symbol}_make(nslots, {json.dumps(m.weights)}, __FILE__, &state)) {{
    throw std::runtime_error(std::string("sofie model {m.name}: ") + e);
  }}
  return std::shared_ptr<void>(state, {symbol}_free);
}}

// Copies (RDataFrame makes them) share the Sessions.
struct Functor {{
  std::shared_ptr<void> state;

  {result} operator()(unsigned slot, {params}) const {{
{chr(10).join(fill)}
{chr(10).join(outs)}
{make_result}
    const void* const in[] = {{{", ".join(f"in{i}" for i in range(len(m.inputs)))}}};
    void* const out[] = {{{out_ptrs}}};
    if (const char* e = {symbol}_eval(state.get(), slot, in, out)) {{
      throw std::runtime_error(std::string("sofie model {m.name}: ") + e);
    }}
    return y;
  }}
}};

inline ROOT::RDF::RNode define(ROOT::RDF::RNode df, const std::string& name,
                               const std::vector<std::string>& columns, unsigned nslots) {{
  return df.DefineSlot(name, Functor{{make(nslots)}}, columns);
}}

// For a string Define (distributed RDataFrame): one instance per process, made on first use
// with a Session for each slot of ROOT's thread pool.
inline Functor& instance() {{
  static Functor f{{make(std::max(1u, ROOT::GetThreadPoolSize()))}};
  return f;
}}

}}  // namespace {ns}

#endif  // {guard}
'''
