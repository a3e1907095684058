"""sofie.progress: a redrawn bar on a terminal, sparse plain lines in a log, nothing when quiet."""

import io

from sofie.progress import Progress, bar, track


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_fills_in_proportion():
    assert bar(0, 4, "build", width=8) == "[        ] 0/4 build"
    assert bar(3, 12, "build", width=8) == "[##      ] 3/12 build"
    assert bar(12, 12, "build", width=8) == "[########] 12/12 build"
    assert bar(0, 0, "nothing", width=4) == "[####] 0/0 nothing"


def test_terminal_redraws_one_line_and_ends_it():
    out = FakeTTY()
    assert list(track(range(3), 3, "run", stream=out)) == [0, 1, 2]
    text = out.getvalue()
    frames = text.split("\r")[1:]
    assert [f.split("] ")[1].strip() for f in frames] == ["0/3 run", "1/3 run", "2/3 run", "3/3 run"]
    assert text.endswith("3/3 run\n") and text.count("\n") == 1


def test_log_gets_a_line_every_quarter():
    out = io.StringIO()
    with Progress(8, "import", stream=out) as p:
        for _ in range(8):
            p.advance()
    assert out.getvalue().splitlines() == ["import: 2/8 (25%)", "import: 4/8 (50%)", "import: 6/8 (75%)",
                                           "import: 8/8 (100%)"]
    assert "\r" not in out.getvalue()


def test_quiet_writes_nothing_even_on_a_terminal():
    out = FakeTTY()
    list(track(range(5), 5, "build", stream=out, quiet=True))
    assert out.getvalue() == ""
