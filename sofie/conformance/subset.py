"""The CI subset: a few passing node tests per op sofie supports, as a checked-in list.

`python -m sofie.conformance --pick-subset tests/conformance/node_subset.txt` runs the suite and
rewrites the list; ops with no passing test are listed as `# uncovered: Op: reason` so the CI
test can tell an op left out on purpose from one forgotten."""

from __future__ import annotations

from collections import Counter, defaultdict

from sofie.conformance.report import PASSED, Result

PER_OP = 2  # ~120 ops: about 240 tests, a minute and a half of g++ on one core
_UNCOVERED = "# uncovered: "


def pick_subset(results: list[Result], supported: list[str], per_op: int = PER_OP) -> str:
    """Up to `per_op` passing tests per op, spread over the op's tests in name order."""
    passing: dict[str, list[str]] = defaultdict(list)
    reasons: dict[str, Counter] = defaultdict(Counter)
    for r in sorted(results, key=lambda r: r.name):
        if r.status == PASSED:
            passing[r.op].append(r.name)
        else:
            reasons[r.op][f"{r.status}: {r.reason}"] += 1
    lines = ["# Node tests the CI runs (tests/conformance/test_node_subset.py); written by",
             "# python -m sofie.conformance --pick-subset tests/conformance/node_subset.txt"]
    for op in sorted(set(supported) | set(passing)):
        names = passing.get(op, [])
        if not names:
            why = reasons[op].most_common(1)[0][0] if reasons[op] else "no node test is about it"
            lines.append(f"{_UNCOVERED}{op}: {why}")
            continue
        step = max(1, len(names) // per_op)
        lines += names[::step][:per_op]
    return "\n".join(lines) + "\n"


def read_subset(path: str) -> tuple[list[str], set[str]]:
    """(test names, ops declared uncovered)."""
    names, uncovered = [], set()
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith(_UNCOVERED):
                uncovered.add(line[len(_UNCOVERED):].split(":", 1)[0])
            elif line and not line.startswith("#"):
                names.append(line)
    return names, uncovered
