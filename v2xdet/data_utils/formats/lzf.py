"""LZF (liblzf) compression, the codec of PCD's ``DATA binary_compressed``, as numba byte loops.

The stream is a sequence of chunks, each starting with a control byte ``c``:

* ``c < 32``: a literal run, the next ``c + 1`` bytes are copied as they are;
* otherwise a back reference: length ``(c >> 5) + 2`` (when ``c >> 5 == 7`` one more byte is
  added to the length), distance ``((c & 31) << 8) + next_byte + 1`` back into the output;
  the copy may overlap itself (a run), so it goes byte by byte.

The compressor is a greedy hash-chain-free LZF encoder (one hash slot per 3-byte prefix, as
liblzf does); its output is decoded by any LZF decoder (PCL, open3d, this module).
"""
from __future__ import annotations

import numba
import numpy as np

_MAX_LITERAL = 32
_MAX_OFFSET = 1 << 13
_MAX_MATCH = (1 << 8) + (1 << 3)  # 264: 7 + 255 encoded, plus the implicit 2
_HASH_BITS = 16


@numba.njit(cache=True, nogil=True)
def _decompress(src, out):
    """Decode ``src`` into ``out``; return bytes written, or -1 (overflow) / -2 (bad stream)."""
    ip = 0
    op = 0
    n_in = src.shape[0]
    n_out = out.shape[0]
    while ip < n_in:
        ctrl = np.int64(src[ip])
        ip += 1
        if ctrl < 32:
            run = ctrl + 1
            if op + run > n_out:
                return -1
            if ip + run > n_in:
                return -2
            out[op:op + run] = src[ip:ip + run]
            op += run
            ip += run
        else:
            length = ctrl >> 5
            if length == 7:
                if ip >= n_in:
                    return -2
                length += np.int64(src[ip])
                ip += 1
            if ip >= n_in:
                return -2
            ref = op - ((ctrl & 31) << 8) - 1 - np.int64(src[ip])
            ip += 1
            length += 2
            if op + length > n_out:
                return -1
            if ref < 0:
                return -2
            for k in range(length):
                out[op + k] = out[ref + k]
            op += length
    return op


@numba.njit(cache=True, nogil=True)
def _hash(src, i):
    v = (np.int64(src[i]) << 16) | (np.int64(src[i + 1]) << 8) | np.int64(src[i + 2])
    return ((v * 2654435761) >> (24 - _HASH_BITS + 8)) & ((1 << _HASH_BITS) - 1)


@numba.njit(cache=True, nogil=True)
def _compress(src, out):
    """Encode ``src`` into ``out`` (sized for the worst case); return the bytes written."""
    n = src.shape[0]
    table = np.full(1 << _HASH_BITS, -1, dtype=np.int64)
    op = 0
    lit_start = 0  # start (in src) of the pending literal run
    i = 0
    while i + 2 < n:
        h = _hash(src, i)
        ref = table[h]
        table[h] = i
        off = i - ref - 1
        if (ref >= 0 and off < _MAX_OFFSET and src[ref] == src[i] and src[ref + 1] == src[i + 1]
                and src[ref + 2] == src[i + 2]):
            length = 3
            max_len = min(_MAX_MATCH, n - i)
            while length < max_len and src[ref + length] == src[i + length]:
                length += 1
            # flush the pending literals, at most 32 per control byte
            while lit_start < i:
                run = min(_MAX_LITERAL, i - lit_start)
                out[op] = run - 1
                out[op + 1:op + 1 + run] = src[lit_start:lit_start + run]
                op += run + 1
                lit_start += run
            enc = length - 2
            if enc < 7:
                out[op] = (enc << 5) | (off >> 8)
                op += 1
            else:
                out[op] = (7 << 5) | (off >> 8)
                out[op + 1] = enc - 7
                op += 2
            out[op] = off & 255
            op += 1
            # index the positions inside the match so later data can refer to them
            for j in range(i + 1, min(i + length, n - 2)):
                table[_hash(src, j)] = j
            i += length
            lit_start = i
        else:
            i += 1
    while lit_start < n:
        run = min(_MAX_LITERAL, n - lit_start)
        out[op] = run - 1
        out[op + 1:op + 1 + run] = src[lit_start:lit_start + run]
        op += run + 1
        lit_start += run
    return op


def lzf_compress(data: bytes | np.ndarray) -> bytes:
    """LZF-compress ``data``; the worst case grows by one byte per 32 (all literals)."""
    src = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    out = np.empty(src.size + src.size // _MAX_LITERAL + 1, dtype=np.uint8)
    n = _compress(src, out)
    return out[:n].tobytes()


def lzf_decompress(data: bytes | np.ndarray, size: int) -> np.ndarray:
    """Decode LZF ``data`` into exactly ``size`` bytes (uint8 array).

    Raises ``ValueError`` if the stream is corrupt, overflows ``size`` or decodes to fewer bytes.
    """
    src = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    out = np.empty(size, dtype=np.uint8)
    n = _decompress(src, out)
    if n == -1:
        raise ValueError(f"LZF stream decodes to more than the {size} bytes announced")
    if n == -2:
        raise ValueError("corrupt LZF stream (back reference before the start, or cut short)")
    if n != size:
        raise ValueError(f"LZF stream decodes to {n} bytes, {size} announced")
    return out
