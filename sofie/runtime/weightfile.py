"""Writer for sofie weights files (.dat); the reader is sofie::rt::WeightFile.

Layout (little-endian): a 64-byte header
    magic "SOFIEDAT" | u32 version | u32 n_tensors | u64 payload_bytes
    | u64 checksum(payload) | u64 fingerprint | zero padding
followed by the payload, each blob at a 64-byte aligned payload offset.
"""

from __future__ import annotations

import struct

from .checksum import checksum

MAGIC = b"SOFIEDAT"
VERSION = 1
HEADER_BYTES = 64
ALIGNMENT = 64

_HEADER = struct.Struct("<8sIIQQQ")


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def layout(sizes: list[int]) -> tuple[list[int], int]:
    """Payload offsets of blobs of the given byte sizes, and the payload size.

    Exposed so the compiler can emit offsets without building the payload.
    """
    offsets = []
    end = 0
    for size in sizes:
        offset = _align(end)
        offsets.append(offset)
        end = offset + size
    return offsets, _align(end)


def write_weights(path: str, blobs: list[bytes], fingerprint: int) -> list[int]:
    """Write ``blobs`` to ``path``; return each blob's payload byte offset."""
    views = [memoryview(b).cast("B") for b in blobs]
    offsets, payload_bytes = layout([len(v) for v in views])
    payload = bytearray(payload_bytes)
    for offset, view in zip(offsets, views):
        payload[offset : offset + len(view)] = view
    header = _HEADER.pack(
        MAGIC, VERSION, len(views), payload_bytes, checksum(payload), fingerprint & (2**64 - 1)
    )
    with open(path, "wb") as f:
        f.write(header.ljust(HEADER_BYTES, b"\0"))
        f.write(payload)
    return offsets
