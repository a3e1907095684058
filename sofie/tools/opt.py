"""sofie-opt INPUT [passes] [-o OUT]: reads ONNX or IR text, runs passes, prints IR text.

Pass flags are the registered pass names (`--fold-batchnorm --fuse`), run in the order given,
or `--pass-pipeline="fold-constants,fuse"` (`default` names the default pipeline). --help lists
the passes in the order the default pipeline runs them. The IR text it prints holds every weight, so
sofie-compile and sofie.compile take it as a model; `--elide-weights` prints it for reading.
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


class _AddPass(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        namespace.pipeline.append(self.dest.replace("_", "-"))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sofie-opt", description="Run sofie passes on a model or IR text.")
    p.add_argument("input", help="a model (ONNX, .pt2, file.root[:name]) or IR text ('-' for stdin)")
    p.add_argument("-o", "--output", help="write the IR here instead of stdout")
    p.set_defaults(pipeline=[])
    passes = p.add_argument_group("passes, in the order the default pipeline runs them")
    for name, cls in passes_in_run_order():
        passes.add_argument(f"--{name}", dest=name.replace("-", "_"), nargs=0, action=_AddPass, help=cls.summary)
    p.add_argument("--pass-pipeline", help="comma-separated pass names, run after any pass flags; "
                                           f"'default' names the default pipeline ({','.join(DEFAULT_PIPELINE)})")
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
    names = list(args.pipeline) + (parse_pipeline(args.pass_pipeline) if args.pass_pipeline else [])
    module = _read(args.input)
    opts = PipelineOptions(verify_each=not args.no_verify, print_after_all=args.print_ir_after_all,
                           print_after=set(args.print_ir_after),
                           printer=lambda s: print(s, file=sys.stderr))
    module, stats = run_pipeline(module, names, opts)
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


def main(argv: list[str] | None = None) -> int:
    sys.exit(run_cli("sofie-opt", _main, argv))


if __name__ == "__main__":
    main()
