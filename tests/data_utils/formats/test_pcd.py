"""PCD reader/writer: exact round trips, agreement with open3d both ways, refusal of bad files."""
from __future__ import annotations

import re

import numpy as np
import open3d as o3d
import pytest

from v2xdet.data_utils.formats import DATA_KINDS, FormatError, read_pcd, write_pcd
from v2xdet.data_utils.formats.lzf import lzf_compress


@pytest.fixture
def cloud() -> np.ndarray:
    """500 points; intensities include every red byte (0..255) and values outside [0, 1]."""
    rng = np.random.default_rng(0)
    pts = np.empty((500, 4), dtype=np.float32)
    pts[:, :3] = rng.uniform(-120, 120, (500, 3))
    pts[:256, 3] = np.arange(256) / 255.0
    pts[256:, 3] = rng.uniform(-0.2, 1.2, 244)
    return pts


def quantised(points: np.ndarray) -> np.ndarray:
    """What the rgb layout stores: the intensity rounded to a red byte, read back as byte / 255."""
    out = points.copy()
    out[:, 3] = np.clip(np.rint(points[:, 3].astype(np.float64) * 255), 0, 255).astype(np.float32) / 255
    return out


def header(fields="x y z intensity", size="4 4 4 4", typ="F F F F", count="1 1 1 1", points=2,
           data="ascii") -> bytes:
    return (f"# .PCD v0.7\nVERSION 0.7\nFIELDS {fields}\nSIZE {size}\nTYPE {typ}\nCOUNT {count}\n"
            f"WIDTH {points}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {points}\nDATA {data}\n").encode()


@pytest.mark.parametrize("data", DATA_KINDS)
def test_round_trip_intensity_field_is_exact(tmp_path, cloud, data):
    path = write_pcd(tmp_path / "c.pcd", cloud, data=data, intensity_as="intensity")
    out = read_pcd(path)
    assert out.dtype == np.float32 and out.shape == cloud.shape
    np.testing.assert_array_equal(out, cloud)


@pytest.mark.parametrize("data", DATA_KINDS)
def test_round_trip_rgb_quantises_intensity_to_red_byte(tmp_path, cloud, data):
    path = write_pcd(tmp_path / "c.pcd", cloud, data=data)
    assert b"FIELDS x y z rgb\n" in path.read_bytes()[:300]
    out = read_pcd(path)
    np.testing.assert_array_equal(out, quantised(cloud))
    np.testing.assert_array_equal(out[:256, 3] * 255, np.arange(256, dtype=np.float32))


@pytest.mark.parametrize("data", DATA_KINDS)
def test_open3d_reads_our_files_as_we_do(tmp_path, cloud, data):
    path = write_pcd(tmp_path / "c.pcd", cloud, data=data)
    pc = o3d.io.read_point_cloud(str(path))
    ours = read_pcd(path)
    np.testing.assert_array_equal(np.asarray(pc.points).astype(np.float32), ours[:, :3])
    colors = np.asarray(pc.colors)
    np.testing.assert_allclose(colors[:, 0], ours[:, 3], rtol=0, atol=1e-7)
    np.testing.assert_array_equal(colors[:, 1:], 0.0)


@pytest.mark.parametrize("ascii_, compressed", [(True, False), (False, False), (False, True)])
def test_we_read_open3d_files_as_open3d_does(tmp_path, cloud, ascii_, compressed):
    """open3d writes its own PCD (its own LZF encoder for binary_compressed); we must decode it."""
    pc = o3d.geometry.PointCloud()
    pc.points = o3d.utility.Vector3dVector(cloud[:, :3].astype(np.float64))
    red = quantised(cloud)[:, 3].astype(np.float64)
    pc.colors = o3d.utility.Vector3dVector(np.column_stack([red, np.zeros((len(red), 2))]))
    path = tmp_path / "o3d.pcd"
    assert o3d.io.write_point_cloud(str(path), pc, write_ascii=ascii_, compressed=compressed)
    back = o3d.io.read_point_cloud(str(path))
    ours = read_pcd(path)
    np.testing.assert_array_equal(ours[:, :3], np.asarray(back.points).astype(np.float32))
    np.testing.assert_allclose(ours[:, 3], np.asarray(back.colors)[:, 0], rtol=0, atol=1e-7)
    np.testing.assert_allclose(ours[:, 3], red, rtol=0, atol=1e-7)


@pytest.mark.parametrize("data", DATA_KINDS)
def test_empty_cloud_round_trip(tmp_path, data):
    out = read_pcd(write_pcd(tmp_path / "e.pcd", np.zeros((0, 4), np.float32), data=data))
    assert out.shape == (0, 4) and out.dtype == np.float32


@pytest.mark.parametrize("data", DATA_KINDS)
def test_nonfinite_points_dropped_unless_asked(tmp_path, cloud, data):
    cloud[[3, 10], 0] = np.nan
    cloud[20, 2] = np.inf
    path = write_pcd(tmp_path / "n.pcd", cloud, data=data, intensity_as="intensity")
    keep = np.ones(len(cloud), bool)
    keep[[3, 10, 20]] = False
    np.testing.assert_array_equal(read_pcd(path), cloud[keep])
    np.testing.assert_array_equal(read_pcd(path, drop_nonfinite=False), cloud)


def _mixed_cloud():
    """Columns of a file with extra fields, COUNT 3, doubles and integer types."""
    x = np.array([1.5, -2.25, 1e5])
    y = np.array([0.125, 3.0, -7.5])
    z = np.array([-1.0, 0.0, 2.0])
    ring = np.array([3, 60000, 7], dtype=np.uint16)
    normal = np.arange(9, dtype=np.float32).reshape(3, 3)
    inten = np.array([0.25, 17.0, -1.0], dtype=np.float32)
    return x, y, z, ring, normal, inten


MIXED = dict(fields="ring x normal y z intensity", size="2 8 4 8 8 4", typ="U F F F F F", count="1 1 3 1 1 1",
             points=3)


@pytest.mark.parametrize("data", DATA_KINDS)
def test_reads_extra_fields_counts_and_types(tmp_path, data):
    x, y, z, ring, normal, inten = _mixed_cloud()
    rec = np.empty(3, dtype=[("ring", "<u2"), ("x", "<f8"), ("normal", "<f4", (3,)), ("y", "<f8"),
                             ("z", "<f8"), ("intensity", "<f4")])
    rec["ring"], rec["x"], rec["normal"], rec["y"], rec["z"], rec["intensity"] = ring, x, normal, y, z, inten
    if data == "ascii":
        rows = [f"{r} {a!r} {n[0]} {n[1]} {n[2]} {b!r} {c!r} {i!r}"
                for r, a, n, b, c, i in zip(ring, x.tolist(), normal, y.tolist(), z.tolist(), inten.tolist(),
                                                     strict=True)]
        body = ("\n".join(rows) + "\n").encode()
    elif data == "binary":
        body = rec.tobytes()
    else:
        columns = b"".join(np.ascontiguousarray(rec[name]).tobytes() for name in rec.dtype.names)
        packed = lzf_compress(columns)
        body = np.array([len(packed), len(columns)], "<u4").tobytes() + packed
    path = tmp_path / "m.pcd"
    path.write_bytes(header(**MIXED, data=data) + body)
    out = read_pcd(path)
    np.testing.assert_array_equal(out, np.column_stack([x, y, z, inten]).astype(np.float32))


@pytest.mark.parametrize("data", ["ascii", "binary"])
def test_rgb_stored_as_unsigned_int(tmp_path, data):
    bits = np.array([0x00FF0000, 0x00010203, 0xFF7F0000], dtype=np.uint32)  # alpha byte ignored
    rec = np.zeros(3, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<u4")])
    rec["rgb"] = bits
    body = rec.tobytes() if data == "binary" else "".join(f"0 0 0 {b}\n" for b in bits).encode()
    path = tmp_path / "u.pcd"
    path.write_bytes(header("x y z rgb", typ="F F F U", points=3, data=data) + body)
    np.testing.assert_array_equal(read_pcd(path)[:, 3], np.array([255, 1, 127], np.float32) / 255)


def test_no_intensity_field_gives_zero(tmp_path):
    path = tmp_path / "xyz.pcd"
    path.write_bytes(header("x y z", "4 4 4", "F F F", "1 1 1", 2) + b"1 2 3\n4 5 6\n")
    np.testing.assert_array_equal(read_pcd(path), [[1, 2, 3, 0], [4, 5, 6, 0]])


def test_write_is_atomic_and_overwrites(tmp_path, cloud):
    path = tmp_path / "c.pcd"
    write_pcd(path, cloud)
    write_pcd(path, cloud[:10], data="ascii")
    assert [p.name for p in tmp_path.iterdir()] == ["c.pcd"]  # no temp file left behind
    assert read_pcd(path).shape == (10, 4)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        write_pcd(path, cloud[:, :3])
    with pytest.raises(ValueError, match="data must be one of"):
        write_pcd(path, cloud, data="lz4")
    assert read_pcd(path).shape == (10, 4)  # a failed write leaves the old file
    with pytest.raises(FileNotFoundError, match="folder .*missing does not exist"):
        write_pcd(tmp_path / "missing" / "c.pcd", cloud)


# ---- bad input: every error names the file -------------------------------------------------------

def _raises_naming(path, match: str):
    return pytest.raises(FormatError, match=re.escape(str(path)) + ".*" + match)


def test_missing_file(tmp_path):
    with _raises_naming(tmp_path / "none.pcd", "does not exist"):
        read_pcd(tmp_path / "none.pcd")


@pytest.mark.parametrize("content", [b"hello world\nthis is not a point cloud\n", bytes(range(256)) * 8, b""])
def test_garbage(tmp_path, content):
    path = tmp_path / "g.pcd"
    path.write_bytes(content)
    with _raises_naming(path, "not a PCD file"):
        read_pcd(path)


@pytest.mark.parametrize("data", DATA_KINDS)
def test_truncated(tmp_path, cloud, data):
    path = write_pcd(tmp_path / "t.pcd", cloud, data=data)
    path.write_bytes(path.read_bytes()[:-37])
    with _raises_naming(path, "truncated|does not decode"):
        read_pcd(path)


@pytest.mark.parametrize("data", DATA_KINDS)
def test_extra_data(tmp_path, cloud, data):
    path = write_pcd(tmp_path / "x.pcd", cloud, data=data)
    path.write_bytes(path.read_bytes() + b"1 2 3 4\n")
    with _raises_naming(path, "extra data"):
        read_pcd(path)


def test_header_count_disagrees_with_data(tmp_path):
    path = tmp_path / "h.pcd"
    path.write_bytes(header(points=3) + b"1 2 3 4\n5 6 7 8\n")
    with _raises_naming(path, "8 numbers.*3 points.*truncated"):
        read_pcd(path)
    path.write_bytes(header(points=2).replace(b"WIDTH 2", b"WIDTH 5") + b"1 2 3 4\n5 6 7 8\n")
    with _raises_naming(path, "WIDTH x HEIGHT"):
        read_pcd(path)


@pytest.mark.parametrize("kw, match", [
    (dict(fields="x y intensity", size="4 4 4", typ="F F F", count="1 1 1"), "no 'z' field"),
    (dict(typ="F F F X"), "TYPE X SIZE 4"),
    (dict(size="4 4 4"), "4 FIELDS but 3 SIZE"),
    (dict(data="binary_lz4"), "DATA is 'binary_lz4'"),
    (dict(fields="x y z x"), "'x' is listed 2 times"),
    (dict(size="4 4 4 four"), "non-integer SIZE"),
])
def test_bad_header(tmp_path, kw, match):
    path = tmp_path / "b.pcd"
    path.write_bytes(header(**kw) + b"1 2 3 4\n5 6 7 8\n")
    with _raises_naming(path, match):
        read_pcd(path)


def test_non_numeric_ascii(tmp_path):
    path = tmp_path / "a.pcd"
    path.write_bytes(header() + b"1 2 3 4\n5 6 seven 8\n")
    with _raises_naming(path, "not a number"):
        read_pcd(path)


def test_corrupt_compressed_payload(tmp_path, cloud):
    path = write_pcd(tmp_path / "c.pcd", cloud, data="binary_compressed")
    raw = bytearray(path.read_bytes())
    start = raw.index(b"DATA binary_compressed\n") + len(b"DATA binary_compressed\n") + 8
    raw[start] = 0xFF  # first control byte: a back reference before the start of the output
    path.write_bytes(bytes(raw))
    with _raises_naming(path, "does not decode"):
        read_pcd(path)
