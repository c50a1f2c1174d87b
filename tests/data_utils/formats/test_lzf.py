"""LZF codec: hand-made streams decode as liblzf specifies, round trips, corrupt streams refused."""
from __future__ import annotations

import numpy as np
import pytest

from v2xdet.data_utils.formats.lzf import lzf_compress, lzf_decompress


def test_decodes_hand_made_stream():
    # literal run "abc" (control 2 = 3 bytes), then a back reference of length 6 at distance 3
    # (control (6-2)<<5 = 0x80, offset byte 2 = distance - 1): an overlapping copy.
    stream = b"\x02abc\x80\x02"
    assert lzf_decompress(stream, 9).tobytes() == b"abcabcabc"
    # long reference: (7<<5), extra length byte 3 -> length 7 + 3 + 2 = 12, distance 1
    assert lzf_decompress(b"\x00z\xe0\x03\x00", 13).tobytes() == b"z" * 13


def _inputs():
    rng = np.random.default_rng(3)
    yield b""
    yield b"q"
    yield b"ab"
    yield b"x" * 1000  # runs longer than the 264-byte maximum match
    yield rng.integers(0, 256, 5000, dtype=np.uint8).tobytes()  # incompressible: literals only
    yield rng.integers(0, 3, 20000, dtype=np.uint8).tobytes()
    # a repeat at distance just below and just above the 8192-byte window
    block = rng.integers(0, 256, 8190, dtype=np.uint8).tobytes()
    yield block + block + rng.integers(0, 256, 9000, dtype=np.uint8).tobytes() + block
    yield rng.normal(size=3000).astype(np.float32).tobytes()


@pytest.mark.parametrize("data", list(_inputs()), ids=lambda d: f"{len(d)}B")
def test_round_trip(data):
    packed = lzf_compress(data)
    assert lzf_decompress(packed, len(data)).tobytes() == data
    assert len(packed) <= len(data) + len(data) // 32 + 1


def test_compresses_redundant_data():
    data = np.tile(np.arange(50, dtype=np.uint8), 400).tobytes()
    assert len(lzf_compress(data)) < len(data) // 20


@pytest.mark.parametrize("stream, size, message", [
    (b"\x02abc\x80\x02", 8, "more than"),           # decodes past the announced size
    (b"\x02abc\x80\x02", 10, "decodes to 9"),       # decodes to fewer bytes
    (b"\x02ab", 3, "corrupt"),                      # literal run cut short
    (b"\x00a\x80\x05", 7, "corrupt"),               # reference before the start of the output
    (b"\x00a\xe0", 20, "corrupt"),                  # long reference without its length byte
])
def test_corrupt_streams_are_refused(stream, size, message):
    with pytest.raises(ValueError, match=message):
        lzf_decompress(stream, size)
