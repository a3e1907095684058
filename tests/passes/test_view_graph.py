"""sofie-opt --view-graph: a picture of the module where the flag stands among the passes,
ops with their node names, tensor types on the edges, fused ops filled and labelled."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

from sofie.tools.view_graph import FUSED_FILL, PLAIN_FILL

BIN = os.path.dirname(sys.executable)
HERE = os.path.dirname(os.path.abspath(__file__))
PIPELINE_IR = os.path.join(HERE, "pipeline.ir")
FUSE_LOOPS_IR = os.path.join(HERE, "fuse_loops.ir")


def opt(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([f"{BIN}/sofie-opt", *args], capture_output=True, text=True, env=env)


def nodes(dot: str) -> dict[str, tuple[str, str]]:
    """node id -> (label, fill) of every op node."""
    return {m[0]: (m[1], m[2]) for m in re.findall(r'^  (\w+) \[label="([^"]*)", fillcolor="([^"]*)"', dot, re.M)}


def test_before_and_after_fuse_differ_and_mark_the_fused_conv(tmp_path) -> None:
    before, after = tmp_path / "before.dot", tmp_path / "after.dot"
    r = opt(PIPELINE_IR, "--view-graph", str(before), "--fold-batchnorm", "--fuse", "--view-graph", str(after))
    assert r.returncode == 0, r.stderr
    b, a = before.read_text(), after.read_text()
    labels_b = [label for label, _ in nodes(b).values()]
    assert r"graph.batch_normalization\nbn" in labels_b and r"graph.relu\nrelu" in labels_b
    assert all(fill == PLAIN_FILL for _, fill in nodes(b).values())  # nothing fused yet
    assert 'label="pipe (as read)"' in b and 'label="pipe (after fold-batchnorm, fuse)"' in a
    fused = [(label, fill) for label, fill in nodes(a).values() if fill == FUSED_FILL]
    assert fused == [(r"graph.conv\nconv\n+ residual add\n+ relu", FUSED_FILL)]
    assert "graph.relu" not in a and "graph.batch_normalization" not in a
    # edges carry the tensor types: the input feeds the conv twice over (X and the residual Z)
    assert re.search(r'in0 -> f0_op\d+ \[label="Nx2x1x1xf32"\]', a)
    assert re.search(r'-> f0_out0 \[label="Nx3xf32"\]', a)


def test_pass_pipeline_runs_between_the_views_written_around_it(tmp_path) -> None:
    before, after = tmp_path / "before.dot", tmp_path / "after.dot"
    r = opt(PIPELINE_IR, "--view-graph", str(before), "--pass-pipeline=fold-batchnorm,fuse", "--view-graph", str(after))
    assert r.returncode == 0, r.stderr
    assert "graph.batch_normalization" in before.read_text()
    assert "graph.batch_normalization" not in after.read_text() and FUSED_FILL in after.read_text()


def test_fused_loops_are_marked_on_the_low_dialect(tmp_path) -> None:
    out = tmp_path / "low.dot"
    r = opt(FUSE_LOOPS_IR, "--lower", "--fuse-loops", "--view-graph", str(out))
    assert r.returncode == 0, r.stderr
    fused = sorted(label for label, fill in nodes(out.read_text()).values() if fill == FUSED_FILL)
    assert r"low.generic\nfused loops: s" in fused and r"low.generic\nfused loops: a, r" in fused
    # a kernel writes its output operand: the edge runs from the writer to the reader
    assert len(re.findall(r"-> f0_out\d \[label=\"Nx4xf32\"\]", out.read_text())) == 5


def test_svg_is_rendered_with_the_fused_conv(tmp_path) -> None:
    svg = tmp_path / "after.svg"
    r = opt(PIPELINE_IR, "--fold-batchnorm", "--fuse", "--view-graph", str(svg))
    assert r.returncode == 0, r.stderr
    texts = [t.text for t in ET.parse(svg).getroot().iter("{http://www.w3.org/2000/svg}text")]
    assert "graph.conv" in texts and "+ relu" in texts and "graph.flatten" in texts


def test_missing_dot_is_a_clear_error_but_dot_text_needs_none(tmp_path) -> None:
    env = dict(os.environ, PATH=str(tmp_path))  # no dot there
    r = opt(PIPELINE_IR, "--view-graph", str(tmp_path / "g.svg"), env=env)
    assert r.returncode == 2
    assert "Graphviz's `dot` program is not on PATH" in r.stderr and "g.svg" in r.stderr
    r = opt(PIPELINE_IR, "--view-graph", str(tmp_path / "g.dot"), env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "g.dot").read_text().startswith("digraph sofie {")
