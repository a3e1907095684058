"""The ONNX node-test conformance runner: `python -m sofie.conformance [--ops A,B] [--jobs N]`.

collect (the onnx package's node tests) -> import (sofie, in-process) -> build (many models per
g++ run, cached by content) -> run and compare (one process per test) -> report (by op)."""
