"""Sequence layers: SimpleRNN, GRU, LSTM and Bidirectional (filled in below)."""

from __future__ import annotations

CONVERTERS: dict = {}
