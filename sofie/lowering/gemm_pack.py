"""The packed layouts of a constant GEMM operand, computed at compile time (the runtime's
sofie::rt::pack_b in sofie_rt/blas.hxx spells the same layout; tests/runtime/test_gemm_kernels.py
checks they agree).

op(B) [K, N] is cut into panels of 64 bytes of columns (16 float32, 8 float64), each stored
k-major and zero padded past N: element (k, j) sits at [j // P, k, j % P]. The layout does
not depend on the ISA: the AVX-512 micro-kernel reads four panels at a time, the AVX2 one a
whole panel, the generic one half or all of one, so one .dat serves every -march.

A [M, K] for sofie::rt::gemm_small_n (sofie_rt/gemm_small_n.hxx) is cut into panels of 48 rows,
each stored k-major and zero padded past M: (i, k) at [i // 48, k, i % 48].

op(A) [M, K] (sofie::rt::pack_a) is cut into panels of MR = 6 rows, the row count of every
ISA's register tile, each stored k-major and zero padded past M: (i, k) at [i // 6, k, i % 6].
"""

from __future__ import annotations

import numpy as np

PANEL_BYTES = 64


def panel_width(dtype: np.dtype) -> int:
    return PANEL_BYTES // np.dtype(dtype).itemsize


def packed_b(b: np.ndarray, trans_b: bool) -> np.ndarray:
    """op(B) (B stored [N, K] when trans_b) as [ceil(N / P), K, P] panels, P = panel_width."""
    op_b = np.asarray(b).T if trans_b else np.asarray(b)
    k, n = op_b.shape
    p = panel_width(op_b.dtype)
    panels = -(-n // p)
    padded = np.zeros((k, panels * p), op_b.dtype)
    padded[:, :n] = op_b
    return np.ascontiguousarray(padded.reshape(k, panels, p).transpose(1, 0, 2))


MR = 6


def packed_a(a: np.ndarray, trans_a: bool) -> np.ndarray:
    """op(A) (A stored [K, M] when trans_a) as [ceil(M / 6), K, 6] panels."""
    op_a = np.asarray(a).T if trans_a else np.asarray(a)
    m, k = op_a.shape
    panels = -(-m // MR)
    padded = np.zeros((panels * MR, k), op_a.dtype)
    padded[:m] = op_a
    return np.ascontiguousarray(padded.reshape(panels, MR, k).transpose(0, 2, 1))


SMALL_N_PANEL = 48  # sofie::rt::kSmallNPanel


def packed_a_columns(a: np.ndarray) -> np.ndarray:
    """A [M, K] as [ceil(M / 48), K, 48] panels, for gemm_small_n."""
    a = np.asarray(a)
    m, k = a.shape
    panels = -(-m // SMALL_N_PANEL)
    padded = np.zeros((panels * SMALL_N_PANEL, k), a.dtype)
    padded[:m] = a
    return np.ascontiguousarray(padded.reshape(panels, SMALL_N_PANEL, k).transpose(0, 2, 1))
