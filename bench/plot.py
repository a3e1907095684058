"""The benchmark's ratios as a bar chart: sofie / ONNX Runtime time per model and batch, beside
the table (`results.json` -> `results.svg`). Below the line at 1 sofie is faster. A second
panel gives sofie's time over the machine's limit (bench/report.py's `to_limit`).

matplotlib comes with the `bench` extra (pip install -e '.[bench]'); only the benchmark uses it.

usage: python bench/plot.py build/bench/results.json   (plots a saved run again)
"""

from __future__ import annotations

import json
import os
import sys


def _bars(ax, ratios: list[float], ylabel: str, line: float) -> None:
    colors = ["#59a14f" if x <= line else "#e15759" for x in ratios]  # green: within the line
    bars = ax.bar(range(len(ratios)), ratios, color=colors)
    ax.bar_label(bars, labels=[f"{x:.2f}" for x in ratios], fontsize=8)
    ax.axhline(line, color="#333333", linewidth=1, linestyle="--")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, max([1.2 * line, *ratios]) * 1.15)


def plot_ratios(rows: list[dict], path: str, title: str = "sofie / ONNX Runtime") -> str:
    """Writes the chart of rows ({'model', 'batch', 'ratio'} and, when every row has it,
    'to_limit'; as bench/run.py makes them) to `path` (the suffix names the format); returns
    `path`. The second panel, sofie's time over the machine's limit, shows how much any
    runtime could still gain."""
    import matplotlib
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    labels = [f"{r['model']}\nbatch {r['batch']}" for r in rows]
    with_limit = all("to_limit" in r for r in rows)
    fig, axes = plt.subplots(2 if with_limit else 1, 1, sharex=True, squeeze=False,
                             figsize=(max(6.0, 0.9 * len(rows) + 2), 7.5 if with_limit else 4.5))
    _bars(axes[0][0], [r["ratio"] for r in rows], "sofie time / ORT time (lower is better)", 1.0)
    axes[0][0].set_title(title)
    if with_limit:
        _bars(axes[1][0], [r["to_limit"] for r in rows], "sofie time / machine limit", 1.0)
        axes[1][0].set_title("distance to the limit: FLOPs at FMA peak or bytes at bandwidth (1 = at the limit)",
                             fontsize=9)
    axes[-1][0].set_xticks(range(len(rows)), labels, fontsize=8)
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
