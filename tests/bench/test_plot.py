"""bench/plot.py: the sofie/ORT ratio chart from a small fake result set (no benchmark run)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from bench.plot import main, plot_ratios

ROWS = [{"model": "mlp_5x200", "batch": 1, "sofie_us": 5.0, "ort_us": 10.0, "ratio": 0.5},
        {"model": "mlp_5x200", "batch": 64, "sofie_us": 40.0, "ort_us": 20.0, "ratio": 2.0},
        {"model": "resnet18", "batch": 1, "sofie_us": 9.0, "ort_us": 10.0, "ratio": 0.9}]


def test_one_bar_per_row_labelled_and_coloured(tmp_path) -> None:
    out = plot_ratios(ROWS, str(tmp_path / "r.svg"), title="sofie (openblas) / ONNX Runtime")
    svg = (tmp_path / "r.svg").read_text()
    ET.fromstring(svg)  # well-formed
    assert out == str(tmp_path / "r.svg")
    # matplotlib keeps each text as a comment over its glyphs: the ratios, the ticks, the title
    comments = re.findall(r"<!-- (.*?) -->", svg)
    for text in ("0.50", "2.00", "0.90", "mlp_5x200", "resnet18", "batch 64", "sofie (openblas) / ONNX Runtime"):
        assert text in comments, text
    # faster than ORT in green, slower in red: two green bars, one red
    fills = re.findall(r'<g id="patch_\d+">\s*<path d="[^"]*"\s*clip-path="[^"]*"\s*style="fill: (#[0-9a-f]{6})', svg)
    assert sorted(fills) == ["#59a14f", "#59a14f", "#e15759"]
    assert "<dc:date>" not in svg  # no timestamp: the chart of the same numbers is the same file


def test_replot_a_saved_table(tmp_path, capsys) -> None:
    table = tmp_path / "results-openblas.json"
    table.write_text(json.dumps({"ort_floor_us": 1.0, "rows": ROWS}))
    assert main([str(table)]) == 0
    assert (tmp_path / "results-openblas.svg").exists()
    assert capsys.readouterr().out.strip() == str(tmp_path / "results-openblas.svg")


def test_second_panel_gives_the_distance_to_the_limit(tmp_path) -> None:
    rows = [dict(r, to_limit=t) for r, t in zip(ROWS, (1.1, 3.25, 0.95))]
    svg = open(plot_ratios(rows, str(tmp_path / "r.svg"))).read()
    comments = re.findall(r"<!-- (.*?) -->", svg)
    for text in ("3.25", "1.10", "0.95", "sofie time / machine limit"):
        assert text in comments, text
    fills = re.findall(r'<g id="patch_\d+">\s*<path d="[^"]*"\s*clip-path="[^"]*"\s*style="fill: (#[0-9a-f]{6})', svg)
    assert len(fills) == 6  # three bars in each panel
