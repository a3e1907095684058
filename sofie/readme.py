"""Sections of the README that a command regenerates (the conformance figure, the benchmark
table): each sits between `<!-- NAME:begin -->` and `<!-- NAME:end -->` markers, so a rerun
replaces it in place and leaves the hand-written text around it alone."""

from __future__ import annotations


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def replace_section(path: str, name: str, body: str, heading: str) -> None:
    """Puts `body` between the markers of `name` in the file at `path`; a file without them gets
    the section appended under `heading`."""
    begin, end = markers(name)
    section = f"{begin}\n{body.strip()}\n{end}"
    with open(path) as f:
        text = f.read()
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + f"\n\n## {heading}\n\n{section}\n"
    with open(path, "w") as f:
        f.write(text)
