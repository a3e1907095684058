"""Where sofie loses against ONNX Runtime, op by op, on the same ONNX file.

usage: python bench/compare_profile.py MODEL [--batch N] [--iters K] [--blas none] [--nodes 15]

MODEL is a bench model name (bench/models.py exports it into --onnx-dir) or an .onnx path.
sofie's side is sofie.tools.profile (run() timing every op block); ORT's is its own node
profile (enable_profiling, one intra-op thread, every graph optimization). Both sides fuse
nodes (sofie's epilogues, ORT's FusedConv and friends), so a node is matched by the ONNX node
name each side reports for the fused block; ORT's names for its fused nodes lose their suffix
(ORT names its NCHWc blocks `<output tensor>_nchwc`): every block is charged to its anchor,
the Conv / Gemm its fused followers (BatchNorm, Clip, Relu, residual Add, SiLU) hang from, so
both columns of a row count the same source nodes. Convs are split by kind: depthwise, 1x1,
k x k, with their stride.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from bench.models import MODELS, export  # noqa: E402


def ort_node_times(path: str, batch: int, iters: int) -> tuple[float, dict[str, float]]:
    """(wall seconds per call, node name -> seconds per call) from ORT's profiler, one thread."""
    import onnxruntime as ort
    with tempfile.TemporaryDirectory(prefix="ort-profile-") as tmp:
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(tmp, "ort")
        s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        feeds = {}
        for i in s.get_inputs():
            shape = [batch if not isinstance(d, int) else d for d in i.shape]
            n = int(np.prod(shape))
            feeds[i.name] = np.sin(0.1 * np.arange(n)).astype(np.float32).reshape(shape)
        for _ in range(3):
            s.run(None, feeds)
        import time
        t0 = time.perf_counter()
        for _ in range(iters):
            s.run(None, feeds)
        total = (time.perf_counter() - t0) / iters
        with open(s.end_profiling()) as fh:
            events = json.load(fh)
    per_node: dict[str, list[float]] = collections.defaultdict(list)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_node[e["name"][: -len("_kernel_time")]].append(e["dur"] * 1e-6)
    # the warm-up calls are profiled too: keep the last `iters` runs of every node
    return total, {k: sum(v[-iters:]) / min(iters, len(v)) for k, v in per_node.items()}


class Graph:
    """The source ONNX graph: each node's kind (Conv split into depthwise / 1x1 / kxk) and the
    node a fused block is charged to (its anchor)."""

    # ops the runtimes fold into the Conv / Gemm before them (ORT's FusedConv and NCHWc Conv
    # with Sum, sofie's epilogues and BatchNorm folding)
    FOLLOWERS = ("BatchNormalization", "Clip", "Relu", "LeakyRelu", "HardSigmoid", "HardSwish", "Add")

    def __init__(self, path: str) -> None:
        import onnx
        from onnx import numpy_helper
        g = onnx.load(path, load_external_data=False).graph
        shapes = {t.name: list(numpy_helper.to_array(t).shape) for t in g.initializer}
        self.nodes = {n.name: n for n in g.node}
        self.index = {n.name: i for i, n in enumerate(g.node)}
        self.producer = {o: n for n in g.node for o in n.output}
        self.users: dict[str, list] = collections.defaultdict(list)
        for n in g.node:
            for i in n.input:
                self.users[i].append(n)
        self.kinds = {n.name: self._kind(n, shapes) for n in g.node}

    @staticmethod
    def _kind(n, shapes: dict[str, list[int]]) -> str:
        if n.op_type != "Conv" or len(n.input) < 2 or n.input[1] not in shapes:
            return n.op_type
        w = shapes[n.input[1]]
        group = next((a.i for a in n.attribute if a.name == "group"), 1)
        k = "x".join(map(str, w[2:]))
        stride = next((list(a.ints) for a in n.attribute if a.name == "strides"), [1])
        s = f" s{stride[0]}" if max(stride) > 1 else ""
        if group > 1 and w[1] == 1:
            return f"Conv dw {k}{s}"
        return f"Conv {k}{s}"

    def node_of(self, name: str) -> str | None:
        """The source node an ORT or sofie block name stands for: a node name, or an output
        tensor's name with ORT's suffix (`<tensor>_nchwc`, `<tensor>_token_3`)."""
        if name in self.nodes:
            return name
        for suffix in ("_nchwc", ""):
            base = name[: -len(suffix)] if suffix and name.endswith(suffix) else name
            base = base.split("_token_")[0]
            if base in self.producer:
                return self.producer[base].name
        # `<node>/QuickGeluFusion/`: a node ORT rewrote under its own name plus a path
        owners = [n for n in self.nodes if name.startswith(n + "/")]
        return max(owners, key=len) if owners else None

    def anchor(self, name: str) -> str:
        """The Conv / Gemm a fused follower belongs to (walking back over BatchNorm, Clip,
        Relu, residual Adds, SiLU's Sigmoid and Mul), else the node itself."""
        node = self.nodes.get(name)
        while node is not None:
            prev = self._fused_into(node)
            if prev is None:
                return node.name
            node = prev
        return name

    def _fused_into(self, node):
        ins = [self.producer[i] for i in node.input if i in self.producer and self.producer[i].op_type != "Constant"]
        if node.op_type in self.FOLLOWERS and ins:
            return max(ins, key=lambda n: self.index[n.name])  # the residual's latest branch
        if node.op_type == "Mul" and len(node.input) == 2:  # SiLU: Mul(y, Sigmoid(y))
            a, b = node.input
            for y, sg in ((a, b), (b, a)):
                sig = self.producer.get(sg)
                if sig is not None and sig.op_type == "Sigmoid" and sig.input[0] == y and y in self.producer:
                    return self.producer[y]
        if node.op_type == "Sigmoid" and node.input[0] in self.producer:
            y = node.input[0]
            silu = any(u.op_type == "Mul" and y in u.input and node.output[0] in u.input for u in self.users[y])
            # the activation of a Conv / Gemm it alone reads (sofie's epilogue)
            act = len(self.users[y]) == 1 and self.producer[y].op_type in ("Conv", "Gemm")
            return self.producer[y] if silu or act else None
        return None


def compare(path: str, batch: int, iters: int, blas: str) -> dict:
    from sofie.tools.profile import profile
    prof = profile(path, batch, iters, blas)
    ort_total, ort_nodes = ort_node_times(path, batch, iters)
    return {"model": path, "batch": batch, "sofie_total": prof.total, "ort_total": ort_total,
            "sofie": [[o.name, o.kind, o.seconds] for o in prof.ops], "ort": ort_nodes}


def rows(res: dict) -> list[tuple[str, str, float, float, str]]:
    """(anchor node, its kind, sofie seconds, ORT seconds, sofie's low op kinds) per anchor."""
    g = Graph(res["model"])
    acc: dict[str, list] = collections.defaultdict(lambda: [0.0, 0.0, set()])

    def key(name: str) -> str:
        node = g.node_of(name)
        return g.anchor(node) if node else name
    for name, low, sec in res["sofie"]:
        a = acc[key(name)]
        a[0] += sec
        a[2].add(low.replace("low.", ""))
    for name, sec in res["ort"].items():
        acc[key(name)][1] += sec
    # a block of no source node (ORT's ReorderInput_token_5): its kind is its name's stem
    return [(n, g.kinds.get(n, n.split("_token_")[0]), s, o, ",".join(sorted(lows)) or "-")
            for n, (s, o, lows) in acc.items()]


def _ratio(a: float, b: float) -> str:
    return f"{a / b:6.2f}" if b > 0 else "     -"


def table(res: dict, nodes: int) -> str:
    rs = rows(res)
    by_kind: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0])
    for _, kind, s, o, _ in rs:
        k = by_kind[kind]
        k[0] += s
        k[1] += o
        k[2] += 1
    ops_s, ops_o = sum(r[2] for r in rs), sum(r[3] for r in rs)
    ratio = res["sofie_total"] / res["ort_total"]
    lines = [f"{res['model']} batch {res['batch']}: sofie {res['sofie_total'] * 1e3:.3f} ms, "
             f"ORT {res['ort_total'] * 1e3:.3f} ms (wall, per call), ratio {ratio:.2f}; "
             f"the blocks sum to {ops_s * 1e3:.3f} and {ops_o * 1e3:.3f} ms",
             "", f"{'op kind':<22} {'nodes':>5} {'sofie us':>10} {'ORT us':>10} {'ratio':>6} {'diff us':>9}"]
    for kind, (s, o, n) in sorted(by_kind.items(), key=lambda kv: -(kv[1][0] - kv[1][1])):
        lines.append(f"{kind:<22} {n:>5} {s * 1e6:>10.1f} {o * 1e6:>10.1f} {_ratio(s, o)} {(s - o) * 1e6:>9.1f}")
    lines += ["", f"the {nodes} nodes sofie loses most time on:",
              f"{'node':<48} {'kind':<14} {'sofie low op':<22} {'sofie us':>9} {'ORT us':>9} {'ratio':>6}"]
    worst = sorted(rs, key=lambda r: -(r[2] - r[3]))[:nodes]
    for name, kind, s, o, low in worst:
        lines.append(f"{name[-48:]:<48} {kind:<14} {low:<22} {s * 1e6:>9.1f} {o * 1e6:>9.1f} {_ratio(s, o)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a bench model name or an .onnx file")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--blas", default="none", help="sofie's BLAS (default none: its own GEMM)")
    p.add_argument("--nodes", type=int, default=15, help="worst nodes to list")
    p.add_argument("--onnx-dir", default=os.path.join(os.path.dirname(HERE), "build", "bench", "onnx"))
    p.add_argument("--json", help="also write both raw profiles here")
    p.add_argument("--from-json", action="store_true", help="MODEL is such a JSON file: print its table again")
    args = p.parse_args(argv)
    if args.from_json:
        with open(args.model) as fh:
            print(table(json.load(fh), args.nodes))
        return 0
    if args.model in MODELS:
        os.makedirs(args.onnx_dir, exist_ok=True)
        path = export(args.model, args.onnx_dir)
    elif os.path.isfile(args.model):
        path = args.model
    else:
        print(f"compare_profile: {args.model}: neither a bench model ({', '.join(MODELS)}) nor a file",
              file=sys.stderr)
        return 2
    res = compare(path, args.batch, args.iters, args.blas)
    print(table(res, args.nodes))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
