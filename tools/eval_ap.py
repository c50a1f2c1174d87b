"""AP@0.3/0.5/0.7 of saved detections: one ``<frame>.npz`` per frame in DIR.

Each file holds ``pred_corners`` (N, 8, 3), ``pred_scores`` (N,) and ``gt_corners`` (M, 8, 3) in
the ego frame (OpenCOOD's corner order). Frames are taken in natural file-name order
(``2.npz`` before ``10.npz``), which is the dataset order OpenCOOD's per-frame AP depends on.
Prints the table and writes OpenCOOD's ``eval.yaml`` (``eval_global_sort.yaml`` with
``--global_sort_detections``, whose OpenCOOD keys then hold the globally re-sorted AP).

    python tools/eval_ap.py DIR [--out eval.yaml] [--global_sort_detections]
"""
from __future__ import annotations

import argparse
import re
import zipfile
from pathlib import Path

import numpy as np

from v2xdet.evaluation import EvalAccumulator, format_table, write_eval_yaml

KEYS = ("pred_corners", "pred_scores", "gt_corners")


def natural_key(path: Path) -> list:
    """Sort key that orders the digit runs of a name as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.stem)]


def read_frame(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three arrays of one frame file; errors name the file and the key."""
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single array, not named arrays")
        with data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        # a file that is not a zip archive makes np.load try it as a (refused) pickle
        raise ValueError(f"{path}: not a readable .npz file ({err})") from err
    missing = [k for k in KEYS if k not in arrays]
    if missing:
        raise ValueError(f"{path}: missing key {missing[0]!r} (the file has {sorted(arrays)}; "
                         f"expected {list(KEYS)})")
    return tuple(arrays[k] for k in KEYS)


def evaluate_dir(directory: Path) -> dict:
    """Summary of every frame file in ``directory``."""
    files = sorted(directory.glob("*.npz"), key=natural_key)
    if not files:
        raise ValueError(f"{directory}: no <frame>.npz files found")
    acc = EvalAccumulator()
    for path in files:
        pred_corners, pred_scores, gt_corners = read_frame(path)
        try:
            acc.add_frame(pred_corners, pred_scores, gt_corners)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err
    return acc.summary()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="folder of <frame>.npz files")
    parser.add_argument("--out", type=Path, default=None,
                        help="yaml to write (default DIR/eval.yaml or DIR/eval_global_sort.yaml)")
    parser.add_argument("--global_sort_detections", action="store_true",
                        help="OpenCOOD keys hold AP with all detections re-sorted by score")
    args = parser.parse_args(argv)
    if not args.dir.is_dir():
        raise SystemExit(f"eval_ap: {args.dir} is not a directory")
    try:
        summary = evaluate_dir(args.dir)
    except ValueError as err:
        raise SystemExit(f"eval_ap: {err}") from err
    out = args.out or args.dir / ("eval_global_sort.yaml" if args.global_sort_detections else "eval.yaml")
    write_eval_yaml(out, summary, args.global_sort_detections)
    print(format_table(summary))
    print(f"wrote {out}")
    return summary


if __name__ == "__main__":
    main()
