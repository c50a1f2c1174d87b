"""PCD point clouds (PCL's format, as V2XSet / OPV2V store LiDAR sweeps) to and from ``(N, 4)``.

``read_pcd`` returns float32 ``[x, y, z, intensity]`` rows. The intensity is the ``intensity``
field when the file has one, else the red byte of the packed ``rgb`` float divided by 255: V2XSet
and OPV2V are written by OpenCDA with ``FIELDS x y z rgb`` and the intensity in the red byte, and
OpenCOOD reads it back as open3d's ``colors[:, 0]``. A file with neither field gets intensity 0.

Unlike ``open3d.io.read_point_cloud`` (which pads a truncated file with zeros and returns an empty
cloud for a missing or garbage one, with only a warning), every inconsistency is a
:class:`FormatError` naming the file.

Non-finite points: open3d (and so OpenCOOD) keeps NaN / inf points by default and OpenCOOD's range
crop then drops them, because every comparison with NaN is false. ``read_pcd`` drops rows with a
non-finite value up front (``drop_nonfinite=True``, as open3d's ``remove_nan_points`` and
``remove_infinite_points`` would), so downstream code never sees them; the header's point count
is checked against the data before that.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_write_bytes
from .errors import FormatError, read_file_bytes
from .lzf import lzf_compress, lzf_decompress
from .pcd_ascii import parse_ascii_numbers

DATA_KINDS = ("ascii", "binary", "binary_compressed")
_KEYS = ("VERSION", "FIELDS", "SIZE", "TYPE", "COUNT", "WIDTH", "HEIGHT", "VIEWPOINT", "POINTS", "DATA")
_TYPE_CODES = {("F", 4): "f4", ("F", 8): "f8",
               ("U", 1): "u1", ("U", 2): "u2", ("U", 4): "u4", ("U", 8): "u8",
               ("I", 1): "i1", ("I", 2): "i2", ("I", 4): "i4", ("I", 8): "i8"}
_MAX_HEADER_BYTES = 1 << 16
_RGB_DENORMAL_SCALE = 2.0 ** 149  # float32 with bits b < 2**24 has the exact value b * 2**-149


@dataclass(frozen=True)
class PcdHeader:
    """The parsed header: fields with their numpy dtype codes and counts, point count, data kind."""

    fields: tuple[str, ...]
    dtypes: tuple[str, ...]
    counts: tuple[int, ...]
    points: int
    data: str
    data_offset: int

    @property
    def point_dtype(self) -> np.dtype:
        """Little-endian structured dtype of one point as stored (duplicate names made unique)."""
        names = [f if f not in self.fields[:i] else f"_dup{i}" for i, f in enumerate(self.fields)]
        formats = [(f"<{d}", (c,)) if c > 1 else f"<{d}"
                   for d, c in zip(self.dtypes, self.counts, strict=True)]
        return np.dtype({"names": names, "formats": formats})


def _parse_header(path: Path, buf: bytes) -> PcdHeader:
    """Parse the text header up to and including the ``DATA`` line."""
    values: dict[str, list[str]] = {}
    pos = 0
    while True:
        if pos >= min(len(buf), _MAX_HEADER_BYTES):
            raise FormatError(path, "not a PCD file: no 'DATA ascii|binary|binary_compressed' header line")
        end = buf.find(b"\n", pos)
        end = len(buf) if end == -1 else end
        line = buf[pos:end].decode("ascii", errors="replace").strip()
        pos = end + 1
        if not line or line.startswith("#"):
            continue
        key, *rest = line.split()
        if key not in _KEYS:
            raise FormatError(path, f"not a PCD file: unexpected header line {line[:60]!r} "
                                    f"(expected one of {', '.join(_KEYS)})")
        values[key] = rest
        if key == "DATA":
            break

    for key in ("FIELDS", "SIZE", "TYPE"):
        if key not in values:
            raise FormatError(path, f"PCD header has no {key} line")
    fields = tuple(values["FIELDS"])
    n = len(fields)
    counts_txt = values.get("COUNT", ["1"] * n)
    if not (len(values["SIZE"]) == len(values["TYPE"]) == len(counts_txt) == n):
        raise FormatError(path, f"PCD header lists {n} FIELDS but {len(values['SIZE'])} SIZE, "
                                f"{len(values['TYPE'])} TYPE and {len(counts_txt)} COUNT entries")
    try:
        sizes = [int(s) for s in values["SIZE"]]
        counts = tuple(int(c) for c in counts_txt)
        width = int(values["WIDTH"][0]) if "WIDTH" in values else None
        height = int(values["HEIGHT"][0]) if "HEIGHT" in values else 1
        points = int(values["POINTS"][0]) if "POINTS" in values else None
    except (ValueError, IndexError) as err:
        raise FormatError(path, f"PCD header has a non-integer SIZE/COUNT/WIDTH/HEIGHT/POINTS: {err}") \
            from None
    dtypes = []
    for field, typ, size in zip(fields, values["TYPE"], sizes, strict=True):
        code = _TYPE_CODES.get((typ, size))
        if code is None:
            raise FormatError(path, f"PCD field {field!r} has TYPE {typ} SIZE {size}; expected F 4/8, "
                                    f"U 1/2/4/8 or I 1/2/4/8")
        dtypes.append(code)
    if points is None:
        if width is None:
            raise FormatError(path, "PCD header has neither POINTS nor WIDTH")
        points = width * height
    if points < 0 or min(counts, default=1) < 1:
        raise FormatError(path, f"PCD header has POINTS {points} / COUNT {counts}; expected >= 0 / >= 1")
    if width is not None and width * height != points:
        raise FormatError(path, f"PCD header WIDTH x HEIGHT = {width} x {height} disagrees with "
                                f"POINTS {points}")
    data = values["DATA"][0] if values["DATA"] else ""
    if data not in DATA_KINDS:
        raise FormatError(path, f"PCD DATA is {data!r}; expected one of {DATA_KINDS}")
    for name in ("x", "y", "z", "intensity", "rgb", "rgba"):
        if fields.count(name) > 1:
            raise FormatError(path, f"PCD field {name!r} is listed {fields.count(name)} times in FIELDS")
    for axis in "xyz":
        if axis not in fields:
            raise FormatError(path, f"PCD has no '{axis}' field (FIELDS {' '.join(fields)}); expected x y z")
    return PcdHeader(fields, tuple(dtypes), counts, points, data, min(pos, len(buf)))


def _parse_ascii(path: Path, header: PcdHeader, body: bytes) -> dict[str, np.ndarray]:
    """ASCII rows to one float64 column per field element (all numbers parsed at once)."""
    width = sum(header.counts)
    expected = header.points * width
    parsed = parse_ascii_numbers(body, expected)
    if parsed is None:  # a token the fast parser does not take: Python's parser decides
        try:
            flat = np.array(body.split(), dtype=np.float64)
        except ValueError as err:
            raise FormatError(path, f"PCD ascii data holds a token that is not a number ({err})") from None
        parsed = flat[:expected], flat.size
    flat, found = parsed
    if found != expected:
        kind = "truncated" if found < expected else "extra data after the points"
        raise FormatError(path, f"PCD ascii data holds {found} numbers, the header announces "
                                f"{header.points} points x {width} values = {expected} ({kind})")
    table = flat.reshape(header.points, width)
    starts = np.cumsum((0,) + header.counts)
    return {f: table[:, s] for f, s in zip(header.fields, starts[:-1], strict=True)}


def _parse_binary(path: Path, header: PcdHeader, body: bytes) -> np.ndarray:
    """Row-major binary records to a structured array."""
    dtype = header.point_dtype
    expected = header.points * dtype.itemsize
    if len(body) != expected:
        kind = "truncated" if len(body) < expected else "extra data after the points"
        raise FormatError(path, f"PCD binary data is {len(body)} bytes, the header announces "
                                f"{header.points} points x {dtype.itemsize} bytes = {expected} ({kind})")
    return np.frombuffer(body, dtype=dtype, count=header.points)


def _parse_binary_compressed(path: Path, header: PcdHeader, body: bytes) -> dict[str, np.ndarray]:
    """LZF block of column-major fields (each field's N values stored together) to columns."""
    if len(body) < 8:
        raise FormatError(path, f"PCD binary_compressed data is {len(body)} bytes; expected an 8-byte "
                                "size header (compressed, uncompressed)")
    compressed, uncompressed = (int(v) for v in np.frombuffer(body[:8], dtype="<u4"))
    itemsize = header.point_dtype.itemsize
    expected = header.points * itemsize
    if uncompressed != expected:
        raise FormatError(path, f"PCD binary_compressed announces {uncompressed} bytes uncompressed, the "
                                f"header's {header.points} points x {itemsize} bytes make {expected}")
    if len(body) - 8 != compressed:
        kind = "truncated" if len(body) - 8 < compressed else "extra data after it"
        raise FormatError(path, f"PCD binary_compressed block is {len(body) - 8} bytes, its size header "
                                f"says {compressed} ({kind})")
    try:
        raw = lzf_decompress(body[8:], uncompressed) if uncompressed else np.empty(0, np.uint8)
    except ValueError as err:
        raise FormatError(path, f"PCD binary_compressed data does not decode: {err}") from None
    columns, start = {}, 0
    for field, code, count in zip(header.fields, header.dtypes, header.counts, strict=True):
        nbytes = header.points * count * np.dtype(code).itemsize
        block = raw[start:start + nbytes].view(f"<{code}").reshape(header.points, count)
        columns.setdefault(field, block[:, 0])
        start += nbytes
    return columns


def _rgb_bits(values: np.ndarray, code: str, ascii_text: bool) -> np.ndarray:
    """uint32 bits of the packed ``rgb`` field, however it was stored (``code``: its dtype code)."""
    if code[0] in "ui":  # stored as an integer (open3d writes TYPE U)
        return values.astype(np.uint32)
    if not ascii_text:
        return values.astype(np.float32).view(np.uint32)
    # ASCII floats: 0x00RRGGBB has an exponent field of 0 or 1, so its value is exactly
    # bits * 2**-149; computing that in float64 avoids float32 denormals (flushed to zero when a
    # library has switched on FTZ/DAZ). Larger bit patterns (alpha byte set) go through float32.
    small = np.abs(values) < 2.0 ** -125
    via_scale = np.rint(np.where(small, values, 0.0) * _RGB_DENORMAL_SCALE)
    via_float = values.astype(np.float32).view(np.uint32)
    return np.where(small, via_scale, via_float).astype(np.uint32)


def read_pcd(path: str | os.PathLike, drop_nonfinite: bool = True) -> np.ndarray:
    """Read a PCD file into ``(N, 4)`` float32 ``[x, y, z, intensity]``.

    Supports ``DATA ascii``, ``binary`` and ``binary_compressed``, any SIZE/TYPE/COUNT; extra
    fields are ignored. Rows with a non-finite value are dropped unless ``drop_nonfinite=False``.
    Raises :class:`FormatError` naming the file for a missing file, a header that is not PCD, and
    data that disagrees with the header's point count.
    """
    path = Path(path)
    buf = read_file_bytes(path, "PCD file")
    header = _parse_header(path, buf)
    body = buf[header.data_offset:]
    if header.data == "ascii":
        cols = _parse_ascii(path, header, body)
    elif header.data == "binary":
        rec = _parse_binary(path, header, body)
        cols = {f: rec[name] if rec[name].ndim == 1 else rec[name][:, 0]
                for f, name in zip(header.fields, rec.dtype.names, strict=True)}
    else:
        cols = _parse_binary_compressed(path, header, body)

    out = np.empty((header.points, 4), dtype=np.float32)
    out[:, 0], out[:, 1], out[:, 2] = cols["x"], cols["y"], cols["z"]
    if "intensity" in cols:
        out[:, 3] = cols["intensity"]
    elif "rgb" in cols or "rgba" in cols:
        name = "rgb" if "rgb" in cols else "rgba"
        bits = _rgb_bits(cols[name], header.dtypes[header.fields.index(name)], header.data == "ascii")
        out[:, 3] = ((bits >> 16) & 0xFF).astype(np.float32) / np.float32(255.0)
    else:
        out[:, 3] = 0.0
    if drop_nonfinite:
        keep = np.isfinite(out).all(axis=1)
        if not keep.all():
            out = out[keep]
    return out


def _check_points(points) -> np.ndarray:
    arr = np.asarray(points)
    if arr.ndim != 2 or arr.shape[1] != 4 or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"points must be a numeric (N, 4) array [x, y, z, intensity], got "
                         f"shape {arr.shape} dtype {arr.dtype}")
    return arr.astype(np.float32, copy=False)


def pack_intensity_rgb(intensity: np.ndarray) -> np.ndarray:
    """uint32 ``0x00RR0000`` with ``RR = round(intensity * 255)`` clipped to [0, 255] (V2XSet's packing)."""
    red = np.clip(np.rint(np.asarray(intensity, dtype=np.float64) * 255.0), 0, 255)
    return red.astype(np.uint32) << 16


def encode_pcd(points, data: str = "binary", intensity_as: str = "rgb") -> bytes:
    """The bytes of a PCD file holding ``points`` (see :func:`write_pcd`)."""
    points = _check_points(points)
    if data not in DATA_KINDS:
        raise ValueError(f"data must be one of {DATA_KINDS}, got {data!r}")
    if intensity_as not in ("rgb", "intensity"):
        raise ValueError(f"intensity_as must be 'rgb' or 'intensity', got {intensity_as!r}")
    n = points.shape[0]
    last = "rgb" if intensity_as == "rgb" else "intensity"
    header = (f"# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS x y z {last}\n"
              f"SIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1\nWIDTH {n}\nHEIGHT 1\n"
              f"VIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA {data}\n").encode("ascii")
    last_type = "<u4" if last == "rgb" else "<f4"
    rec = np.empty(n, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), (last, last_type)])
    rec["x"], rec["y"], rec["z"] = points[:, 0], points[:, 1], points[:, 2]
    rec[last] = pack_intensity_rgb(points[:, 3]) if last == "rgb" else points[:, 3]
    if data == "binary":
        return header + rec.tobytes()
    if data == "binary_compressed":
        columns = b"".join(np.ascontiguousarray(rec[name]).tobytes() for name in rec.dtype.names)
        packed = lzf_compress(columns) if columns else b""
        return header + np.array([len(packed), len(columns)], dtype="<u4").tobytes() + packed
    # ascii: 9 significant digits round-trip any float32; the packed rgb is written as the float
    # its bits spell (bits * 2**-149 exactly, see _rgb_bits), as PCL / OpenCDA write it.
    table = points.astype(np.float64)
    if last == "rgb":
        table[:, 3] = rec["rgb"].astype(np.float64) / _RGB_DENORMAL_SCALE
    text = ("%.9g %.9g %.9g %.9g\n" * n) % tuple(table.ravel().tolist())  # one format call, no row loop
    return header + text.encode("ascii")


def write_pcd(path: str | os.PathLike, points, data: str = "binary", intensity_as: str = "rgb") -> Path:
    """Write ``(N, 4)`` ``[x, y, z, intensity]`` as a PCD file, atomically; return the path.

    ``data`` is ``"binary"`` (default), ``"ascii"`` or ``"binary_compressed"`` (LZF).
    ``intensity_as="rgb"`` writes V2XSet's layout, ``FIELDS x y z rgb`` with the intensity as
    ``round(intensity * 255)`` in the red byte (so it reads back quantised to multiples of 1/255);
    ``"intensity"`` writes ``FIELDS x y z intensity`` float32, exact.
    """
    return atomic_write_bytes(path, encode_pcd(points, data, intensity_as))
