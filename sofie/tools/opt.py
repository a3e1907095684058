"""sofie-opt INPUT [passes] [-o OUT]: reads ONNX or IR text, runs passes, prints IR text.

Pass flags are the registered pass names (`--fold-batchnorm --fuse`), run in the order given,
or `--pass-pipeline="fold-constants,fuse"`.
"""

from __future__ import annotations

import argparse
import sys

from sofie.errors import SofieError
from sofie.frontends import load_model
from sofie.ir.core import Module
from sofie.ir.parser import parse
from sofie.ir.printer import print_module
from sofie.ir.verifier import verify
from sofie.pipeline import PipelineOptions, available_passes, parse_pipeline, run_pipeline
from sofie.tools.cli import run_cli


class _AddPass(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        namespace.pipeline.append(self.dest.replace("_", "-"))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sofie-opt", description="Run sofie passes on a model or IR text.")
    p.add_argument("input", help="an .onnx model or IR text ('-' for stdin)")
    p.add_argument("-o", "--output", help="write the IR here instead of stdout")
    p.set_defaults(pipeline=[])
    for name, cls in sorted(available_passes().items()):
        p.add_argument(f"--{name}", dest=name.replace("-", "_"), nargs=0, action=_AddPass, help=cls.summary)
    p.add_argument("--pass-pipeline", help="comma-separated pass names, run after any pass flags")
    p.add_argument("--print-ir-after-all", action="store_true")
    p.add_argument("--print-ir-after", action="append", default=[], metavar="PASS")
    p.add_argument("--pass-stats", action="store_true", help="ops before/after and time per pass (stderr)")
    p.add_argument("--no-verify", action="store_true", help="skip the verifier between passes")
    p.add_argument("--inline-weights-below", type=int, default=16, metavar="N",
                   help="print weights with at most N elements inline (default 16)")
    return p


def _read(path: str) -> Module:
    if path.endswith(".onnx"):
        return load_model(path)
    try:
        text = sys.stdin.read() if path == "-" else open(path).read()
    except OSError as e:
        raise SofieError(f"{path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise SofieError(f"{path}: not IR text (binary data); ONNX files need the .onnx extension") from None
    m = parse(text, source=path)
    verify(m, "parsing")
    return m


def _main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
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
    text = print_module(module, inline_limit=args.inline_weights_below)
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
