"""Runs the FileCheck tests of this folder through lit, so pytest covers them."""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def test_filecheck_suite() -> None:
    lit = os.path.join(os.path.dirname(sys.executable), "lit")
    r = subprocess.run([lit, "-v", HERE], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-8000:] + r.stderr[-4000:]
