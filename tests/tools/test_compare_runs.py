"""tools/compare_runs.py: one row per run and inference setting, read from the eval yamls."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

TOOL = Path(__file__).resolve().parents[2] / "tools" / "compare_runs.py"
spec = importlib.util.spec_from_file_location("compare_runs", TOOL)
compare_runs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_runs)


def make_run(root: Path, name: str, evals: dict[str, tuple]) -> Path:
    run = root / name
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"fusion": {"core_method": "intermediate"},
                                                     "model": {"core_method": "point_pillar_fcooper"}}))
    for stem, (a3, a5, a7) in evals.items():
        (run / f"{stem}.yaml").write_text(yaml.safe_dump({"ap30": a3, "ap_50": a5, "ap_70": a7,
                                                          "ap_50_global": a5 + 0.01}))
    return run


def test_rows_per_setting_and_table(tmp_path, capsys):
    run = make_run(tmp_path, "fc", {"eval": (0.9, 0.8, 0.5), "eval_pose0.2m0.2deg": (0.7, 0.6, 0.2),
                                    "eval_global_sort": (1, 1, 1)})
    rows = compare_runs.eval_rows(run)
    assert [r["setting"] for r in rows] == ["perfect", "pose0.2m0.2deg"]
    assert rows[1]["ap_50"] == pytest.approx(0.6) and rows[1]["ap_50_global"] == pytest.approx(0.61)
    compare_runs.main([str(run), "--markdown"])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("| run | method | setting |")
    assert out[2] == "| fc | intermediate/point_pillar_fcooper | perfect | 0.900 | 0.800 | 0.500 | 0.810 |"


def test_errors_name_the_folder(tmp_path):
    empty = make_run(tmp_path, "empty", {})
    with pytest.raises(SystemExit, match="empty holds no eval"):
        compare_runs.main([str(empty)])
    with pytest.raises(SystemExit, match="nothing has no config.yaml"):
        compare_runs.main([str(tmp_path / "nothing")])
    bad = make_run(tmp_path, "bad", {})
    (bad / "eval.yaml").write_text(yaml.safe_dump({"ap30": 0.1}))
    with pytest.raises(SystemExit, match=r"eval.yaml lacks \['ap_50', 'ap_70'\]"):
        compare_runs.main([str(bad)])
