"""Mutated inputs get a SofieError or compile; never another exception (a crash of sofie).
The mutations that compile are then built and run: their C++ must build, run, and agree with
onnxruntime (ONNX cases) or sofie's numpy interpreter (IR cases).

Seeded, so a failure reproduces: IR text with characters deleted, inserted or replaced, and
the bundled ONNX model with attribute values, inputs and input dims changed at random. The
crashes the fuzz once found have direct regression tests at the end of this file.
"""

from __future__ import annotations

import functools
import hashlib
import os
import random
import shutil
import subprocess
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from sofie.backend_cpp.emit import emit
from sofie.backend_cpp.header import emit_header
from sofie.backend_cpp.symbols import model_symbols
from sofie.backend_cpp.types import cpp_type
from sofie.errors import SofieError
from sofie.frontends.onnx import load_onnx
from sofie.ir.core import Module
from sofie.ir.interpret import run_function
from sofie.ir.parser import parse
from sofie.ir.printer import print_module
from sofie.ir.types import dim_factors, dtype_name, numpy_dtype
from sofie.ir.verifier import verify
from sofie.jit import cache_dir
from sofie.pipeline import DEFAULT_PIPELINE, run_pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PASS_TESTS = os.path.join(ROOT, "tests", "passes")
ALPHABET = "%{}[]()<>x,=\":0123456789abcNf.-_"
IR_MUTATIONS, ONNX_MUTATIONS = 500, 150

# Floors on the share of mutations that compile. Measured (seeds 0-3 / 0-2): IR 17-28 of 500
# (3.4-5.6 %), ONNX 28-35 of 150 (19-23 %). Without a floor a change that makes sofie reject
# (nearly) everything, e.g. a parser or frontend check too strict, would leave this test green
# while it only exercised error paths; the floors sit a little below the lowest seed so that
# an unrelated change of the mutated sources (the pass tests' .ir files) does not trip them.
# After the core's second step (low IR sources such as lower.ir and the invalid/ tests among
# the mutated files, signature and plan checks) seed 2 compiles 11 of 500.
IR_MIN_COMPILED = 9       # 1.8 %
ONNX_MIN_COMPILED = 23    # 15 %

# Built cases against their reference: float32, the same tolerances as the op tests (sums in
# another order), NaN where the reference has NaN (mutated attributes produce NaN and inf).
RTOL, ATOL = 1e-4, 1e-5
BATCH = 2  # the value of the batch symbol when the cases run


def compile_module(m: Module) -> Module:
    """Passes and lowering, then the C++ text (not built): the low module."""
    low, _ = run_pipeline(m, DEFAULT_PIPELINE)
    emit_header(low, fingerprint=1, n_tensors=1, blas="none")
    return low


def mutate_text(text: str, rng: random.Random) -> str:
    t = list(text)
    for _ in range(rng.randint(1, 3)):
        k = rng.randrange(len(t))
        r = rng.random()
        if r < 0.4:
            del t[k]
        elif r < 0.7:
            t.insert(k, rng.choice(ALPHABET))
        else:
            t[k] = rng.choice(ALPHABET)
    return "".join(t)


@functools.cache
def ir_texts() -> tuple[str, ...]:
    """The pass tests' IR without its comment lines (RUN / CHECK): a mutation there changes
    nothing, and made most of the 'compiled' mutations before."""
    texts = []
    for f in sorted(os.listdir(PASS_TESTS)):
        if f.endswith(".ir"):
            with open(os.path.join(PASS_TESTS, f)) as fh:
                texts.append("\n".join(ln for ln in fh.read().splitlines() if not ln.lstrip().startswith("//")))
    return tuple(texts)


@functools.cache
def ir_fuzz(seed: int) -> tuple[int, tuple[str, ...]]:
    """(mutations that compiled, the distinct compiled modules as printed before the passes)."""
    rng = random.Random(seed)
    compiled, distinct = 0, {}
    for _ in range(IR_MUTATIONS):
        try:
            m = parse(mutate_text(rng.choice(ir_texts()), rng))
            verify(m)
            text = print_module(m, inline_limit=1 << 30)
            compile_module(m)
        except SofieError:
            continue
        compiled += 1
        distinct[text] = None
    return compiled, tuple(distinct)


@pytest.mark.parametrize("seed", range(4))
def test_mutated_ir_text(seed: int) -> None:
    compiled, _ = ir_fuzz(seed)
    assert compiled >= IR_MIN_COMPILED, f"only {compiled} of {IR_MUTATIONS} mutations compiled"


def mutate_model(m: onnx.ModelProto, rng: random.Random) -> None:
    node = rng.choice(m.graph.node)
    r = rng.random()
    if r < 0.5 and node.attribute:
        a = rng.choice(node.attribute)
        if a.type == onnx.AttributeProto.INTS and a.ints:
            a.ints[rng.randrange(len(a.ints))] = rng.choice([-1, 0, 1, 2, 3, 7, 100])
        elif a.type == onnx.AttributeProto.INT:
            a.i = rng.choice([-3, -1, 0, 1, 2, 5])
        elif a.type == onnx.AttributeProto.FLOAT:
            a.f = rng.choice([0.0, -1.0, 1e30, float("nan")])
    elif r < 0.75 and node.input:
        names = [i.name for i in m.graph.initializer] + [o for n in m.graph.node for o in n.output]
        node.input[rng.randrange(len(node.input))] = rng.choice(names + [m.graph.input[0].name])
    else:
        dims = m.graph.input[0].type.tensor_type.shape.dim
        dims[rng.randrange(len(dims))].dim_value = rng.choice([1, 2, 3, 5, 28])


@functools.cache
def onnx_fuzz(seed: int) -> tuple[int, tuple[bytes, ...]]:
    """(mutated models that compiled, the distinct ones serialized)."""
    base = onnx.load(os.path.join(ROOT, "examples", "lenet.onnx"))
    rng = random.Random(seed)
    compiled, distinct = 0, {}
    for _ in range(ONNX_MUTATIONS):
        m = onnx.ModelProto()
        m.CopyFrom(base)
        for _ in range(rng.randint(1, 2)):
            mutate_model(m, rng)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # NaN statistics fold into NaN weights
                compile_module(load_onnx(m))
        except SofieError:
            continue
        compiled += 1
        distinct[m.SerializeToString()] = None
    return compiled, tuple(distinct)


@pytest.mark.parametrize("seed", range(3))
def test_mutated_onnx_model(seed: int) -> None:
    compiled, _ = onnx_fuzz(seed)
    assert compiled >= ONNX_MIN_COMPILED, f"only {compiled} of {ONNX_MUTATIONS} mutations compiled"


# ---- the compiled mutations, built and run ----------------------------------------------------
#
# Every distinct compiled case of every seed (~35 IR modules, ~45 ONNX models) becomes one
# header; ONE C++ program includes them all and runs each on random inputs: one compiler run
# (~7-15 s at -O0; cached by the headers' content) instead of ~80 sofie.compile builds. -O0:
# the fuzz checks what the code computes; the optimized builds are every other e2e test's.

class Case:
    def __init__(self, name: str, graph: Module, reference) -> None:
        self.name, self.graph, self.reference = name, graph, reference

    def emit(self, folder: str) -> None:
        """NAME.hxx and NAME.dat in `folder`; the signature is the generated code's."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            low, _ = run_pipeline(self.graph, DEFAULT_PIPELINE)
        emit(low, folder, blas="none")
        f = low.main
        self.winograd = any(op.name == "low.conv2d_winograd" for op in f.walk())
        self.dims = len(model_symbols(f).dims)  # every dim symbol runs at BATCH, under its maximum
        self.args = [(numpy_dtype(a.type.dtype), self._shape(a.type)) for a in f.args]
        self.outs = [(numpy_dtype(v.type.dtype), self._shape(v.type)) for v in f.outputs]
        self.batch = BATCH if model_symbols(f).batch else 1

    @staticmethod
    def _shape(t) -> tuple[int, ...]:
        return tuple(dim_factors(d)[0] * BATCH ** len(dim_factors(d)[1]) for d in t.shape)

    def inputs(self, rng: np.random.Generator) -> list[np.ndarray]:
        # integer inputs are zeros: they may index (Gather) and must stay in range
        return [rng.standard_normal(s).astype(dt) if dt.kind == "f" else np.zeros(s, dt) for dt, s in self.args]

    def cpp(self) -> list[str]:
        """Reads the inputs from NAME.in, runs the Session, writes the outputs to NAME.out."""
        ins = [f"i{k}" for k in range(len(self.args))]
        outs = [f"o{k}" for k in range(len(self.outs))]
        lines = [f"  {{  // {self.name}",
                 f'    TMVA_SOFIE_{self.name}::Session s(dir + "/{self.name}.dat");',
                 f'    Files io(dir + "/{self.name}");']
        ptrs = []
        for v, (dt, shape) in zip(ins + outs, self.args + self.outs):  # bytes: no vector<bool>
            lines.append(f"    std::vector<char> {v}({int(np.prod(shape)) * dt.itemsize});")
            ptrs.append(f"reinterpret_cast<{cpp_type(dtype_name(dt))}*>({v}.data())")
        lines += [f"    io.read({v});" for v in ins]
        lines.append(f"    s.infer({', '.join([str(self.batch)] + [str(BATCH)] * self.dims + ptrs)});")
        lines += [f"    io.write({v});" for v in outs]
        lines += [f'    std::printf("ok {self.name}\\n");', "    std::fflush(stdout);", "  }"]
        return lines


PROGRAM_HEAD = r'''#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>
// one case's input and output files
struct Files {
  std::FILE* in;
  std::FILE* out;
  explicit Files(const std::string& base)
      : in(std::fopen((base + ".in").c_str(), "rb")), out(std::fopen((base + ".out").c_str(), "wb")) {
    if (!in || !out) { std::printf("cannot open %s.in/.out\n", base.c_str()); std::exit(2); }
  }
  ~Files() { std::fclose(in); std::fclose(out); }
  void read(std::vector<char>& v) {
    if (std::fread(v.data(), 1, v.size(), in) != v.size()) { std::puts("short input"); std::exit(2); }
  }
  void write(const std::vector<char>& v) { std::fwrite(v.data(), 1, v.size(), out); }
};
'''


def _ort_reference(data: bytes):
    def run(xs: list[np.ndarray]) -> list[np.ndarray] | None:
        import onnxruntime as ort
        try:
            s = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
            return s.run(None, {i.name: x for i, x in zip(s.get_inputs(), xs)})
        except Exception:  # noqa: BLE001  (onnxruntime refuses some mutations sofie accepts)
            return None
    return run


def _interpreter_reference(text: str):
    def run(xs: list[np.ndarray]) -> list[np.ndarray] | None:
        try:
            with np.errstate(all="ignore"):
                return run_function(parse(text), xs)
        except SofieError:
            return None
    return run


def compiled_cases() -> list[Case]:
    cases: list[Case] = []
    texts = {t: None for seed in range(4) for t in ir_fuzz(seed)[1]}
    for k, text in enumerate(texts):
        m = parse(text)
        m.name = f"fuzz_ir{k}"
        cases.append(Case(m.name, m, _interpreter_reference(text)))
    models = {d: None for seed in range(3) for d in onnx_fuzz(seed)[1]}
    for k, data in enumerate(models):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            m = load_onnx(onnx.load_from_string(data), f"fuzz_onnx{k}")
        cases.append(Case(m.name, m, _ort_reference(data)))
    return cases


def build_program(cases: list[Case], folder: str) -> str:
    """Emits every case into `folder`, compiles one program running them all (or finds it in
    sofie's cache); returns its path."""
    for c in cases:
        c.emit(folder)
    src = [PROGRAM_HEAD, *(f'#include "{c.name}.hxx"' for c in cases),
           "int main(int, char** argv) {", "  const std::string dir = argv[1];"]
    for c in cases:
        src += c.cpp()
    src += ["  return 0;", "}", ""]
    main_cpp = os.path.join(folder, "main.cpp")
    with open(main_cpp, "w") as f:
        f.write("\n".join(src))
    flags = ["-std=c++17", "-O0"]  # compiles in half the time of -O1; the cases are tiny
    h = hashlib.sha256(" ".join(flags).encode())
    for root, dirs, files in sorted(os.walk(folder)):
        dirs.sort()
        for name in sorted(files):
            if name.endswith((".hxx", ".cpp")):
                with open(os.path.join(root, name), "rb") as fh:
                    h.update(name.encode() + fh.read())
    cached = os.path.join(cache_dir(), f"fuzz-program-{h.hexdigest()[:24]}")
    if not os.path.isfile(cached):
        exe = os.path.join(folder, "main")
        r = subprocess.run(["g++", *flags, "-I", folder, main_cpp, "-o", exe], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-6000:]
        os.makedirs(cache_dir(), exist_ok=True)
        shutil.copy(exe, cached + ".tmp")
        os.replace(cached + ".tmp", cached)
    return cached


def _tolerance(dtype: np.dtype, want: np.ndarray, winograd: bool) -> dict:
    """f16 results compute in f32 and round once (widen-f16) while onnx's reference rounds each
    step to f16: they may differ by 2 f16 ulps (2^-9 relative, 2^-10 at 1); f32 as RTOL/ATOL.
    A Winograd conv's transforms round on the tile's sums, so its error scales with the output's
    magnitude, not each element's: measured 4e-6 (F(4x4,3x3)) and 6e-6 (F(4x4,5x5)) of max|y|
    against a float64 conv, where the direct one is at 4e-7; its atol is 2e-5 of max|y|."""
    if dtype == np.float16:
        return {"rtol": 2.0 ** -9, "atol": 2.0 ** -10}
    if winograd:
        scale = float(np.max(np.abs(want), where=np.isfinite(want), initial=0.0))
        return {"rtol": RTOL, "atol": max(ATOL, 2e-5 * scale)}
    return {"rtol": RTOL, "atol": ATOL}


@pytest.mark.slow
def test_compiled_mutations_build_run_and_match(tmp_path) -> None:
    cases = compiled_cases()
    assert len(cases) >= 40, f"only {len(cases)} distinct compiled mutations"
    exe = build_program(cases, str(tmp_path))
    rng = np.random.default_rng(0)
    inputs = {}
    for c in cases:
        inputs[c.name] = c.inputs(rng)
        with open(tmp_path / f"{c.name}.in", "wb") as f:
            for x in inputs[c.name]:
                f.write(np.ascontiguousarray(x).tobytes())
    r = subprocess.run([exe, str(tmp_path)], capture_output=True, text=True, timeout=300)
    done = [line.split()[1] for line in r.stdout.splitlines() if line.startswith("ok ")]
    assert r.returncode == 0, (f"the program failed (exit {r.returncode}) after {done[-1:]}: "
                               f"{r.stdout[-500:]} {r.stderr[-2000:]}")
    assert done == [c.name for c in cases]
    compared, mismatches = 0, []
    for c in cases:
        data = (tmp_path / f"{c.name}.out").read_bytes()
        got, off = [], 0
        for dt, shape in c.outs:
            n = int(np.prod(shape)) * dt.itemsize
            got.append(np.frombuffer(data[off:off + n], dt).reshape(shape))
            off += n
        assert off == len(data), f"{c.name}: {len(data)} output bytes, expected {off}"
        ref = c.reference(inputs[c.name])
        if ref is None:
            continue
        compared += 1
        for k, (g, want) in enumerate(zip(got, ref, strict=True)):
            want = np.asarray(want)
            if g.shape != want.shape:
                mismatches.append(f"{c.name} output {k}: shape {g.shape}, reference {want.shape}")
            elif not np.allclose(g, want, equal_nan=True, **_tolerance(g.dtype, want, c.winograd)):
                with np.errstate(all="ignore"):
                    both = ~np.isnan(g) & ~np.isnan(want)
                    err = np.max(np.abs(g[both].astype(np.float64) - want[both]), initial=0.0)
                mismatches.append(f"{c.name} output {k}: NaN in {np.isnan(g).sum()} elements, reference in "
                                  f"{np.isnan(want).sum()}; max |diff| elsewhere {err:.3g}")
    assert not mismatches, "\n".join(mismatches)
    # onnxruntime refuses a few mutations sofie accepts; the interpreter a few ops: most compare
    assert compared >= 0.8 * len(cases), f"only {compared} of {len(cases)} cases had a reference"


# ---- regressions: the crashes the fuzz found, each with its SofieError ------------------------

def _main(sig: str, *body: str, weights: str = "") -> str:
    return ("module @m {\n" + weights + f"  func @main{sig} {{\n" + "".join(f"    {b}\n" for b in body)
            + "  }\n}\n")


def test_malformed_dim_is_a_sofie_error() -> None:
    with pytest.raises(SofieError, match=r"bad dimension '-2' in type 'tensor<-2x3xf32>'"):
        parse(_main("(%x: tensor<-2x3xf32>) -> (tensor<-2x3xf32>)", "return %x"))


def test_weight_with_symbolic_shape_is_a_sofie_error() -> None:
    """It crashed with a ValueError (a symbol where numpy wants a size)."""
    text = 'module @m {\n  weight "w" : tensor<Nx2xf32> = dense<[1.0, 2.0]>\n}\n'
    with pytest.raises(SofieError, match=r"weight w has a symbolic shape \(tensor<Nx2xf32>\)"):
        parse(text)


def test_module_without_main_is_a_sofie_error() -> None:
    """It crashed with a KeyError when the passes or lowering looked for @main."""
    m = parse("module @m {\n  func @other(%x: tensor<2xf32>) -> (tensor<2xf32>) {\n    return %x\n  }\n}\n")
    verify(m)
    with pytest.raises(SofieError, match=r"module @m has no func @main \(functions: @other\)"):
        compile_module(m)


def _onnx_node(op: str, x_shape: list, w: np.ndarray | None = None, w_shape: list | None = None,
               **attrs) -> onnx.ModelProto:
    ins = [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)]
    inits, names = [], ["x"]
    if w is not None:
        inits.append(onnx.numpy_helper.from_array(w, "w"))
        names.append("w")
    elif w_shape is not None:
        ins.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, w_shape))
        names.append("w")
    g = helper.make_graph([helper.make_node(op, names, ["y"], name="n", **attrs)], "g", ins,
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


W = np.ones((4, 3, 3, 3), np.float32)


@pytest.mark.parametrize("attrs, message", [
    ({"strides": [0, 1]},
     r"strides \[0, 1\], dilations \[1, 1\] and kernel \[3, 3\] must be >= 1, pads \[0, 0, 0, 0\] >= 0"),
    ({"dilations": [1, 0]}, r"strides \[1, 1\], dilations \[1, 0\] and kernel \[3, 3\] must be >= 1"),
    ({"pads": [0, -1, 0, 0]}, r"must be >= 1, pads \[0, -1, 0, 0\] >= 0"),
    ({"group": 0}, r"group must be >= 1, got 0"),
], ids=["zero_stride", "zero_dilation", "negative_pad", "zero_group"])
def test_conv_zero_strides_dilations_group_are_sofie_errors(attrs: dict, message: str) -> None:
    """Zero strides divided by zero (ZeroDivisionError), group 0 too."""
    with pytest.raises(SofieError, match=message):
        load_onnx(_onnx_node("Conv", [1, 3, 8, 8], W, **attrs))


def test_pool_zero_stride_and_kernel_are_sofie_errors() -> None:
    with pytest.raises(SofieError, match=r"strides \[1, 0\], dilations \[1, 1\] and kernel \[2, 2\] must be >= 1"):
        load_onnx(_onnx_node("MaxPool", [1, 3, 8, 8], kernel_shape=[2, 2], strides=[1, 0]))
    with pytest.raises(SofieError, match=r"and kernel \[0, 2\] must be >= 1"):
        load_onnx(_onnx_node("AveragePool", [1, 3, 8, 8], kernel_shape=[0, 2]))


def test_conv_with_symbolic_weight_shape_is_a_sofie_error() -> None:
    """W a runtime input with a symbolic dim (ONNX) or typed so in IR text: it crashed where
    the conv's output channels had to be a number."""
    with pytest.raises(SofieError, match=r"W \[M, 3, 3, 3\] must have a static shape"):
        load_onnx(_onnx_node("Conv", [1, 3, 8, 8], w_shape=["M", 3, 3, 3]))
    text = _main("(%x: tensor<1x3x8x8xf32>, %w: tensor<Nx3x3x3xf32>) -> (tensor<1xNx6x6xf32>)",
                 "%y = graph.conv %x, %w : tensor<1xNx6x6xf32>", "return %y")
    with pytest.raises(SofieError, match=r"W \[N, 3, 3, 3\] must have a static shape"):
        verify(parse(text))
