"""tools/train.py and tools/inference.py end to end on the tiny V2X world."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml
from v2x_tiny import v2x_config, write_tiny_world

from v2xdet.config import load_config
from v2xdet.engine.v2x_task import inference_config

REPO = Path(__file__).resolve().parents[2]


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(f"v2xdet_tool_{name}", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A late-fusion PointPillars trained one epoch through tools/train.py."""
    root = tmp_path_factory.mktemp("cli")
    split = write_tiny_world(root / "world" / "train")
    hypes = root / "tiny_late.yaml"
    hypes.write_text(yaml.safe_dump(v2x_config(split, "late", score_threshold=0.05)))
    state = _tool("train").main(["--hypes_yaml", str(hypes), "--runs_root", str(root / "runs"),
                                 "--no_progress", "--set", "train_params.batch_size=3"])
    (model_dir,) = (root / "runs").iterdir()
    return hypes, model_dir, state


def test_train_cli_creates_a_run_and_resumes_it(trained):
    hypes, model_dir, state = trained
    assert model_dir.name.startswith("tiny_late_20") and state.global_step == 1      # 3 frames, batch 3
    cfg = load_config(model_dir)
    assert cfg["train_params"]["batch_size"] == 3 and cfg["fusion"]["strategy"] == "late"
    for name in ("latest.pth", "best.pth", "net_epoch1.pth", "train.log"):
        assert (model_dir / name).is_file(), name
    train = _tool("train")
    again = train.main(["--model_dir", str(model_dir), "--no_progress"])      # already finished: no steps
    assert again.global_step == 1 and "resumed from" in (model_dir / "train.log").read_text()
    with pytest.raises(SystemExit, match="already holds a run"):
        train.main(["--hypes_yaml", str(hypes), "--model_dir", str(model_dir), "--no_progress"])
    with pytest.raises(SystemExit, match="overrides apply to new runs only"):
        train.main(["--model_dir", str(model_dir), "--set", "optimizer.lr=1"])
    with pytest.raises(SystemExit, match="has no config.yaml"):
        train.main(["--model_dir", str(model_dir / "nothing")])
    bad = hypes.with_name("bad_split.yaml")
    config = {**yaml.safe_load(hypes.read_text()), "root_dir": str(hypes.parent / "nope")}
    bad.write_text(yaml.safe_dump(config))
    before = sorted(model_dir.parent.iterdir())
    with pytest.raises(SystemExit, match="nope: split folder does not exist"):
        train.main(["--hypes_yaml", str(bad), "--runs_root", str(model_dir.parent), "--no_progress"])
    assert sorted(model_dir.parent.iterdir()) == before          # no empty run folder left behind
    with pytest.raises(SystemExit, match="train_params.batch_size"):
        train.main(["--hypes_yaml", str(hypes), "--runs_root", str(model_dir.parent), "--set",
                    "train_params.batch_size=zero"])


def test_train_cli_warm_starts_from_a_pretrained_model(trained, tmp_path):
    hypes, model_dir, _ = trained
    train = _tool("train")
    train.main(["--hypes_yaml", str(hypes), "--model_dir", str(tmp_path / "warm"), "--no_progress",
                "--pretrained_model", str(model_dir / "best.pth"), "--set", "train_params.batch_size=3"])
    assert "warm start from" in (tmp_path / "warm" / "train.log").read_text()
    with pytest.raises(SystemExit, match="missing.pth does not exist"):
        train.main(["--hypes_yaml", str(hypes), "--model_dir", str(tmp_path / "cold"), "--no_progress",
                    "--pretrained_model", str(tmp_path / "missing.pth")])


def test_inference_cli_perfect_and_noisy_settings(trained, capsys):
    _, model_dir, _ = trained
    inference = _tool("inference")
    report = inference.main(["--model_dir", str(model_dir), "--save_npy", "--no_progress"])
    out = capsys.readouterr().out
    assert "per-frame" in out and "latency per frame (ms)" in out and "bytes sent per frame" in out
    assert report.eval_path == model_dir / "eval.yaml" and len(list((model_dir / "npy").glob("*.npz"))) == 3
    noisy = inference.main(["--model_dir", str(model_dir), "--pose_noise", "0.2", "0.2", "--delay_ms", "100",
                            "--no_progress"])
    assert noisy.eval_path == model_dir / "eval_pose0.2m-0.2deg_delay100ms.yaml"
    assert (model_dir / "eval.yaml").is_file()
    early = inference.main(["--model_dir", str(model_dir), "--fusion_method", "early", "--no_progress"])
    assert early.eval_path.name == "eval_fusion-early.yaml" and early.bytes_per_agent > 0


def test_inference_config_applies_the_settings(trained):
    _, model_dir, _ = trained
    cfg, split, tag = inference_config(model_dir, "none", None, "validate", (0.2, 0.3), 100)
    wild = cfg["wild_setting"]
    assert cfg["fusion"]["strategy"] == "none" and split == "validate"
    assert wild["loc_err"] and wild["xyz_std"] == 0.2 and wild["ryp_std"] == 0.3
    assert wild["async"] and wild["async_overhead"] == 100 and wild["data_size"] == 0
    assert tag == "fusion-none_pose0.2m-0.3deg_delay100ms"
    cfg, _, tag = inference_config(model_dir, "late", None, "validate", (0, 0), 0)
    assert not cfg["wild_setting"]["loc_err"] and not cfg["wild_setting"]["async"]
    assert tag == "pose0m-0deg_delay0ms"
    cfg, _, tag = inference_config(model_dir, None, None, "validate", score_threshold=0.35)
    assert cfg["postprocess"]["target_args"]["score_threshold"] == 0.35 and tag == "score0.35"
    assert cfg["postprocess"]["target_args"]["pos_threshold"] == load_config(model_dir)["postprocess"][
        "target_args"]["pos_threshold"]   # the rest of the section is kept
    with pytest.raises(ValueError, match="score_threshold must be in"):
        inference_config(model_dir, None, None, "validate", score_threshold=1.5)


def test_inference_cli_errors_are_clear(trained, monkeypatch):
    _, model_dir, _ = trained
    inference = _tool("inference")
    with pytest.raises(SystemExit, match="does not suit model 'point_pillar'.*none, early, late"):
        inference.main(["--model_dir", str(model_dir), "--fusion_method", "intermediate"])
    with pytest.raises(SystemExit, match="is not a directory"):
        inference.main(["--model_dir", str(model_dir), "--dataset_dir", str(model_dir / "nope")])
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(SystemExit, match="--show_vis needs a display"):
        inference.main(["--model_dir", str(model_dir), "--show_vis", "--no_progress"])
    with pytest.raises(SystemExit, match="add --save_vis"):
        inference.main(["--model_dir", str(model_dir), "--animation", "gif"])
    with pytest.raises(SystemExit, match="checkpoint .*missing.pth does not exist"):
        inference.main(["--model_dir", str(model_dir), "--checkpoint", str(model_dir / "missing.pth")])


@pytest.mark.parametrize("tool, argv", [("train", ["--hypes_yaml", "missing.yaml"]),
                                        ("inference", ["--model_dir", "missing_run"])])
def test_tools_tune_the_allocator_once_at_start_up_unless_told_not_to(tool, argv, tmp_path, monkeypatch,
                                                                         capsys):
    import v2xdet.engine.allocator

    calls = []

    def fake_tune():
        calls.append(1)
        return {"M_TRIM_THRESHOLD": 1 << 30, "M_MMAP_MAX": 0}

    monkeypatch.setattr(v2xdet.engine.allocator, "tune_allocator", fake_tune)
    monkeypatch.chdir(tmp_path)
    main = _tool(tool).main
    with pytest.raises(SystemExit):         # the missing config / run stops it right after start-up
        main(argv + ["--runs_root", str(tmp_path)] if tool == "train" else argv)
    assert calls == [1]
    assert f"{tool}: allocator M_TRIM_THRESHOLD=1073741824, M_MMAP_MAX=0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*argv, "--no_tune_allocator"])
    assert calls == [1]
    assert f"{tool}: allocator glibc defaults (--no_tune_allocator)" in capsys.readouterr().err
