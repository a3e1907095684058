# lit configuration for the pass FileCheck tests: `lit -v tests/passes`.
import os
import shlex
import sys
import tempfile

import lit.formats

config.name = "sofie-passes"  # noqa: F821  (lit injects `config`)
config.test_format = lit.formats.ShTest()  # noqa: F821
config.suffixes = [".ir"]  # noqa: F821
config.test_source_root = os.path.dirname(__file__)  # noqa: F821
# lit's scratch files go outside the source tree
config.test_exec_root = os.path.join(tempfile.gettempdir(), "sofie-lit-passes")  # noqa: F821

_bin = os.path.dirname(sys.executable)
_repo = os.path.dirname(os.path.dirname(config.test_source_root))  # noqa: F821


def _tool(name: str, module: str) -> str:
    """The venv's console script when installed, else the module run by this interpreter."""
    path = os.path.join(_bin, name)
    if os.path.exists(path):
        return shlex.quote(path)
    return f"{shlex.quote(sys.executable)} -m {module}"


config.substitutions.append(("sofie-opt", _tool("sofie-opt", "sofie.tools.opt")))  # noqa: F821
config.substitutions.append(("sofie-compile", _tool("sofie-compile", "sofie.tools.compile")))  # noqa: F821
config.substitutions.append(("filecheck", shlex.quote(os.path.join(_bin, "filecheck"))))  # noqa: F821
config.environment["PYTHONPATH"] = os.pathsep.join(  # noqa: F821
    p for p in (_repo, os.environ.get("PYTHONPATH", "")) if p)
