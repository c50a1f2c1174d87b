"""The numba ASCII number parser against Python's own float parser."""
from __future__ import annotations

import numpy as np
import pytest

from v2xdet.data_utils.formats.pcd_ascii import parse_ascii_numbers


def python_floats(text: bytes) -> np.ndarray:
    return np.array([float(t) for t in text.split()])


def test_plain_forms_match_python_exactly():
    text = (b"0 1 -1 +1 1.5 -0.0 .5 5. 007 1e5 1E+05 1e-5 -2.5e-3 nan NaN -inf INF 123456789012345 "
            b"0.000000000000000000000001234 1e400 -1e-400\n\t3.25\r\n")
    values, count = parse_ascii_numbers(text, 30)
    expected = python_floats(text)
    assert count == expected.size
    np.testing.assert_array_equal(values[:count], expected)  # nan == nan for assert_array_equal
    assert np.signbit(values[5])  # -0.0 keeps its sign


@pytest.mark.parametrize("fmt", ["%.9g", "%.10g", "%.15g", "%.6f", "%.8e"])
def test_formatted_floats_are_correctly_rounded(fmt):
    rng = np.random.default_rng(11)
    raw = np.concatenate([rng.uniform(-150, 150, 3000), rng.normal(0, 1e-4, 500),
                          rng.uniform(-1e6, 1e6, 500)]).astype(np.float32)
    raw = raw[np.abs(raw) > 1e-6]  # decimal exponents within +-22: the exact range
    text = "\n".join(fmt % v for v in raw.tolist()).encode()
    values, count = parse_ascii_numbers(text, raw.size)
    assert count == raw.size
    np.testing.assert_array_equal(values, python_floats(text))
    if fmt in ("%.9g", "%.10g"):  # enough digits to recover the float32 exactly
        np.testing.assert_array_equal(values.astype(np.float32), raw)


def test_extreme_exponents_within_two_ulps():
    """17-digit reprs over the whole exponent range: relative error below 5e-16."""
    rng = np.random.default_rng(12)
    raw = rng.uniform(1, 10, 2000) * 10.0 ** rng.integers(-307, 308, 2000)
    text = " ".join(repr(v) for v in raw.tolist()).encode()
    values, count = parse_ascii_numbers(text, raw.size)
    assert count == raw.size
    assert np.all(np.abs(values - raw) <= 5e-16 * raw)


def test_counts_tokens_beyond_the_expected_number():
    values, count = parse_ascii_numbers(b"1 2 3 4 5", 3)
    assert count == 5 and values.tolist() == [1, 2, 3]
    values, count = parse_ascii_numbers(b"1 2", 3)
    assert count == 2


@pytest.mark.parametrize("token", [b"three", b"1e", b"1.2.3", b"-", b".", b"0x10", b"1_000",
                                   b"1234567890123456789", b"nanx", b"5-"])
def test_gives_up_on_tokens_it_does_not_take(token):
    assert parse_ascii_numbers(b"1 2 " + token + b" 4", 4) is None
