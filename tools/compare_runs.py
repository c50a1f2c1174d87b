"""Tabulate the AP that tools/inference.py wrote for several runs, one row per run and setting.

    python tools/compare_runs.py runs/compare/none runs/compare/late ... [--markdown]

Reads each run folder's ``eval.yaml`` and ``eval_<tag>.yaml`` (the tag names the inference
setting, e.g. ``pose0.2m0.2deg_delay100ms``) and prints AP@0.3/0.5/0.7 in OpenCOOD's per-frame
order with the globally re-sorted AP@0.5 beside it. The method column is the run's
``fusion.core_method`` / ``model.core_method`` from its ``config.yaml``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

KEYS = ("ap30", "ap_50", "ap_70")


def method_of(run: Path) -> str:
    """``<fusion strategy>/<model core_method>`` of a run folder, from its config.yaml."""
    path = run / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{run} has no config.yaml: not a run folder written by tools/train.py")
    cfg = yaml.safe_load(path.read_text())
    try:
        return f"{cfg['fusion']['core_method']}/{cfg['model']['core_method']}"
    except (KeyError, TypeError):
        raise ValueError(f"{path} lacks fusion.core_method or model.core_method") from None


def eval_rows(run: Path) -> list[dict]:
    """One row per eval yaml in ``run``: setting tag (``perfect`` for eval.yaml), AP values."""
    rows = []
    for path in sorted(run.glob("eval*.yaml")):
        stem = path.stem
        if stem.startswith("eval_global_sort"):
            continue  # the same numbers with the global order primary
        summary = yaml.safe_load(path.read_text()) or {}
        missing = [k for k in KEYS if k not in summary]
        if missing:
            raise ValueError(f"{path} lacks {missing}: not an eval yaml written by tools/inference.py")
        rows.append({"run": run.name, "setting": stem[len("eval_"):] if stem != "eval" else "perfect",
                     **{k: float(summary[k]) for k in KEYS},
                     "ap_50_global": float(summary.get("ap_50_global", float("nan")))})
    if not rows:
        raise FileNotFoundError(f"{run} holds no eval*.yaml: run tools/inference.py --model_dir {run} first")
    return rows


def format_rows(rows: list[dict], markdown: bool) -> str:
    head = ["run", "method", "setting", "AP@0.3", "AP@0.5", "AP@0.7", "AP@0.5 global"]
    body = [[r["run"], r["method"], r["setting"], *(f"{r[k]:.3f}" for k in (*KEYS, "ap_50_global"))]
            for r in rows]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body])
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    return "\n".join("  ".join(x.ljust(w) for x, w in zip(row, widths, strict=True)) for row in [head, *body])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders scored by tools/inference.py")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = parser.parse_args(argv)
    rows = []
    try:
        for run in args.runs:
            method = method_of(run)
            rows += [{**r, "method": method} for r in eval_rows(run)]
    except (OSError, ValueError) as exc:
        sys.exit(f"compare_runs: {exc}")
    print(format_rows(rows, args.markdown))


if __name__ == "__main__":
    main()
