"""Mutated inputs get a SofieError or compile; never another exception (a crash of sofie).

Seeded, so a failure reproduces: IR text with characters deleted, inserted or replaced, and
the bundled ONNX model with attribute values, inputs and input dims changed at random.
"""

from __future__ import annotations

import os
import random

import onnx
import pytest

from sofie.backend_cpp.header import emit_header
from sofie.errors import SofieError
from sofie.frontends.onnx import load_onnx
from sofie.ir.core import Module
from sofie.ir.parser import parse
from sofie.ir.verifier import verify
from sofie.pipeline import DEFAULT_PIPELINE, run_pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PASS_TESTS = os.path.join(ROOT, "tests", "passes")
ALPHABET = "%{}[]()<>x,=\":0123456789abcNf.-_"


def compile_module(m: Module) -> None:
    low, _ = run_pipeline(m, DEFAULT_PIPELINE)
    emit_header(low, fingerprint=1, n_tensors=1, blas="none")


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


@pytest.mark.parametrize("seed", range(4))
def test_mutated_ir_text(seed: int) -> None:
    texts = [open(os.path.join(PASS_TESTS, f)).read() for f in sorted(os.listdir(PASS_TESTS)) if f.endswith(".ir")]
    rng = random.Random(seed)
    compiled = 0
    for _ in range(500):
        try:
            m = parse(mutate_text(rng.choice(texts), rng))
            verify(m)
            compile_module(m)
            compiled += 1
        except SofieError:
            pass
    assert compiled > 0  # some mutations stay valid and go all the way through


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


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN statistics fold into NaN weights
@pytest.mark.parametrize("seed", range(3))
def test_mutated_onnx_model(seed: int) -> None:
    base = onnx.load(os.path.join(ROOT, "examples", "lenet.onnx"))
    rng = random.Random(seed)
    for _ in range(150):
        m = onnx.ModelProto()
        m.CopyFrom(base)
        for _ in range(rng.randint(1, 2)):
            mutate_model(m, rng)
        try:
            compile_module(load_onnx(m))
        except SofieError:
            pass
