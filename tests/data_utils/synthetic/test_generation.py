"""Determinism, refusal of bad input and of occupied folders, the command line and its preview."""
from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pytest
import yaml

from v2xdet.data_utils.synthetic import DatasetExistsError, generate_dataset, get_preset, parse_splits
from v2xdet.data_utils.synthetic.writer import split_counts

REPO = Path(__file__).resolve().parents[3]


def _digest(folder: Path) -> dict[str, str]:
    """sha256 of every data file (stats.yaml holds timings, so it is left out)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "stats.yaml"}


def _tool():
    path = REPO / "tools" / "make_synthetic_data.py"
    spec = importlib.util.spec_from_file_location("make_synthetic_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_same_seed_same_bytes_other_seed_other_world(tiny_dataset, tmp_path):
    out, _ = tiny_dataset
    again = tmp_path / "again"
    generate_dataset(again, 1, 3, 0, preset="tiny", splits={"train": 1.0})
    assert _digest(again) == _digest(out)
    other = tmp_path / "other"
    generate_dataset(other, 1, 3, 1, preset="tiny", splits={"train": 1.0})
    a, b = _digest(out), _digest(other)
    assert set(a) != set(b) or all(a[k] != b[k] for k in a if k.endswith(".pcd"))
    gen_a = yaml.safe_load((out / "generation.yaml").read_text())
    gen_b = yaml.safe_load((other / "generation.yaml").read_text())
    assert gen_a["status"] == gen_b["status"] == "complete" and gen_a["parameters"]["seed"] == 0


@pytest.mark.parametrize("kwargs,match", [
    ({"n_frames": 0}, "n_frames"), ({"n_frames": -3}, "n_frames"), ({"n_scenes": 0}, "n_scenes"),
    ({"seed": -1}, "seed"), ({"cavs": (0, 0)}, "cavs"), ({"rsus": (2, 1)}, "rsus"),
    ({"preset": "carla"}, "unknown preset"), ({"workers": 0}, "workers"),
])
def test_bad_arguments_are_refused(tmp_path, kwargs, match):
    args = {"out_dir": tmp_path / "x", "n_scenes": 1, "n_frames": 1, "seed": 0, "preset": "tiny"} | kwargs
    with pytest.raises(ValueError, match=match):
        generate_dataset(**args)
    assert not (tmp_path / "x").exists()


def test_occupied_folders_are_not_overwritten_silently(tmp_path):
    out = tmp_path / "d"
    generate_dataset(out, 1, 1, 0, preset="tiny", splits={"train": 1.0})
    before = _digest(out)
    with pytest.raises(DatasetExistsError, match="same parameters"):
        generate_dataset(out, 1, 1, 0, preset="tiny", splits={"train": 1.0})
    with pytest.raises(DatasetExistsError, match="different synthetic dataset.*seed"):
        generate_dataset(out, 1, 1, 5, preset="tiny", splits={"train": 1.0})
    assert _digest(out) == before
    generate_dataset(out, 1, 1, 5, preset="tiny", splits={"train": 1.0}, overwrite=True)
    assert yaml.safe_load((out / "generation.yaml").read_text())["parameters"]["seed"] == 5
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "stats.yaml").write_text("frames: 3\n")
    for overwrite in (False, True):
        with pytest.raises(DatasetExistsError, match="not a dataset written by this tool"):
            generate_dataset(foreign, 1, 1, 0, preset="tiny", overwrite=overwrite)
    assert [p.name for p in foreign.iterdir()] == ["stats.yaml"]


def test_splits():
    assert parse_splits("train=0.7,validate=0.15,test=0.15") == pytest.approx(
        {"train": 0.7, "validate": 0.15, "test": 0.15})
    assert parse_splits("train,test") == {"train": 0.5, "test": 0.5}
    assert split_counts(10, {"train": 0.7, "validate": 0.15, "test": 0.15}) == {"train": 7, "validate": 2,
                                                                               "test": 1}
    assert sum(split_counts(1, {"train": 0.7, "validate": 0.3}).values()) == 1
    for bad, match in (("train=0", "positive"), ("dev=1", "unknown split"), ("train,train", "twice"),
                       ("train=x", "number")):
        with pytest.raises(ValueError, match=match):
            parse_splits(bad)


def test_presets_have_the_protocol_sensor():
    lidar = get_preset("v2xset").lidar.protocol()
    assert lidar == {"channels": 64, "upper_fov": 2.0, "lower_fov": -25.0, "points_per_second": 1_300_000,
                     "rotation_frequency": 20.0, "range": 120.0, "noise_stddev": 0.02,
                     "dropoff_general_rate": 0.1, "dropoff_intensity_limit": 0.7,
                     "dropoff_zero_intensity": 0.15, "atmosphere_attenuation_rate": 0.004}
    assert get_preset("opv2v").agents.rsus == (0, 0) and get_preset("v2xset").agents.rsus[1] >= 1


def test_command_line(tmp_path, capsys):
    tool = _tool()
    out, png = tmp_path / "cli", tmp_path / "frame.png"
    assert tool.main(["--out", str(out), "--scenes", "1", "--frames", "2", "--seed", "3", "--preset", "tiny",
                      "--splits", "validate", "--preview", str(png)]) == 0
    printed = capsys.readouterr().out
    assert "points_per_agent_frame" in printed and "cooperation" in printed
    assert (out / "validate").is_dir() and (out / "stats.yaml").is_file()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    # zero agents and negative frames: a clear message, exit status 2, nothing written
    assert tool.main(["--out", str(tmp_path / "z"), "--scenes", "1", "--frames", "2", "--preset", "tiny",
                      "--cavs", "0", "--rsus", "0"]) == 2
    assert "cavs" in capsys.readouterr().err and not (tmp_path / "z").exists()
    assert tool.main(["--out", str(tmp_path / "n"), "--scenes", "1", "--frames", "-1"]) == 2
    assert "n_frames" in capsys.readouterr().err
    assert tool.main(["--out", str(out), "--scenes", "1", "--frames", "2", "--seed", "3", "--preset", "tiny",
                      "--splits", "validate"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_parallel_workers_write_the_same_bytes(tmp_path):
    """A scene's seed does not depend on the process that simulates it."""
    one, two = tmp_path / "one", tmp_path / "two"
    generate_dataset(one, 2, 2, 9, preset="tiny", splits={"train": 0.5, "test": 0.5})
    generate_dataset(two, 2, 2, 9, preset="tiny", splits={"train": 0.5, "test": 0.5}, workers=2)
    assert _digest(one) == _digest(two) and any(k.startswith("test/") for k in _digest(one))
