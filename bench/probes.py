"""This machine's single-thread limits, measured by the small C++ probes in bench/probes/:
the FMA peak (GFLOP/s), the read bandwidth (GB/s) at a few working-set sizes, L1-, L2- and
L3-resident and DRAM, and what sofie's built-in sgemm reaches on conv- and MLP-sized shapes.
All are the best of short repeated blocks, so that a shared, loaded
machine still shows what one undisturbed core does."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
PROBES = os.path.join(HERE, "probes")
RUNTIME = os.path.join(os.path.dirname(HERE), "sofie", "runtime")

# working sets the bandwidth probe reads: within L1, L2, L3, and far beyond L3 (DRAM), when
# the machine does not say its cache sizes (see bandwidth_sizes)
BANDWIDTH_SIZES = (16 << 10, 256 << 10, 8 << 20, 256 << 20)
SYSFS_CACHES = "/sys/devices/system/cpu/cpu0/cache"


def _sysfs_size(text: str) -> int:
    """'48K', '2048K', '32M' (sysfs cache sizes) in bytes."""
    text = text.strip()
    unit = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:].upper(), 1)
    return int(text.rstrip("KkMmGg")) * unit


def bandwidth_sizes(root: str = SYSFS_CACHES) -> tuple[int, ...]:
    """The working sets to probe on this machine: BANDWIDTH_SIZES and half of each data cache
    level's size (so the buffer surely stays in it), and twice the last level's (at least
    256 MiB, at most 1 GiB) for DRAM. BANDWIDTH_SIZES alone misplaced the levels: with a 2 MiB
    L2, a model's 0.8 MB of weights stream from L2, not at the 8 MiB probe's (L3) bandwidth,
    and its 'limit' came out longer than the time it ran in. They stay in the set because a
    level as large as a server's L3 (480 MB) is not one bandwidth: single-core reads ran at
    28 GB/s over 8 MiB and 10 GB/s over 240 MiB."""
    levels: dict[int, int] = {}
    try:
        for entry in os.listdir(root):
            if not entry.startswith("index"):
                continue
            d = os.path.join(root, entry)
            with open(os.path.join(d, "type")) as f:
                if f.read().strip() == "Instruction":
                    continue
            with open(os.path.join(d, "level")) as f, open(os.path.join(d, "size")) as g:
                levels[int(f.read())] = _sysfs_size(g.read())
    except (OSError, ValueError):
        return BANDWIDTH_SIZES
    if not levels:
        return BANDWIDTH_SIZES
    sizes = {levels[level] // 2 for level in levels} | set(BANDWIDTH_SIZES)
    sizes.add(min(1 << 30, max(256 << 20, 2 * levels[max(levels)])))
    return tuple(sorted(sizes))


@dataclass
class Machine:
    fma_peak_gflops: float
    bandwidth_gbs: dict[int, float]  # working-set bytes -> GB/s
    gemm_gflops: dict[str, float] = field(default_factory=dict)  # "M,N,K" -> built-in sgemm GFLOP/s
    gemm_kernel: str = ""  # the micro-kernel -march=native chose

    def bandwidth_at(self, working_set: int) -> tuple[int, float]:
        """The probe size that holds `working_set` (the smallest not below it, else the largest)
        and its bandwidth: bytes a model streams come from the level its working set fits."""
        sizes = sorted(self.bandwidth_gbs)
        size = next((s for s in sizes if s >= working_set), sizes[-1])
        return size, self.bandwidth_gbs[size]

    def to_json(self) -> dict:
        return {"fma_peak_gflops": self.fma_peak_gflops,
                "bandwidth_gbs": {str(k): v for k, v in sorted(self.bandwidth_gbs.items())},
                "gemm_gflops": dict(self.gemm_gflops), "gemm_kernel": self.gemm_kernel}


def _build(name: str, out: str, flags: tuple[str, ...] = ()) -> str:
    exe = os.path.join(out, name)
    src = os.path.join(PROBES, name + ".cpp")
    # gemm_peak includes the runtime headers: rebuilt every time, as they may have changed
    if flags or not os.path.isfile(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
        os.makedirs(out, exist_ok=True)
        # -O3 as the generated models are built (bench/CMakeLists.txt, sofie.compile): the GEMM
        # probe measures the kernels they run (at -O2 it reads ~10% lower on the AVX-512 host)
        subprocess.run(["g++", "-std=c++17", "-O3", "-march=native", *flags, src, "-o", exe], check=True)
    return exe


def _run_json(cmd: list[str]) -> dict:
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def fma_peak(out: str) -> float:
    """GFLOP/s of one core doing nothing but independent FMAs (2 FLOPs each)."""
    return float(_run_json([_build("fma_peak", out)])["gflops"])


def bandwidth(out: str, sizes: tuple[int, ...] | None = None) -> dict[int, float]:
    """GB/s of one core reading a buffer of each size (bandwidth_sizes() by default) again and
    again."""
    r = _run_json([_build("bandwidth", out), *map(str, sizes or bandwidth_sizes())])
    return {int(k): float(v) for k, v in r.items() if k != "sink"}


def gemm_peak(out: str, shapes: tuple[str, ...] = ()) -> tuple[dict[str, float], str]:
    """GFLOP/s of sofie's built-in sgemm ("M,N,K" -> GFLOP/s; the probe's shapes by default) and
    the name of the micro-kernel it ran."""
    r = _run_json([_build("gemm_peak", out, ("-DSOFIE_BLAS_NONE", f"-I{RUNTIME}")), *shapes])
    return {k: float(v) for k, v in r.items() if k != "kernel"}, str(r["kernel"])


def measure(out: str) -> Machine:
    return Machine(fma_peak(out), bandwidth(out), *gemm_peak(out))


if __name__ == "__main__":
    import sys
    print(json.dumps(measure(sys.argv[1] if len(sys.argv) > 1 else "build/bench/probes").to_json(), indent=1))
