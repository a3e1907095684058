"""bench/run.py's options: the model subsets, and the paths CMake is given."""

from __future__ import annotations

import os

import pytest

from bench.models import DEFAULT, GROUPS, MODELS, QUICK
from bench.run import _parse


def test_model_sets() -> None:
    assert _parse([]).names == DEFAULT
    assert _parse(["--quick"]).names == QUICK
    assert _parse(["--models", "rnn,lstm"]).names == ["rnn", "lstm"]
    assert all(n in MODELS for names in GROUPS.values() for n in names)
    assert set(QUICK) <= set(DEFAULT)


def test_unknown_model_is_refused(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        _parse(["--models", "rnn,resnet1000"])
    assert e.value.code == 2
    assert "unknown model(s) resnet1000" in capsys.readouterr().err


def test_out_is_absolute(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert _parse(["--out", "build/bench"]).out == os.path.join(str(tmp_path), "build", "bench")
