"""Tests of the sofie_rt C++ runtime against numpy references.

One C++ driver (cpp/kernel_driver.cpp) is built per BLAS backend and runs every
case of a suite in a single process; inputs and outputs travel as raw float32
files. Tolerances: elementwise kernels rtol=1e-5, atol=1e-5 (1e-6 for exact
data movement, which must be bit-exact); reductions over K terms (sgemm, conv)
use atol=1e-5*sqrt(K) since float32 rounding error grows with the term count.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sofie.lowering.conv import depthwise_scratch_elements  # noqa: E402
from sofie.runtime.checksum import checksum  # noqa: E402
from sofie.runtime.weightfile import write_weights  # noqa: E402

RUNTIME_INCLUDE = REPO / "sofie" / "runtime"
CPP = Path(__file__).resolve().parent / "cpp"
CXXFLAGS = ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror"]

SYSTEM_CBLAS_HEADERS = [Path("/usr/include/x86_64-linux-gnu/cblas.h"), Path("/usr/include/cblas.h")]
EIGEN_HEADER = Path("/usr/include/eigen3/Eigen/Core")


def backend_flags(backend: str) -> list[str]:
    if backend == "none":
        return ["-DSOFIE_BLAS_NONE"]
    if backend == "openblas":
        import scipy_openblas32 as ob

        lib = ob.get_lib_dir()
        return ["-DSOFIE_BLAS_OPENBLAS", f"-I{ob.get_include_dir()}", f"-L{lib}",
                "-lscipy_openblas", f"-Wl,-rpath,{lib}"]
    if backend == "cblas":
        if not any(h.exists() for h in SYSTEM_CBLAS_HEADERS):
            pytest.fail("system cblas.h not found (install libopenblas-dev); "
                        "deselect with -m 'not needs_system_blas'")
        return ["-DSOFIE_BLAS_CBLAS", "-lopenblas"]
    if backend == "eigen":
        if not EIGEN_HEADER.exists():
            pytest.fail("Eigen headers not found at /usr/include/eigen3 (install libeigen3-dev); "
                        "deselect with -m 'not needs_system_blas'")
        return ["-DSOFIE_BLAS_EIGEN", "-I/usr/include/eigen3"]
    raise ValueError(backend)


BACKENDS = [
    pytest.param("none", id="builtin"),
    pytest.param("openblas", id="openblas"),
    pytest.param("cblas", id="cblas", marks=pytest.mark.needs_system_blas),
    pytest.param("eigen", id="eigen", marks=pytest.mark.needs_system_blas),
]


@pytest.fixture(scope="session")
def driver(tmp_path_factory):
    """Returns a builder: backend name -> path of the compiled driver (cached)."""
    built: dict[str, Path] = {}
    out_dir = tmp_path_factory.mktemp("build")

    def build(backend: str) -> Path:
        if backend not in built:
            exe = out_dir / f"driver_{backend}"
            cmd = ["g++", *CXXFLAGS, f"-I{RUNTIME_INCLUDE}", str(CPP / "kernel_driver.cpp"),
                   str(CPP / "odr_second.cpp"), "-o", str(exe), *backend_flags(backend)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            assert proc.returncode == 0, f"build failed:\n{' '.join(cmd)}\n{proc.stderr}"
            assert proc.stderr == "", f"compiler warnings:\n{proc.stderr}"
            built[backend] = exe
        return built[backend]

    return build


class Suite:
    """Collects cases, runs them in one driver process, hands back outputs."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.lines: list[str] = []
        self.expect: list[tuple[str, np.ndarray | None, float, float, type]] = []
        self.results: dict[str, str] = {}
        self.pointwise: dict[str, bool] = {}  # conv case id -> expects no scratch (pointwise, not depthwise)

    def add(self, kind: str, inputs: dict[str, np.ndarray | bytes], expected=None,
            rtol=1e-5, atol=1e-5, dtype=np.float32, **params) -> str:
        cid = f"c{len(self.lines)}"
        for name, arr in inputs.items():
            data = arr if isinstance(arr, bytes) else np.ascontiguousarray(arr, dtype).tobytes()
            (self.dir / f"{cid}_{name}.bin").write_bytes(data)
        kv = " ".join(f"{k}={v}" for k, v in params.items())
        self.lines.append(f"{kind} {cid} {kv}")
        self.expect.append((cid, expected, rtol, atol, dtype))
        return cid

    def run(self, exe: Path) -> None:
        (self.dir / "cases.txt").write_text("\n".join(self.lines) + "\n")
        proc = subprocess.run([str(exe), str(self.dir)], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
        for line in proc.stdout.splitlines():
            cid, result = line.split(" ", 1)
            self.results[cid] = result

    def output(self, cid: str, dtype=np.float32) -> np.ndarray:
        return np.fromfile(self.dir / f"{cid}_out.bin", dtype=dtype)

    def check(self, equal_nan: bool = False) -> None:
        """Every case ran and matches; with equal_nan, NaN expected where NaN is produced."""
        failures = []
        for cid, expected, rtol, atol, dtype in self.expect:
            line = self.lines[int(cid[1:])]
            result = self.results.get(cid, "<no result>")
            if not result.startswith("OK"):
                failures.append(f"{line}: {result}")
                continue
            if expected is None:
                continue
            got = self.output(cid, dtype)
            want = np.asarray(expected, np.float64).ravel()
            if got.shape != want.shape or not np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=equal_nan):
                err = np.nanmax(np.abs(got - want)) if got.shape == want.shape else "shape"
                failures.append(f"{line}: max abs err {err}")
        assert not failures, "\n".join(failures)


def rand(rng, *shape):
    return rng.uniform(-1, 1, size=shape).astype(np.float32)


# --------------------------------------------------------------------------
# sgemm
# --------------------------------------------------------------------------

SGEMM_SHAPES = [(1, 1, 1), (7, 13, 5), (1, 200, 200), (1, 37, 203), (3, 1, 17), (64, 64, 64),
                (33, 130, 129), (130, 17, 300), (1, 1029, 64), (257, 3, 2), (4, 5, 0)]  # K = 0: C = beta C


def add_sgemm_cases(suite: Suite, rng, dtype=np.float32) -> None:
    """sgemm cases, or with dtype float64 dgemm (atol 1e-13 sqrt(K): double rounding)."""
    kind, eps = ("sgemm", 1e-5) if dtype == np.float32 else ("dgemm", 1e-13)
    for M, N, K in SGEMM_SHAPES:
        for tA in (0, 1):
            for tB in (0, 1):
                for alpha, beta in ((1.0, 0.0), (0.5, 1.0), (-1.25, 0.75)):
                    # Padded leading dimensions catch ld/size mixups.
                    lda = (M if tA else K) + 3
                    ldb = (K if tB else N) + 1
                    ldc = N + 2
                    A = rand(rng, K if tA else M, lda).astype(dtype)
                    B = rand(rng, N if tB else K, ldb).astype(dtype)
                    C = rand(rng, M, ldc).astype(dtype)
                    if dtype == np.float64:  # full double mantissas
                        A, B, C = (x + rand(rng, *x.shape) * 1e-8 for x in (A, B, C))
                    if beta == 0.0:
                        C[:] = np.nan  # must not be read
                    opA = (A[:, :M].T if tA else A[:, :K]).astype(np.float64)
                    opB = (B[:, :K].T if tB else B[:, :N]).astype(np.float64)
                    want = C.astype(np.float64).copy()
                    want[:, :N] = alpha * opA @ opB + (beta * want[:, :N] if beta else 0.0)
                    if beta == 0.0:
                        want[:, N:] = np.nan  # padding columns stay untouched
                    suite.add(kind, {"A": A, "B": B, "C": C}, want, dtype=dtype,
                              atol=eps * np.sqrt(K) * 4, tA=tA, tB=tB, M=M, N=N, K=K,
                              alpha=alpha, beta=beta, lda=lda, ldb=ldb, ldc=ldc)


# --------------------------------------------------------------------------
# conv2d
# --------------------------------------------------------------------------

# The epilogue functors kernel_driver.cpp stands in with (the generated code passes lambdas
# spelled from each activation's scalar body; those are tested end to end).
ACT_PARAMS = {
    "None": (0.0, 0.0), "Relu": (0.0, 0.0), "LeakyRelu": (0.1, 0.0), "Sigmoid": (0.0, 0.0),
    "Clip": (-0.3, 0.4),
}


def act_ref(name: str, x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    x = x.astype(np.float64)
    if name == "None":
        return x
    if name == "Relu":
        return np.maximum(x, 0)
    if name == "LeakyRelu":
        return np.where(x >= 0, x, alpha * x)
    if name == "Sigmoid":
        return 1 / (1 + np.exp(-x))
    if name == "Tanh":
        return np.tanh(x)
    if name == "Clip":
        return np.clip(x, alpha, beta)
    if name == "HardSigmoid":
        return np.clip(alpha * x + beta, 0, 1)
    if name == "HardSwish":
        return x * np.clip(x / 6 + 0.5, 0, 1)
    if name == "Elu":
        return np.where(x >= 0, x, alpha * (np.exp(x) - 1))
    if name == "Selu":
        return np.where(x > 0, beta * x, beta * alpha * (np.exp(x) - 1))
    raise ValueError(name)


def out_size(n, k, p0, p1, s, d, ceil=False):
    span = n + p0 + p1 - d * (k - 1) - 1
    return (-(-span // s) if ceil else span // s) + 1


def conv_ref(x, w, bias, res, group, pads, strides, dils, OH, OW):
    N, C, H, W = x.shape
    M, Cg, kH, kW = w.shape
    pt, pl, pb, pr = pads
    sh, sw = strides
    dh, dw = dils
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    y = np.zeros((N, M, OH, OW))
    Mg = M // group
    for g in range(group):
        xg = xp[:, g * Cg:(g + 1) * Cg]
        wg = w[g * Mg:(g + 1) * Mg].astype(np.float64)
        for kh in range(kH):
            for kw in range(kW):
                patch = xg[:, :, kh * dh: kh * dh + sh * (OH - 1) + 1: sh,
                           kw * dw: kw * dw + sw * (OW - 1) + 1: sw]
                y[:, g * Mg:(g + 1) * Mg] += np.einsum("nchw,mc->nmhw", patch, wg[:, :, kh, kw])
    if bias is not None:
        y += bias.reshape(1, M, 1, 1)
    if res is not None:
        y += res
    return y


CONV_CASES = [
    # N, C, H, W, M, group, kH, kW, pads(t,l,b,r), strides, dils, act
    (1, 3, 7, 13, 5, 1, 3, 3, (1, 1, 1, 1), (1, 1), (1, 1), "Relu"),
    (2, 4, 9, 8, 6, 2, 3, 2, (0, 1, 2, 0), (2, 1), (1, 2), "LeakyRelu"),
    (1, 6, 10, 10, 6, 6, 3, 3, (1, 1, 1, 1), (1, 1), (1, 1), "Relu"),  # depthwise: direct kernel
    (2, 3, 9, 8, 6, 3, 3, 2, (1, 0, 2, 1), (2, 3), (2, 1), "None"),  # depthwise x2, strided, dilated
    (2, 5, 7, 7, 10, 5, 5, 5, (2, 1, 2, 3), (2, 2), (1, 1), "Clip"),  # depthwise x2, 5x5 s2, asym
    (1, 4, 13, 11, 4, 4, 3, 3, (0, 2, 1, 0), (3, 1), (1, 1), "Sigmoid"),  # depthwise, stride 3x1
    (1, 3, 6, 5, 3, 3, 1, 1, (0, 0, 0, 0), (1, 1), (1, 1), "None"),  # depthwise 1x1: scratch too
    (2, 8, 5, 7, 16, 1, 1, 1, (0, 0, 0, 0), (1, 1), (1, 1), "None"),  # pointwise: no scratch
    (1, 4, 6, 6, 8, 2, 1, 1, (0, 0, 0, 0), (1, 1), (1, 1), "Sigmoid"),  # grouped pointwise
    (1, 3, 9, 9, 4, 1, 1, 1, (1, 0, 0, 1), (2, 2), (1, 1), "Clip"),  # 1x1 strided/padded
    (1, 5, 11, 12, 7, 1, 5, 3, (2, 1, 2, 1), (3, 2), (2, 1), "None"),
    (3, 2, 4, 5, 3, 1, 2, 2, (1, 1, 1, 1), (1, 1), (3, 3), "LeakyRelu"),
    (1, 16, 14, 14, 32, 1, 3, 3, (1, 1, 1, 1), (2, 2), (1, 1), "Sigmoid"),
    (1, 3, 5, 5, 2, 1, 7, 7, (3, 3, 3, 3), (1, 1), (1, 1), "Clip"),  # kernel > image
]


def add_conv_cases(suite: Suite, rng) -> None:
    for i, (N, C, H, W, M, group, kH, kW, pads, strides, dils, act) in enumerate(CONV_CASES):
        OH = out_size(H, kH, pads[0], pads[2], strides[0], dils[0])
        OW = out_size(W, kW, pads[1], pads[3], strides[1], dils[1])
        x = rand(rng, N, C, H, W)
        w = rand(rng, M, C // group, kH, kW)
        has_bias, has_res = i % 2 == 0, i % 3 == 0
        bias = rand(rng, M) if has_bias else None
        res = rand(rng, N, M, OH, OW) if has_res else None
        alpha, beta = ACT_PARAMS[act]
        want = act_ref(act, conv_ref(x, w, bias, res, group, pads, strides, dils, OH, OW),
                       alpha, beta)
        inputs = {"x": x, "w": w}
        if has_bias:
            inputs["bias"] = bias
        if has_res:
            inputs["res"] = res
        cid = suite.add("conv", inputs, want, atol=1e-5 * np.sqrt(C * kH * kW) * 4, N=N, C=C,
                        H=H, W=W, M=M, group=group, kH=kH, kW=kW, pt=pads[0], pl=pads[1],
                        pb=pads[2], pr=pads[3], sh=strides[0], sw=strides[1], dh=dils[0],
                        dw=dils[1], OH=OH, OW=OW, act=act, alpha=alpha, beta=beta,
                        has_bias=int(has_bias), has_res=int(has_res),
                        tile_rows=2 if has_res else 0)  # bands of 2 output rows: bias, residual per band
        depthwise = C == group > 1  # the direct kernel's phase planes: scratch even at 1x1
        suite.pointwise[cid] = (kH, kW, strides, pads) == (1, 1, (1, 1), (0, 0, 0, 0)) and not depthwise


def check_conv_scratch(suite: Suite) -> None:
    for cid, pointwise in suite.pointwise.items():
        scratch = int(suite.results[cid].split("scratch=")[1])
        assert (scratch == 0) == pointwise, (suite.lines[int(cid[1:])], scratch)
        p = dict(kv.split("=") for kv in suite.lines[int(cid[1:])].split()[2:])
        if p["C"] == p["group"] != "1":  # the lowering sizes the same scratch as the kernel asks
            kh, kw, sh, sw, oh, ow = (int(p[k]) for k in ("kH", "kW", "sh", "sw", "OH", "OW"))
            assert depthwise_scratch_elements(kh, kw, sh, sw, oh, ow) == scratch, suite.lines[int(cid[1:])]


# --------------------------------------------------------------------------
# Other kernels
# --------------------------------------------------------------------------

def pool_ref(x, kind, kH, kW, pads, strides, dils, OH, OW, include_pad):
    N, C, H, W = x.shape
    pt, pl, pb, pr = pads
    y = np.zeros((N, C, OH, OW))
    for oh in range(OH):
        for ow in range(OW):
            h0, w0 = oh * strides[0] - pt, ow * strides[1] - pl
            if kind == "maxpool":
                hs = [h0 + k * dils[0] for k in range(kH) if 0 <= h0 + k * dils[0] < H]
                ws = [w0 + k * dils[1] for k in range(kW) if 0 <= w0 + k * dils[1] < W]
                y[:, :, oh, ow] = x[:, :, hs][:, :, :, ws].max(axis=(2, 3))
            else:
                h1, w1 = min(h0 + kH, H + pb), min(w0 + kW, W + pr)
                hl, hh, wl, wh = max(h0, 0), min(h1, H), max(w0, 0), min(w1, W)
                s = x[:, :, hl:hh, wl:wh].astype(np.float64).sum(axis=(2, 3))
                count = (h1 - h0) * (w1 - w0) if include_pad else (hh - hl) * (wh - wl)
                y[:, :, oh, ow] = s / count
    return y


POOL_CASES = [
    # kind, N, C, H, W, kH, kW, pads, strides, dils, ceil, include_pad
    ("maxpool", 1, 2, 7, 13, 3, 3, (1, 1, 1, 1), (2, 2), (1, 1), False, False),
    ("maxpool", 2, 3, 8, 9, 2, 3, (0, 1, 1, 0), (1, 2), (2, 1), True, False),
    ("maxpool", 1, 1, 5, 5, 2, 2, (0, 0, 0, 0), (2, 2), (1, 1), True, False),
    ("avgpool", 1, 2, 7, 13, 3, 3, (1, 1, 1, 1), (2, 2), (1, 1), False, False),
    ("avgpool", 1, 2, 7, 13, 3, 3, (1, 1, 1, 1), (2, 2), (1, 1), False, True),
    ("avgpool", 2, 3, 6, 7, 3, 2, (1, 0, 1, 1), (2, 2), (1, 1), True, True),
    ("avgpool", 2, 3, 6, 7, 3, 2, (1, 0, 1, 1), (2, 2), (1, 1), True, False),
]


def add_misc_cases(suite: Suite, rng) -> None:
    for act, (alpha, beta) in ACT_PARAMS.items():
        for per_row in (0, 1):
            for has_bias in (0, 1):
                rows, cols = 5, 19
                y, b = rand(rng, rows, cols) * 4, rand(rng, rows if per_row else cols)
                pre = y.astype(np.float64)
                if has_bias:
                    pre = pre + (b[:, None] if per_row else b[None, :])
                inputs = {"y": y, "bias": b} if has_bias else {"y": y}
                suite.add("bias_act", inputs, act_ref(act, pre, alpha, beta), rows=rows, cols=cols,
                          per_row=per_row, has_bias=has_bias, act=act, alpha=alpha, beta=beta)

    for kind, N, C, H, W, kH, kW, pads, strides, dils, ceil, inc in POOL_CASES:
        OH = out_size(H, kH, pads[0], pads[2], strides[0], dils[0], ceil)
        OW = out_size(W, kW, pads[1], pads[3], strides[1], dils[1], ceil)
        x = rand(rng, N, C, H, W)
        suite.add(kind, {"x": x}, pool_ref(x, kind, kH, kW, pads, strides, dils, OH, OW, inc),
                  N=N, C=C, H=H, W=W, kH=kH, kW=kW, pt=pads[0], pl=pads[1], pb=pads[2],
                  pr=pads[3], sh=strides[0], sw=strides[1], dh=dils[0], dw=dils[1], OH=OH, OW=OW,
                  include_pad=int(inc))

    for NC, HW in ((6, 49), (1, 1), (3, 1000)):
        x = rand(rng, NC, HW)
        suite.add("gap", {"x": x}, x.astype(np.float64).mean(axis=1), NC=NC, HW=HW)

    for N, C, S in ((2, 3, 17), (1, 8, 1)):
        for inplace in (0, 1):
            x, scale, bias, mean = rand(rng, N, C, S), rand(rng, C), rand(rng, C), rand(rng, C)
            var = rng.uniform(0.1, 2, C).astype(np.float32)
            want = ((x - mean[:, None]) / np.sqrt(var[:, None].astype(np.float64) + 1e-5)
                    * scale[:, None] + bias[:, None])
            suite.add("batchnorm", {"x": x, "scale": scale, "bias": bias, "mean": mean,
                                    "var": var}, want, N=N, C=C, S=S, eps=1e-5, inplace=inplace)

    for outer, axis, inner in ((1, 10, 1), (3, 7, 1), (2, 5, 13), (2, 3, 130), (1, 1, 4)):
        for inplace in (0, 1):
            x = rand(rng, outer, axis, inner) * 30  # large logits: needs the max shift
            e = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
            suite.add("softmax", {"x": x}, e / e.sum(axis=1, keepdims=True), outer=outer,
                      axis=axis, inner=inner, inplace=inplace)

    for shape, perm in (((2, 3, 4), (2, 0, 1)), ((5, 7), (1, 0)), ((2, 3, 4, 5), (0, 2, 3, 1)),
                        ((3,), (0,)), ((2, 1, 3, 1, 2, 2, 1, 3), (7, 6, 5, 4, 3, 2, 1, 0)),
                        ((2, 3, 2, 3), (0, 1, 2, 3)), ((4, 0, 3), (2, 1, 0))):
        x = rand(rng, *shape)
        suite.add("transpose", {"x": x}, np.transpose(x, perm), atol=0, rtol=0,
                  shape=",".join(map(str, shape)), perm=",".join(map(str, perm)))

    parts = [rand(rng, 2, 3, 4), rand(rng, 2, 1, 4), rand(rng, 2, 5, 4)]
    total = np.concatenate(parts, axis=1)
    y = np.zeros_like(total)
    offset = 0
    for p in parts:  # each step checks one slice; earlier slices already filled
        expected = y.copy()
        expected[:, offset // 4: offset // 4 + p.shape[1]] = p
        suite.add("concat", {"x": p, "y": y}, expected, atol=0, rtol=0, outer=2,
                  x_inner=p.shape[1] * 4, y_inner=total.shape[1] * 4, y_offset=offset)
        y = expected
        offset += p.shape[1] * 4
    x = rand(rng, 1001)
    suite.add("copy", {"x": x}, x, atol=0, rtol=0)
    for n in (0, 1, 100, 4096):
        suite.add("aligned_buffer", {}, None, bytes=n)


def run_suite(tmp_path: Path, exe: Path, *adders) -> Suite:
    suite = Suite(tmp_path)
    rng = np.random.default_rng(1234)
    for add in adders:
        add(suite, rng)
    suite.run(exe)
    return suite


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_sgemm(backend, driver, tmp_path):
    suite = run_suite(tmp_path, driver(backend), add_sgemm_cases)
    # the padding columns of C hold NaN when beta == 0
    suite.check(equal_nan=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_dgemm(backend, driver, tmp_path):
    suite = run_suite(tmp_path, driver(backend), lambda s, rng: add_sgemm_cases(s, rng, np.float64))
    suite.check(equal_nan=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv2d(backend, driver, tmp_path):
    suite = run_suite(tmp_path, driver(backend), add_conv_cases)
    suite.check()
    check_conv_scratch(suite)


@pytest.mark.parametrize("backend", BACKENDS)
def test_blas_name(backend, driver, tmp_path):
    suite = Suite(tmp_path)
    cid = suite.add("info", {}, None)
    suite.run(driver(backend))
    name = {"none": "builtin", "openblas": "openblas", "cblas": "cblas", "eigen": "eigen"}[backend]
    words = suite.results[cid].split()
    assert words[0] == "OK" and words[1] == name, suite.results[cid]
    # conv2d_scratch_floats(4, 2, 3, 3, 5, 5) computed in the second TU.
    assert words[-1] == "450"


def test_other_kernels(driver, tmp_path):
    suite = run_suite(tmp_path, driver("none"), add_misc_cases)
    suite.check()


# --------------------------------------------------------------------------
# Checksum and weights file
# --------------------------------------------------------------------------

def test_checksum_matches_cpp(driver, tmp_path):
    rng = np.random.default_rng(7)
    suite = Suite(tmp_path)
    datas = {}
    for n in (0, 1, 7, 8, 9, 63, 1000003):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        datas[suite.add("checksum", {"data": data})] = data
    suite.run(driver("none"))
    for cid, data in datas.items():
        status, value = suite.results[cid].split()
        assert status == "OK"
        assert int(value, 16) == checksum(data), len(data)


def test_checksum_sensitivity():
    rng = np.random.default_rng(3)
    data = bytearray(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    base = checksum(bytes(data))
    seen = {base}
    for pos in (0, 1, 7, 8, 2047, 4095):
        flipped = bytearray(data)
        flipped[pos] ^= 0x10
        seen.add(checksum(bytes(flipped)))
    zeroed = bytearray(data)
    zeroed[1000:1100] = bytes(100)
    seen.add(checksum(bytes(zeroed)))
    swapped = bytearray(data)
    swapped[0:8], swapped[8:16] = data[8:16], data[0:8]
    seen.add(checksum(bytes(swapped)))
    seen.add(checksum(bytes(data) + b"\0"))  # zero tail byte still counts
    assert len(seen) == 10


def test_checksum_speed():
    import time

    data = np.random.default_rng(0).integers(0, 256, 50_000_000, dtype=np.uint8).tobytes()
    t0 = time.perf_counter()
    checksum(data)
    assert time.perf_counter() - t0 < 2.0


FINGERPRINT = 0xDEADBEEF12345678


@pytest.fixture
def weights_file(tmp_path):
    rng = np.random.default_rng(11)
    arrays = [rand(rng, 3, 5), rand(rng, 1), rand(rng, 100), np.arange(17, dtype=np.float32)]
    path = tmp_path / "model.dat"
    offsets = write_weights(str(path), [a.tobytes() for a in arrays], FINGERPRINT)
    return path, arrays, offsets


def load_cases(suite, path, payload, fingerprint=FINGERPRINT, n_tensors=4):
    return suite.add("weights", {}, None, path=str(path), payload=payload,
                     fingerprint=f"{fingerprint:x}", n_tensors=n_tensors)


def test_weights_roundtrip(weights_file, driver, tmp_path):
    path, arrays, offsets = weights_file
    assert all(o % 64 == 0 for o in offsets)
    payload = path.stat().st_size - 64
    suite = Suite(tmp_path)
    cid = load_cases(suite, path, payload)
    suite.run(driver("none"))
    assert suite.results[cid] == "OK"
    got = suite.output(cid, dtype=np.uint8).tobytes()
    assert len(got) == payload
    for arr, off in zip(arrays, offsets):
        np.testing.assert_array_equal(np.frombuffer(got, np.float32, arr.size, off), arr.ravel())


def test_weights_errors(weights_file, driver, tmp_path):
    path, _, _ = weights_file
    good = path.read_bytes()
    payload = len(good) - 64

    def variant(name: str, data: bytes) -> Path:
        p = tmp_path / name
        p.write_bytes(data)
        return p

    mid = 64 + payload // 2
    cases = {
        "missing": (tmp_path / "nope.dat", {}, "cannot open"),
        "short header": (variant("short.dat", good[:40]), {}, "too short for the 64-byte header"),
        "bad magic": (variant("magic.dat", b"NOTSOFIE" + good[8:]), {}, "not a sofie weights file"),
        "version": (variant("ver.dat", good[:8] + (2).to_bytes(4, "little") + good[12:]), {},
                    "unsupported format version 2"),
        "truncated": (variant("trunc.dat", good[:-10]), {}, "truncated payload"),
        "trailing": (variant("trail.dat", good + b"x"), {}, "trailing bytes"),
        "corrupt": (variant("corrupt.dat", good[:mid] + bytes(16) + good[mid + 16:]), {},
                    "corrupt (checksum mismatch)"),
        "fingerprint": (path, {"fingerprint": FINGERPRINT ^ 1},
                        "weights belong to a different model"),
        "payload size": (path, {"payload": payload + 64}, "size mismatch: expected"),
        "tensor count": (path, {"n_tensors": 5}, "size mismatch: expected 5 tensors, got 4"),
    }
    assert good[mid:mid + 16] != bytes(16)  # zeroing must actually change bytes
    suite = Suite(tmp_path)
    ids = {}
    for name, (p, overrides, _) in cases.items():
        args = {"payload": payload, **overrides}
        ids[name] = load_cases(suite, p, **args)
    suite.run(driver("none"))
    for name, (p, _, message) in cases.items():
        result = suite.results[ids[name]]
        assert result.startswith("THROW "), (name, result)
        assert message in result and str(p) in result, (name, result)
