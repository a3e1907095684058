"""A progress bar for long jobs (the conformance phases, the benchmark builds), on stderr.

On a terminal it redraws one line, `\\r[#######         ] 12/60 build`; into a file or a pipe (a
CI log) it writes a plain line each time another `every` percent is done, so a log shows that
the job advances without thousands of carriage returns; `every=0` writes nothing there. No
dependency: the lowest layer, importable from every other.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")

WIDTH = 30  # characters between the brackets


def bar(done: int, total: int, label: str, width: int = WIDTH) -> str:
    """'[#####          ] 12/60 build' (a total of 0 draws a full bar)."""
    filled = width if total <= 0 else min(width, done * width // total)
    return f"[{'#' * filled}{' ' * (width - filled)}] {done}/{total} {label}"


class Progress:
    """Counts `total` steps of a job named `label`; `advance` after each, `close` at the end
    (or use it as a context manager). `quiet` writes nothing: a library call's default, so
    that only the command line tools draw bars."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None, every: int = 25,
                 quiet: bool = False) -> None:
        self.total, self.label, self.done = total, label, 0
        self.stream = sys.stderr if stream is None else stream
        self.every = 0 if quiet else every
        isatty = getattr(self.stream, "isatty", None)
        self.tty = not quiet and bool(isatty and isatty())
        self._next_line = every  # percent at which the next plain line is due
        self._closed = False
        self._show()

    def advance(self, n: int = 1) -> None:
        self.done = min(self.total, self.done + n) if self.total > 0 else self.done + n
        self._show()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.tty:
            self.stream.write("\n")  # keep the finished bar; the next output starts below it
            self.stream.flush()

    def _show(self) -> None:
        if self.tty:
            self.stream.write("\r" + bar(self.done, self.total, self.label))
            self.stream.flush()
            return
        if self.every <= 0 or self.total <= 0:
            return
        percent = self.done * 100 // self.total
        if percent >= self._next_line and self.done > 0:
            self.stream.write(f"{self.label}: {self.done}/{self.total} ({percent}%)\n")
            self.stream.flush()
            self._next_line = (percent // self.every + 1) * self.every

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def track(items: Iterable[T], total: int, label: str, stream: TextIO | None = None, every: int = 25,
          quiet: bool = False) -> Iterator[T]:
    """Yields `items`, advancing a bar of `total` steps after each one."""
    with Progress(total, label, stream, every, quiet) as p:
        for item in items:
            yield item
            p.advance()
