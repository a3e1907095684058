"""What both CLIs share: user errors become one line on stderr and exit code 2."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable

from sofie.errors import SofieError
from sofie.pipeline import DEFAULT_PIPELINE, passes_in_run_order


def run_cli(prog: str, body: Callable[[list[str]], int], argv: list[str] | None = None) -> int:
    try:
        return body(sys.argv[1:] if argv is None else argv)
    except SofieError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug in sofie, not in the user's input
        if os.environ.get("SOFIE_DEBUG"):
            traceback.print_exc()
        print(f"{prog}: internal error: {type(e).__name__}: {e} (set SOFIE_DEBUG=1 for a traceback; "
              f"please report it)", file=sys.stderr)
        return 3


def passes_help() -> str:
    """The passes in the order the default pipeline runs them (then the others), for --help."""
    width = max(len(n) for n, _ in passes_in_run_order())
    lines = [f"  {n:<{width}}  {cls.summary}" for n, cls in passes_in_run_order()]
    return ("passes, in the order they run:\n" + "\n".join(lines)
            + "\n\ndefault pipeline (--pass-pipeline=default):\n  " + ",".join(DEFAULT_PIPELINE))
