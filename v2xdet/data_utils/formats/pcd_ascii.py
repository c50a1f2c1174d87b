"""Fast parsing of the ASCII number table of a PCD body (V2XSet ships every sweep as ASCII PCD).

A numba byte loop reads whitespace-separated decimals into float64: the digits go into an int64
mantissa and the value is ``mantissa * 10**exp``. With at most 15 significant digits and
``|exp| <= 22`` (the coordinates PCL / OpenCDA write) both factors are exact in float64, so the
product (or quotient) is the correctly rounded value, as ``strtod`` gives. Beyond that (the
``e-38`` of packed ``rgb`` floats, 17-digit doubles) the power of ten is correctly rounded and the
relative error stays below 5e-16 (about two float64 ulps), far below the float32 resolution the
reader returns. Tokens it does not take (more than 18 significant digits, ``1_000``, words) make
it give up, and the caller falls back to Python's own float parser.
"""
from __future__ import annotations

import numba
import numpy as np

_MIN_EXP, _MAX_EXP = -340, 310
_POW10 = np.array([float(f"1e{k}") for k in range(_MIN_EXP, _MAX_EXP + 1)])  # correctly rounded
_MAX_DIGITS = 18  # an 18-digit mantissa fits an int64
_EXACT_DIGITS = 15  # below 2**53


@numba.njit(cache=True, nogil=True)
def _is_space(c):
    return c == 32 or c == 10 or c == 13 or c == 9


@numba.njit(cache=True, nogil=True)
def _scale(mantissa, exp, pow10):
    """``mantissa * 10**exp``: exact inputs for |exp| <= 22, else one correctly rounded power."""
    value = float(mantissa)
    if exp > _MAX_EXP:
        return np.inf
    if exp < _MIN_EXP:
        return 0.0
    if 0 <= exp <= 22:
        return value * pow10[exp - _MIN_EXP]
    if -22 <= exp < 0:
        return value / pow10[-exp - _MIN_EXP]
    if exp < -290:  # keep the power normal; the product may still go subnormal, as strtod's would
        return value * pow10[exp + 30 - _MIN_EXP] * pow10[-30 - _MIN_EXP]
    return value * pow10[exp - _MIN_EXP]


@numba.njit(cache=True, nogil=True)
def _parse(buf, out, pow10):
    """Parse ``buf`` into ``out``; return the token count (values beyond ``out`` are counted,
    not stored), or -1 when a token is not a plain decimal / nan / inf."""
    n = buf.shape[0]
    i = 0
    count = 0
    while True:
        while i < n and _is_space(buf[i]):
            i += 1
        if i >= n:
            return count
        sign = 1.0
        if buf[i] == 45 or buf[i] == 43:  # '-' '+'
            if buf[i] == 45:
                sign = -1.0
            i += 1
        mantissa = 0
        digits = 0  # significant digits kept in the mantissa
        exp = 0
        seen = False
        while i < n and 48 <= buf[i] <= 57:
            if mantissa > 0 or buf[i] != 48:
                if digits == _MAX_DIGITS:
                    return -1
                mantissa = mantissa * 10 + (buf[i] - 48)
                digits += 1
            seen = True
            i += 1
        if i < n and buf[i] == 46:  # '.'
            i += 1
            while i < n and 48 <= buf[i] <= 57:
                if mantissa > 0 or buf[i] != 48:
                    if digits == _MAX_DIGITS:
                        return -1
                    mantissa = mantissa * 10 + (buf[i] - 48)
                    digits += 1
                exp -= 1
                seen = True
                i += 1
        if not seen:
            # nan / inf, any case
            word = 0
            start = i
            while i < n and not _is_space(buf[i]):
                i += 1
            length = i - start
            if length == 3:
                word = (buf[start] | 32) * 65536 + (buf[start + 1] | 32) * 256 + (buf[start + 2] | 32)
            if word == 110 * 65536 + 97 * 256 + 110:  # nan
                value = np.nan
            elif word == 105 * 65536 + 110 * 256 + 102:  # inf
                value = sign * np.inf
            else:
                return -1
            if count < out.shape[0]:
                out[count] = value
            count += 1
            continue
        if i < n and (buf[i] == 101 or buf[i] == 69):  # 'e' 'E'
            i += 1
            esign = 1
            if i < n and (buf[i] == 45 or buf[i] == 43):
                if buf[i] == 45:
                    esign = -1
                i += 1
            if i >= n or not (48 <= buf[i] <= 57):
                return -1
            e = 0
            while i < n and 48 <= buf[i] <= 57:
                if e < 100000:
                    e = e * 10 + (buf[i] - 48)
                i += 1
            exp += esign * e
        if i < n and not _is_space(buf[i]):
            return -1
        if count < out.shape[0]:
            out[count] = sign * _scale(mantissa, exp, pow10) if mantissa else sign * 0.0
        count += 1


def parse_ascii_numbers(body: bytes, expected: int) -> tuple[np.ndarray, int] | None:
    """``(values[:expected], token count)`` of the whitespace-separated numbers in ``body``,
    or ``None`` if a token needs Python's general float parser."""
    out = np.empty(expected, dtype=np.float64)
    count = _parse(np.frombuffer(body, dtype=np.uint8), out, _POW10)
    if count < 0:
        return None
    return out, count
