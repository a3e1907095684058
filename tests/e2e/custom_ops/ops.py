"""Custom ops for tests/e2e/test_custom_ops.py, loaded as `--custom-ops` files are."""

import numpy as np

import sofie


def _row_stats(X, w, mode, offset):
    y = X * np.resize(np.asarray(w, np.float32), X.shape[-1])
    s = (y.max(axis=-1) if mode == "max" else y.sum(axis=-1)) + np.float32(offset)
    return [y.astype(np.float32), s.astype(np.float32)]


swish = sofie.CustomOp(
    domain="test.ops", op_type="Swish", inputs=["X"], outputs=["Y"], attrs={"beta": 1.0},
    reference=lambda X, beta: (X / (1 + np.exp(-np.float32(beta) * X))).astype(X.dtype),
    cpp="for (std::size_t i = 0; i < X.size(); ++i) Y[i] = X[i] / (1 + std::exp(-beta * X[i]));",
    dtypes=("f32", "f64"))

row_stats = sofie.CustomOp(
    domain="test.ops", op_type="RowStats", inputs=["X"], outputs=["Y", "S"],
    attrs={"w": [1.0], "mode": "sum", "offset": 0},
    shape=lambda X, w, mode, offset: [X, sofie.TensorType(X.dtype, X.shape[:-1])],
    reference=_row_stats, header="row_stats.hxx", function="row_stats")
