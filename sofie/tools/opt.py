"""sofie-opt INPUT [passes] [-o OUT]: reads ONNX or IR text, runs passes, prints IR text.

Pass flags are the registered pass names (`--fold-batchnorm --fuse`), run in the order given,
or `--pass-pipeline="fold-constants,fuse"` (`default` names the default pipeline). --help lists
the passes in the order the default pipeline runs them. The IR text it prints holds every weight, so
sofie-compile and sofie.compile take it as a model; `--elide-weights` prints it for reading.

`--view-graph FILE` is a pseudo-pass: it draws the module where it stands among the pass flags
(`--fuse --view-graph after.svg --dce` draws it after fuse, before dce; first, it draws the
imported model). --pass-pipeline runs after every pass flag, so a --view-graph written before
--pass-pipeline (and after the last pass flag) draws the module before those passes, one
written after it the final module.
"""

from __future__ import annotations

import argparse
import sys

from sofie.custom_ops import load_custom_ops
from sofie.frontends import load_model
from sofie.frontends.ir_text import is_ir_text, read_ir_text
from sofie.ir.core import Module
from sofie.ir.printer import INLINE_LIMIT, print_module
from sofie.pipeline import DEFAULT_PIPELINE, PipelineOptions, parse_pipeline, passes_in_run_order, run_pipeline
from sofie.tools.cli import run_cli
from sofie.tools.view_graph import write_graph

VIEW = "view-graph"  # the pseudo-pass, as (VIEW, file) in the pipeline list


class _AddPass(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        namespace.pipeline.append(self.dest.replace("_", "-"))


class _AddView(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        namespace.pipeline.append((VIEW, values))


class _MarkPipeline(argparse.Action):
    """Stores --pass-pipeline and where it stood among the --view-graph flags."""

    def __call__(self, parser, namespace, values, option_string=None):
        namespace.pass_pipeline = values
        namespace.pipeline_at = len(namespace.pipeline)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sofie-opt", description="Run sofie passes on a model or IR text.")
    p.add_argument("input", help="a model (ONNX, .pt2, file.root[:name]) or IR text ('-' for stdin)")
    p.add_argument("-o", "--output", help="write the IR here instead of stdout")
    p.set_defaults(pipeline=[])
    passes = p.add_argument_group("passes, in the order the default pipeline runs them")
    for name, cls in passes_in_run_order():
        passes.add_argument(f"--{name}", dest=name.replace("-", "_"), nargs=0, action=_AddPass, help=cls.summary)
    p.set_defaults(pipeline_at=0)
    p.add_argument("--pass-pipeline", action=_MarkPipeline,
                   help="comma-separated pass names, run after any pass flags; "
                        f"'default' names the default pipeline ({','.join(DEFAULT_PIPELINE)})")
    p.add_argument("--view-graph", action=_AddView, metavar="FILE",
                   help="draw the module at this point of the pass flags (repeatable): ops, tensor shapes, "
                        "fused ops marked; FILE.svg/.png/.pdf need Graphviz's dot, FILE.dot is the DOT text")
    p.add_argument("--print-ir-after-all", action="store_true", help="print the IR after every pass (stderr)")
    p.add_argument("--print-ir-after", action="append", default=[], metavar="PASS",
                   help="print the IR after this pass (stderr; repeatable)")
    p.add_argument("--pass-stats", action="store_true", help="ops before/after and time per pass (stderr)")
    p.add_argument("--no-verify", action="store_true", help="skip the verifier between passes")
    p.add_argument("--inline-weights-below", type=int, default=INLINE_LIMIT, metavar="N",
                   help=f"print weights with at most N elements inline (default {INLINE_LIMIT}), "
                        f"the others in the resource section after the module")
    p.add_argument("--elide-weights", action="store_true",
                   help="print 'elided' for the weights that are not inline, for reading "
                        "(the text still parses, but no longer compiles)")
    p.add_argument("--custom-ops", action="append", default=[], metavar="FILE",
                   help="a Python file declaring sofie.CustomOp objects (repeatable)")
    return p


def _read(path: str) -> Module:
    """IR text of any level (sofie-opt also reads and prints the low dialect), or any model
    format sofie-compile reads (told by the file's contents)."""
    return read_ir_text(path) if path == "-" or is_ir_text(path) else load_model(path)


def _main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    for path in args.custom_ops:
        load_custom_ops(path)
    steps = list(args.pipeline)
    if args.pass_pipeline:  # after every pass flag; after the --view-graph flags written before it too
        last_flag = max((i + 1 for i, s in enumerate(steps) if isinstance(s, str)), default=0)
        at = max(last_flag, args.pipeline_at)
        steps[at:at] = parse_pipeline(args.pass_pipeline)
    module = _read(args.input)
    opts = PipelineOptions(verify_each=not args.no_verify, print_after_all=args.print_ir_after_all,
                           print_after=set(args.print_ir_after),
                           printer=lambda s: print(s, file=sys.stderr))
    module, stats = _run_steps(module, steps, opts)
    if args.pass_stats:
        for s in stats:
            print(f"{s.name:<16} ops {s.ops_before:>5} -> {s.ops_after:<5} {s.seconds * 1e3:8.2f} ms",
                  file=sys.stderr)
    text = print_module(module, inline_limit=args.inline_weights_below, elide=args.elide_weights)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _run_steps(module: Module, steps: list, opts: PipelineOptions) -> tuple[Module, list]:
    """Runs the passes between --view-graph points, drawing the module at each point."""
    stats: list = []
    names: list[str] = []
    done: list[str] = []  # the passes run so far, for the picture's title
    for step in [*steps, None]:
        if isinstance(step, str):
            names.append(step)
            continue
        if names:
            module, more = run_pipeline(module, names, opts)
            stats += more
            done += [s.name for s in more]
            names = []
        if step is not None:
            write_graph(module, step[1], title="after " + ", ".join(done) if done else "as read")
    return module, stats


def main(argv: list[str] | None = None) -> int:
    sys.exit(run_cli("sofie-opt", _main, argv))


if __name__ == "__main__":
    main()
