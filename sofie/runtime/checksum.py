"""Payload checksum of sofie weights files.

Bit-identical twin of ``sofie::rt::checksum`` in sofie_rt/weights.hxx:

    h = fmix64(sum_i fmix64(word_i ^ (i + 1) * K1)  ^  n * K2)   (mod 2**64)

where word_i are the little-endian uint64 words of the data, the last one
zero-padded. A sum of independently mixed words (instead of a chained state)
is what lets numpy vectorize it.
"""

from __future__ import annotations

import numpy as np

_INDEX_MUL = np.uint64(0x9E3779B97F4A7C15)
_LENGTH_MUL = 0xC2B2AE3D27D4EB4F
_FMIX_1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX_2 = np.uint64(0xC4CEB9FE1A85EC53)
_SHIFT = np.uint64(33)
_MASK = (1 << 64) - 1

# Bounds the temporaries to a few MB whatever the file size.
_CHUNK_WORDS = 1 << 20


def _fmix64_inplace(x: np.ndarray) -> np.ndarray:
    x ^= x >> _SHIFT
    x *= _FMIX_1
    x ^= x >> _SHIFT
    x *= _FMIX_2
    x ^= x >> _SHIFT
    return x


def _fmix64_int(x: int) -> int:
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & _MASK
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & _MASK
    x ^= x >> 33
    return x


def checksum(data: bytes) -> int:
    buf = memoryview(data).cast("B")
    n = len(buf)
    n_words = (n + 7) // 8
    total = 0
    with np.errstate(over="ignore"):
        for start in range(0, n_words, _CHUNK_WORDS):
            stop = min(start + _CHUNK_WORDS, n_words)
            raw = bytes(buf[8 * start : min(8 * stop, n)])
            if len(raw) % 8:
                raw += b"\0" * (8 - len(raw) % 8)
            words = np.frombuffer(raw, dtype="<u8").astype(np.uint64)
            keys = np.arange(start + 1, stop + 1, dtype=np.uint64)
            keys *= _INDEX_MUL
            words ^= keys
            total += int(_fmix64_inplace(words).sum(dtype=np.uint64))
    total &= _MASK
    return _fmix64_int(total ^ ((n * _LENGTH_MUL) & _MASK))
