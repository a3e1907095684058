"""python -m sofie --cmakedir | --includedir | --default-blas | --version: where the installed
package keeps what C++ builds need (as `python -m pybind11 --cmakedir`)."""

from __future__ import annotations

import argparse
import os
import sys

from sofie.version import __version__

HERE = os.path.dirname(os.path.abspath(__file__))
CMAKE_DIR = os.path.join(HERE, "cmake")
INCLUDE_DIR = os.path.join(HERE, "runtime")  # holds sofie_rt/, as generated headers include it


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sofie", description="Paths of the installed sofie package, for C++ builds.",
        epilog="CMake: cmake -Dsofie_DIR=$(python -m sofie --cmakedir) ..., then find_package(sofie CONFIG "
               "REQUIRED) gives sofie::runtime and sofie_add_model(). The compilers are sofie-compile and "
               "sofie-opt (each has --help).")
    p.add_argument("--cmakedir", action="store_true", help="print the folder of sofieConfig.cmake")
    p.add_argument("--includedir", action="store_true",
                   help="print the include folder of the runtime headers (#include \"sofie_rt/sofie_rt.hxx\")")
    p.add_argument("--default-blas", action="store_true",
                   help="print the BLAS sofie-compile uses when --blas is not given")
    p.add_argument("--version", action="version", version=f"sofie {__version__}")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.cmakedir:
        print(CMAKE_DIR)
    if args.includedir:
        print(INCLUDE_DIR)
    if args.default_blas:
        from sofie.backend_cpp.toolchain import default_blas  # only this flag needs the toolchain
        print(default_blas())
    if not (args.cmakedir or args.includedir or args.default_blas):
        parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
