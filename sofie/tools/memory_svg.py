"""The memory plan as a picture (`sofie-compile --stats` writes NAME.memory.svg).

Time runs left to right (one column per kernel, in program order), arena bytes top to bottom.
Each buffer is a rectangle from the first kernel touching it to the last (an output's runs to
the end: the caller reads it), at its offset, as tall as its bytes, all at batch 1 (every dim
symbol 1, the figures `--stats` reports). A buffer a kernel writes over its dying input (the
in-place reuse kernels declare) is hatched and names that input. Hand-written SVG: no plotting
library needed. Each rectangle carries its numbers as data- attributes, for tools and tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from sofie.ir.core import Function
from sofie.ir.liveness import inplace_pairs, is_kernel, live_ranges, size_bytes

WIDTH = 900      # plot area, pixels
HEIGHT = 480
MARGIN = 60      # room for the axes' labels
COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"]


@dataclass
class Span:
    """One planned buffer: bytes [offset, offset + size) live over kernels [first, last]."""

    name: str
    offset: int
    size: int
    first: int          # kernel number (0 = the first kernel)
    last: int
    in_place_of: str | None = None  # the input this buffer's writer overwrote in place


def _at_one(coefficients: list[int]) -> int:
    return sum(coefficients)  # every term a product of symbols, each 1


def spans(f: Function) -> list[Span]:
    """The planned buffers of `f` (after plan-memory), in the order they come alive."""
    kernel_no: dict[int, int] = {}
    for i, op in enumerate(f.ops):
        if is_kernel(op):
            kernel_no[i] = len(kernel_no)
    last_kernel = max(len(kernel_no) - 1, 0)
    ranges = live_ranges(f)
    offsets = {k: _at_one(r.root.owner.attrs["offset"]) for k, r in ranges.items()}
    # a pair the kernels declare in-place shares bytes only when the plan placed it so
    # (plan-memory-no-reuse gives each its own)
    in_place: dict[int, int] = {}
    for pair in inplace_pairs(f, ranges):
        a, b = sorted(pair, key=lambda k: ranges[k].start)
        if offsets[a] == offsets[b]:
            in_place[b] = a
    out = []
    for k, r in sorted(ranges.items(), key=lambda kv: (kv[1].start, offsets[kv[0]])):
        src = in_place.get(k)
        out.append(Span(r.root.name or "?", offsets[k], size_bytes(r.root)[1],
                        kernel_no.get(r.start, 0), kernel_no.get(r.end, last_kernel),
                        None if src is None else ranges[src].root.name or "?"))
    return out


def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def memory_svg(f: Function, title: str = "") -> str:
    """An SVG of the plan of `f`: one <rect class="buffer"> per buffer."""
    items = spans(f)
    columns = max([s.last + 1 for s in items] + [1])
    arena = max([s.offset + s.size for s in items] + [1])
    x_px, y_px = WIDTH / columns, HEIGHT / arena
    w, h = WIDTH + 2 * MARGIN, HEIGHT + 2 * MARGIN
    heading = f"{title or f.name}: arena {_fmt_bytes(arena)} at batch 1, {len(items)} buffers, {columns} kernels"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
           f'font-family="Helvetica, sans-serif" font-size="11">',
           "<defs>",
           '<pattern id="inplace" patternUnits="userSpaceOnUse" width="6" height="6" patternTransform="rotate(45)">'
           '<rect width="6" height="6" fill="#ffffff" fill-opacity="0.0"/>'
           '<line x1="0" y1="0" x2="0" y2="6" stroke="#000000" stroke-width="2" stroke-opacity="0.45"/></pattern>',
           "</defs>",
           f'<text x="{MARGIN}" y="{MARGIN / 2:.0f}" font-size="14">{escape(heading)}</text>',
           f'<rect x="{MARGIN}" y="{MARGIN}" width="{WIDTH}" height="{HEIGHT}" fill="#f7f7f7" stroke="#999999"/>',
           f'<text x="{MARGIN + WIDTH / 2:.0f}" y="{h - 15}" text-anchor="middle">kernel (program order)</text>',
           f'<text x="15" y="{MARGIN + HEIGHT / 2:.0f}" transform="rotate(-90 15 {MARGIN + HEIGHT / 2:.0f})" '
           f'text-anchor="middle">arena offset (bytes, batch 1)</text>',
           f'<text x="{MARGIN - 4}" y="{MARGIN + 4}" text-anchor="end">0</text>',
           f'<text x="{MARGIN - 4}" y="{MARGIN + HEIGHT}" text-anchor="end">{escape(_fmt_bytes(arena))}</text>',
           f'<text x="{MARGIN}" y="{MARGIN + HEIGHT + 14}">0</text>',
           f'<text x="{MARGIN + WIDTH}" y="{MARGIN + HEIGHT + 14}" text-anchor="end">{columns - 1}</text>']
    for n, s in enumerate(items):
        x, y = MARGIN + s.first * x_px, MARGIN + s.offset * y_px
        rw, rh = (s.last + 1 - s.first) * x_px, max(s.size * y_px, 0.5)
        note = f" (in place of {s.in_place_of})" if s.in_place_of else ""
        tip = f"{s.name}{note}: {s.size} bytes at offset {s.offset}, kernels {s.first}-{s.last}"
        data = (f'data-name="{escape(s.name)}" data-offset="{s.offset}" data-size="{s.size}" '
                f'data-first="{s.first}" data-last="{s.last}"')
        cls = "buffer inplace" if s.in_place_of else "buffer"
        if s.in_place_of:
            data += f' data-in-place-of="{escape(s.in_place_of)}"'
        out.append(f'<rect class="{cls}" {data} x="{x:.2f}" y="{y:.2f}" width="{rw:.2f}" height="{rh:.2f}" '
                   f'fill="{COLORS[n % len(COLORS)]}" fill-opacity="0.8" stroke="#333333" stroke-width="0.5">'
                   f"<title>{escape(tip)}</title></rect>")
        if s.in_place_of:  # the hatching over the colour: the same bytes, overwritten in place
            out.append(f'<rect class="hatch" x="{x:.2f}" y="{y:.2f}" width="{rw:.2f}" height="{rh:.2f}" '
                       f'fill="url(#inplace)" pointer-events="none"/>')
        if rh >= 12 and rw >= 7 * len(s.name + note):
            out.append(f'<text x="{x + 3:.2f}" y="{y + 11:.2f}" fill="#ffffff">{escape(s.name + note)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
