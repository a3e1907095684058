"""Step 4: the results by op, as markdown and JSON, and the README section."""

from __future__ import annotations

import json
import os
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass

from sofie.readme import markers, replace_section

PASSED, WRONG, RUN_ERROR, BUILD_ERROR, CRASH, REFUSED = (
    "passed", "wrong result", "run error", "build error", "crash", "refused")
FAILED = (WRONG, RUN_ERROR, BUILD_ERROR, CRASH)  # everything but passed and refused
README_BEGIN, README_END = markers("conformance")


@dataclass
class Result:
    name: str
    op: str
    status: str   # one of the six above
    reason: str = ""
    bound: bool = False  # ran with its shape inputs bound as constants (binding.py)


def totals(results: list[Result]) -> tuple[int, int, int]:
    """(passed, failed, refused)."""
    c = Counter(r.status for r in results)
    return c[PASSED], sum(c[s] for s in FAILED), c[REFUSED]


def summary_line(results: list[Result]) -> str:
    p, f, k = totals(results)
    bound = sum(r.status == PASSED and r.bound for r in results)
    return f"{p} passed ({p - bound} as given, {bound} with shape inputs bound as constants), {f} failed, {k} refused"


def by_op(results: list[Result]) -> dict[str, Counter]:
    table: dict[str, Counter] = defaultdict(Counter)
    for r in results:
        table[r.op][r.status] += 1
    return dict(sorted(table.items()))


def _op_table(results: list[Result]) -> list[str]:
    lines = ["| op | tests | passed | failed | refused |", "|---|---:|---:|---:|---:|"]
    for op, c in by_op(results).items():
        failed = sum(c[s] for s in FAILED)
        lines.append(f"| {op} | {sum(c.values())} | {c[PASSED]} | {failed} | {c[REFUSED]} |")
    return lines


def markdown(results: list[Result], timings: dict[str, float]) -> str:
    lines = ["# ONNX node-test conformance", "", f"**{summary_line(results)}** of {len(results)} tests.", "",
             "Phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()), "", "## By op", ""]
    lines += _op_table(results)
    lines += ["", "## Most common reasons", "", "| tests | category | reason |", "|---:|---|---|"]
    common = Counter((r.status, _generic(r.reason)) for r in results if r.status != PASSED)
    lines += [f"| {n} | {status} | {_cell(reason)} |" for (status, reason), n in common.most_common(25)]
    lines += ["", "## Tests not passing", "", "| test | op | category | reason |", "|---|---|---|---|"]
    for r in sorted(results, key=lambda r: (r.op, r.name)):
        if r.status != PASSED:
            lines.append(f"| {r.name} | {r.op} | {r.status} | {_cell(r.reason)} |")
    return "\n".join(lines) + "\n"


def _generic(reason: str) -> str:
    """A reason without its node's name and opset, so that the tests of one cause count together."""
    return re.sub(r", opset \d+", "", re.sub(r"node '[^']*'", "node", reason))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_reports(results: list[Result], timings: dict[str, float], folder: str) -> tuple[str, str]:
    os.makedirs(folder, exist_ok=True)
    md, js = os.path.join(folder, "report.md"), os.path.join(folder, "report.json")
    with open(md, "w") as f:
        f.write(markdown(results, timings))
    p, failed, k = totals(results)
    with open(js, "w") as f:
        json.dump({"passed": p, "failed": failed, "refused": k, "total": len(results), "timings": timings,
                   "by_op": {op: dict(c) for op, c in by_op(results).items()},
                   "tests": [asdict(r) for r in results]}, f, indent=1)
    return md, js


def readme_section(results: list[Result], total_tests: int) -> str:
    p, _, _ = totals(results)
    given = p - sum(r.status == PASSED and r.bound for r in results)
    lines = [f"**{p} of {total_tests}** ONNX node tests pass, **{given}** of them as given ({summary_line(results)}; "
             f"`python -m sofie.conformance --readme` reruns them and rewrites this section). A test that feeds "
             f"a shape operand (axes, target shape, pads, scales) as a graph input is run again with that input "
             f"bound as a constant, as exported models carry it (sofie/conformance/binding.py).", "",
             "<details><summary>By op</summary>", ""]
    lines += _op_table(results)
    return "\n".join(lines + ["", "</details>"])


def update_readme(path: str, section: str) -> None:
    """Replaces the conformance section of the README (appended with a heading when absent)."""
    replace_section(path, "conformance", section, "ONNX conformance")
