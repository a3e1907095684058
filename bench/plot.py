"""The benchmark's ratios as a bar chart: sofie / ONNX Runtime time per model and batch, beside
the table (`results.json` -> `results.svg`). Below the line at 1 sofie is faster.

matplotlib comes with the `bench` extra (pip install -e '.[bench]'); only the benchmark uses it.

usage: python bench/plot.py build/bench/results.json   (plots a saved run again)
"""

from __future__ import annotations

import json
import os
import sys


def plot_ratios(rows: list[dict], path: str, title: str = "sofie / ONNX Runtime") -> str:
    """Writes the chart of rows ({'model', 'batch', 'ratio'}, as bench/run.py makes them) to
    `path` (the suffix names the format); returns `path`."""
    import matplotlib
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    labels = [f"{r['model']}\nbatch {r['batch']}" for r in rows]
    ratios = [r["ratio"] for r in rows]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(rows) + 2), 4.5))
    colors = ["#59a14f" if x <= 1 else "#e15759" for x in ratios]  # green: sofie faster
    bars = ax.bar(range(len(rows)), ratios, color=colors)
    ax.bar_label(bars, labels=[f"{x:.2f}" for x in ratios], fontsize=8)
    ax.axhline(1.0, color="#333333", linewidth=1, linestyle="--")
    ax.set_xticks(range(len(rows)), labels, fontsize=8)
    ax.set_ylabel("sofie time / ORT time (lower is better)")
    ax.set_title(title)
    ax.set_ylim(0, max([1.2, *ratios]) * 1.15)
    fig.tight_layout()
    fig.savefig(path, metadata={"Date": None} if path.endswith(".svg") else None)  # SVG: no timestamp
    plt.close(fig)
    return path


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        rows = json.load(f)["rows"]
    print(plot_ratios(rows, os.path.splitext(argv[0])[0] + ".svg"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
