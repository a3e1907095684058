"""sofie-compile MODEL -o DIR: writes DIR/NAME.hxx, DIR/NAME.dat (and, with --stats,
NAME.stats.json and NAME.memory.svg, the memory plan drawn)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from sofie.backend_cpp.toolchain import BLAS_CHOICES, blas_flags, default_blas
from sofie.custom_ops import load_custom_ops
from sofie.driver import build
from sofie.errors import SofieError
from sofie.frontends import load_model
from sofie.frontends.root import save_root
from sofie.pipeline import parse_pipeline
from sofie.tools.cli import passes_help, run_cli
from sofie.tools.memory_svg import memory_svg


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sofie-compile", description="Compile a trained model to C++.",
                                epilog=passes_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="model file: ONNX, sofie IR text, torch.export program (.pt2), "
                                 "ROOT file (file.root[:name]); the format is told by the file's contents")
    p.add_argument("-o", "--output", default=".", help="output folder (default: .)")
    p.add_argument("--name", help="model name: NAME.hxx, namespace TMVA_SOFIE_NAME "
                                     "(default: the file stem; for IR text, its module's name)")
    p.add_argument("--blas", choices=BLAS_CHOICES,
                   help="default: openblas when the scipy-openblas32 wheel is installed (pip install "
                        "'sofie[blas]'), else none")
    p.add_argument("--stats", action="store_true", help="also write NAME.stats.json and NAME.memory.svg "
                                                           "(each buffer's arena bytes over its live range)")
    p.add_argument("--save-root", metavar="FILE.root[:KEY]",
                   help="also store the imported model (IR text with its weights) in this ROOT file, "
                        "under KEY (default: the model's name); other objects in the file are kept")
    p.add_argument("--print-flags", action="store_true",
                   help="print the extra compile/link flags the chosen BLAS needs, and exit")
    p.add_argument("-O0", dest="no_opt", action="store_true", help="run no optimization pass")
    p.add_argument("--pass-pipeline", help="comma-separated passes instead of the default pipeline; "
                                           "'default' names it ('default,cse' extends it)")
    p.add_argument("--dim", action="append", default=[], metavar="S=MAX",
                   help="default maximum of dim symbol S other than the batch (repeatable; default 64); "
                        "the memory plan holds for every value up to it")
    p.add_argument("--profile", action="store_true",
                   help="time each op block: Session::profile_seconds() holds the seconds per op, "
                        "named in kProfileNames (python -m sofie.tools.profile prints the table)")
    p.add_argument("--custom-ops", action="append", default=[], metavar="FILE",
                   help="a Python file declaring sofie.CustomOp objects (repeatable)")
    return p


def parse_dims(items: list[str]) -> dict[str, int]:
    """['P=128', 'S=512'] -> {'P': 128, 'S': 512}."""
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        if not name or not value.isdigit():
            raise SofieError(f"--dim {item}: expected SYMBOL=MAX with a positive integer, e.g. --dim P=128")
        out[name] = int(value)
    return out


def _main(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.print_flags:  # needs no model: the flags depend on the BLAS only
        print(" ".join(blas_flags(args.blas or default_blas())))
        return 0
    if args.model is None:
        parser.error("the following arguments are required: model")
    for path in args.custom_ops:
        load_custom_ops(path)
    passes = [] if args.no_opt else (parse_pipeline(args.pass_pipeline) if args.pass_pipeline else None)
    model = args.model
    if args.save_root:
        model = load_model(args.model, name=args.name)
        print(f"saved {save_root(model, args.save_root)}", file=sys.stderr)
    r = build(model, args.output, name=args.name, blas=args.blas, passes=passes, dims=parse_dims(args.dim),
              source=os.path.basename(args.model), profile=args.profile)
    if args.stats:
        path = os.path.join(args.output, f"{r.low.name}.stats.json")
        with open(path, "w") as f:
            json.dump(r.stats, f, indent=1)
        with open(os.path.join(args.output, f"{r.low.name}.memory.svg"), "w") as f:
            f.write(memory_svg(r.low.main, title=r.low.name))
    if r.stats["memory_plan"] == "plan-memory-no-reuse":
        print("note: memory plan without reuse (the pipeline asked for plan-memory-no-reuse): "
              f"arena {r.stats['arena_bytes']} bytes", file=sys.stderr)
    print(f"wrote {r.header} and {r.weights}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    sys.exit(run_cli("sofie-compile", _main, argv))


if __name__ == "__main__":
    main()
