"""PCD read speed: v2xdet's ``read_pcd`` against ``open3d.io.read_point_cloud`` (what OpenCOOD uses).

Reads the real V2XSet frame (ASCII) and the same points rewritten as binary and binary_compressed
in a temp folder, and prints points per second (best of ``--repeat`` runs after one warm-up, so
numba's compilation and the page cache are out of the timing). Also times ``write_pcd``.

    python tools/bench_io.py [--sample PATH.pcd] [--repeat 7]   ($V2XDET_SAMPLE_DIR as in tests)
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from benchlib import best_time

from v2xdet.data_utils.formats import DATA_KINDS, read_pcd, write_pcd

SAMPLE_DIR = Path(os.environ.get("V2XDET_SAMPLE_DIR",
                                 Path(__file__).resolve().parents[2] / "shared" / "data" / "v2xset_sample"))
DEFAULT_SAMPLE = SAMPLE_DIR / "validate" / "2021_08_21_17_30_41" / "4279" / "000069.pcd"


def open3d_reader():
    try:
        import open3d as o3d
    except ImportError:
        return None

    def read(path):
        pc = o3d.io.read_point_cloud(str(path))
        return np.hstack([np.asarray(pc.points), np.asarray(pc.colors)[:, :1]]).astype(np.float32)
    return read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE, help="an ASCII PCD (the real frame)")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    if not args.sample.is_file():
        raise SystemExit(f"sample PCD not found: {args.sample} (pass --sample)")
    points = read_pcd(args.sample)
    o3d_read = open3d_reader()
    n = len(points)
    print(f"{n} points from {args.sample}; best of {args.repeat} runs")
    print(f"{'DATA':<18} {'MB':>6} {'v2xdet read':>14} {'open3d read':>14} {'speed-up':>9} "
          f"{'v2xdet write':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in DATA_KINDS:
            path = Path(tmp) / f"{kind}.pcd"
            write_s = best_time(lambda kind=kind, path=path: write_pcd(path, points, data=kind), args.repeat)
            src = args.sample if kind == "ascii" else path  # ascii: the real file itself
            assert np.array_equal(read_pcd(src), points)
            ours = best_time(lambda src=src: read_pcd(src), args.repeat)
            if o3d_read is not None:
                assert np.allclose(o3d_read(src), points, rtol=0, atol=1e-6)
                theirs = best_time(lambda src=src: o3d_read(src), args.repeat)
                o3d_txt, ratio = f"{n / theirs / 1e6:10.2f} M/s", f"{theirs / ours:8.1f}x"
            else:
                o3d_txt, ratio = f"{'n/a':>14}", f"{'':>9}"
            mb = src.stat().st_size / 1e6
            print(f"{kind:<18} {mb:6.2f} {n / ours / 1e6:10.2f} M/s {o3d_txt} {ratio} "
                  f"{n / write_s / 1e6:10.2f} M/s")


if __name__ == "__main__":
    main()
