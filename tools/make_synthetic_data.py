"""Write a simulated V2X dataset in V2XSet's exact layout and print its realism statistics.

    .venv/bin/python tools/make_synthetic_data.py --out data/synthetic --scenes 50 --frames 20 --seed 0
    .venv/bin/python tools/make_synthetic_data.py --out /tmp/s --scenes 2 --frames 5 --seed 1 \\
        --preset opv2v --splits train=0.5,test=0.5 --cavs 3 --rsus 0 --preview docs/synthetic_frame.png

Writes ``OUT/{train,validate,test}/<scenario>/<agent_id>/<timestamp>.{pcd,yaml}`` (plus each
scenario's ``data_protocol.yaml``), ``OUT/generation.yaml`` (the parameters) and
``OUT/stats.yaml`` (the statistics printed at the end). A folder holding another dataset is
refused; the same dataset is written again only with ``--overwrite``.
"""
from __future__ import annotations

import os

# One BLAS thread: the generator's arrays are small and BLAS threads stall on a busy machine.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import yaml  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from v2xdet.data_utils.synthetic import PRESETS, generate_dataset, parse_splits  # noqa: E402
from v2xdet.data_utils.synthetic.writer import DatasetExistsError  # noqa: E402
from v2xdet.engine.allocator import tune_allocator  # noqa: E402


def _range(text: str) -> tuple[int, int]:
    """``"3"`` -> (3, 3); ``"2-5"`` -> (2, 5)."""
    lo, sep, hi = text.partition("-")
    try:
        out = (int(lo), int(hi) if sep else int(lo))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count like 3 or a range like 2-5, got {text!r}") \
            from None
    if out[0] < 0 or out[0] > out[1]:
        raise argparse.ArgumentTypeError(f"expected 0 <= low <= high, got {text!r}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output folder (new or empty, or this tool's own)")
    ap.add_argument("--scenes", type=int, required=True, help="number of scenarios (over all splits)")
    ap.add_argument("--frames", type=int, default=20, help="frames per scenario (10 Hz), default 20")
    ap.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    ap.add_argument("--preset", default="v2xset", choices=sorted(PRESETS), help="world preset")
    ap.add_argument("--splits", default="train=0.7,validate=0.15,test=0.15",
                    help="splits and their shares, e.g. train=0.7,validate=0.15,test=0.15 or train")
    ap.add_argument("--cavs", type=_range, default=None,
                    help="connected vehicles per scenario: N or LOW-HIGH")
    ap.add_argument("--rsus", type=_range, default=None, help="roadside units per scenario: N or LOW-HIGH")
    ap.add_argument("--data", default="binary", choices=("binary", "ascii", "binary_compressed"),
                    help="PCD encoding (V2XSet's files are ascii; binary is the default here)")
    ap.add_argument("--workers", type=int, default=1, help="scenes simulated in parallel processes")
    ap.add_argument("--preview", default=None, help="also save a PNG of the first scene's last frame")
    ap.add_argument("--overwrite", action="store_true", help="replace a dataset this tool wrote before")
    args = ap.parse_args(argv)
    tune_allocator()
    try:
        splits = parse_splits(args.splits)
        stats = generate_dataset(args.out, args.scenes, args.frames, args.seed, preset=args.preset,
                                 splits=splits, cavs=args.cavs, rsus=args.rsus, overwrite=args.overwrite,
                                 data=args.data, workers=args.workers, preview=args.preview,
                                 progress=lambda msg: print(msg, flush=True))
    except (ValueError, DatasetExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(yaml.safe_dump(stats, sort_keys=False, default_flow_style=None), end="")
    print(f"statistics written to {Path(args.out) / 'stats.yaml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
