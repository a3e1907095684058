"""Headers of two models, or of two sofie versions, in one translation unit: each folder
carries its own sofie_rt/ copy; copies of one version are read once, copies of two versions
both, each model using its own (versioned inline namespace and include guards)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from sofie.runtime.versioning import runtime_namespace
from sofie.version import __version__
from tests.conftest import ort_run
from tests.e2e.cpp import build_main, compile_model, sh

TWO_MODELS = r'''
#include "mlp.hxx"
#include "conv.hxx"
#include <cstdio>
#include <vector>
int main(int, char** argv) {
  TMVA_SOFIE_mlp::Session mlp(argv[1]);
  TMVA_SOFIE_conv::Session conv(argv[2]);
  std::vector<float> x(2 * 200 + 2 * 100 * 100);
  std::FILE* f = std::fopen(argv[3], "rb");
  if (std::fread(x.data(), 4, x.size(), f) != x.size()) return 4;
  std::fclose(f);
  std::vector<float> y(2 * 200 + 2 * 2 * 96 * 96);
  mlp.infer(2, x.data(), y.data());
  conv.infer(2, x.data() + 2 * 200, y.data() + 2 * 200);
  f = std::fopen(argv[4], "wb");
  std::fwrite(y.data(), 4, y.size(), f);
  std::fclose(f);
}
'''


def test_two_models_in_one_program(model_dir: str, tmp_path: Path) -> None:
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    compile_model(os.path.join(model_dir, "mlp_5x200.onnx"), a, "mlp", "none")
    compile_model(os.path.join(model_dir, "conv1.onnx"), b, "conv", "none")
    exe = build_main(TWO_MODELS, str(tmp_path), [a, b], "-Wall", "-Wextra", "-Werror")
    rng = np.random.default_rng(5)
    x_mlp = rng.standard_normal((2, 200)).astype(np.float32)
    x_conv = rng.standard_normal((2, 1, 100, 100)).astype(np.float32)
    np.concatenate([x_mlp.ravel(), x_conv.ravel()]).tofile(tmp_path / "x.bin")
    r = sh(exe, f"{a}/mlp.dat", f"{b}/conv.dat", str(tmp_path / "x.bin"), str(tmp_path / "y.bin"))
    assert r.returncode == 0, r.stderr
    y = np.fromfile(tmp_path / "y.bin", np.float32)
    np.testing.assert_allclose(y[:400].reshape(2, 200), ort_run(os.path.join(model_dir, "mlp_5x200.onnx"), x_mlp)[0],
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(y[400:].reshape(2, 2, 96, 96),
                               ort_run(os.path.join(model_dir, "conv1.onnx"), x_conv)[0], rtol=1e-4, atol=1e-5)


def retag(folder: str, version: str) -> None:
    """Makes a compiled folder look written by another sofie version: the version spelled in
    the model header and in every runtime header (namespace, include guards) changes."""
    old, new = runtime_namespace(__version__), runtime_namespace(version)
    for path in [*Path(folder).glob("*.hxx"), *Path(folder, "sofie_rt").glob("*.hxx")]:
        text = path.read_text()
        assert old in text or old.upper() in text or path.parent.name != "sofie_rt", path
        path.write_text(text.replace(old, new).replace(old.upper(), new.upper())
                        .replace(f"sofie {__version__}", f"sofie {version}"))


TWO_VERSIONS = r'''
#include "FIRST.hxx"
#include "SECOND.hxx"
#include <cstdio>
#include <vector>
int main(int, char** argv) {
  TMVA_SOFIE_mlp_old::Session old_model(argv[1]);
  TMVA_SOFIE_mlp_new::Session new_model(argv[2], 2);  // runs the batch of 3 in two chunks
  std::vector<float> x(3 * 200), y(2 * 3 * 200);
  std::FILE* f = std::fopen(argv[3], "rb");
  if (std::fread(x.data(), 4, x.size(), f) != x.size()) return 4;
  std::fclose(f);
  old_model.infer(3, x.data(), y.data());
  new_model.infer(3, x.data(), y.data() + 3 * 200);
  f = std::fopen(argv[4], "wb");
  std::fwrite(y.data(), 4, y.size(), f);
  std::fclose(f);
}
'''


def test_two_sofie_versions_in_one_program(model_dir: str, tmp_path: Path) -> None:
    """The same model compiled as mlp_old (this version) and mlp_new (a simulated later
    version): both run, each on its own runtime, whichever header comes first."""
    model = os.path.join(model_dir, "mlp_5x200.onnx")
    old, new = str(tmp_path / "old"), str(tmp_path / "new")
    compile_model(model, old, "mlp_old", "none")
    compile_model(model, new, "mlp_new", "none")
    later = __version__ + ".post1"
    retag(new, later)
    assert f"namespace sofie = ::sofie::{runtime_namespace(later)};" in Path(new, "mlp_new.hxx").read_text()
    x = np.random.default_rng(6).standard_normal((3, 200)).astype(np.float32)
    x.tofile(tmp_path / "x.bin")
    ref = ort_run(model, x)[0]
    for first, second in [("mlp_old", "mlp_new"), ("mlp_new", "mlp_old")]:
        out = str(tmp_path / f"{first}_first")
        src = TWO_VERSIONS.replace("FIRST", first).replace("SECOND", second)
        # -O0 keeps the inline runtime functions as symbols, so nm shows whose code runs
        exe = build_main(src, out, [old, new], "-O0", "-Wall", "-Wextra", "-Werror")
        r = sh(exe, f"{old}/mlp_old.dat", f"{new}/mlp_new.dat", str(tmp_path / "x.bin"), f"{out}/y.bin")
        assert r.returncode == 0, r.stderr
        y = np.fromfile(f"{out}/y.bin", np.float32).reshape(2, 3, 200)
        for y_version in y:  # a chunk of one event takes the GEMV path: not bitwise equal
            np.testing.assert_allclose(y_version, ref, rtol=1e-4, atol=1e-5)
        symbols = sh("nm", "-C", exe).stdout
        for version in (__version__, later):
            assert re.search(rf"sofie::{runtime_namespace(version)}::rt::gemm_(fused|packed_b)<", symbols), version
