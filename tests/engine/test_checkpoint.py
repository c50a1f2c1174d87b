"""Checkpoints: atomic writes survive a crash mid-save; loads are safe and strict."""
from __future__ import annotations

import os
import stat

import pytest
import torch
from torch import nn

from v2xdet.engine import checkpoint as ckpt_mod
from v2xdet.engine.checkpoint import (
    CheckpointError,
    atomic_save,
    find_resume_checkpoint,
    load_checkpoint,
    load_pretrained,
    load_state_strict,
    model_state,
)
from v2xdet.engine.files import atomic_open


def test_crash_during_save_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "latest.pth"
    old = {"model": {"w": torch.arange(4.0)}, "state": {"epoch": 1}}
    atomic_save(old, path)
    real_save = torch.save

    def torn_save(obj, f):
        real_save(obj, f)            # write a full payload, then die before the rename
        f.write(b"garbage")
        raise OSError("disk unplugged mid-save")

    monkeypatch.setattr(ckpt_mod.torch, "save", torn_save)
    with pytest.raises(OSError, match="disk unplugged"):
        atomic_save({"model": {"w": torch.zeros(4)}, "state": {"epoch": 2}}, path)
    monkeypatch.undo()
    loaded = load_checkpoint(path)
    assert loaded["state"]["epoch"] == 1 and torch.equal(loaded["model"]["w"], torch.arange(4.0))
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pth"]   # no temporary file left behind


def test_atomic_outputs_get_ordinary_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        atomic_save({"w": torch.zeros(1)}, tmp_path / "a.pth")
        with atomic_open(tmp_path / "b.bin") as f:
            f.write(b"x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "a.pth").stat().st_mode) == 0o644     # not mkstemp's 0600
    assert stat.S_IMODE((tmp_path / "b.bin").stat().st_mode) == 0o644
    assert (tmp_path / "b.bin").read_bytes() == b"x"


def test_plain_torch_save_would_have_torn_the_file(tmp_path):
    """The hazard atomic_save avoids: writing in place and dying leaves an unreadable file."""
    path = tmp_path / "latest.pth"
    torch.save({"w": torch.arange(4.0)}, path)
    with open(path, "wb") as f:
        f.write(b"PK\x03\x04 half a zip")
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(path)


def test_load_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pth"):
        load_checkpoint(tmp_path / "nothing.pth")
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match=r"list\.pth holds a list"):
        load_checkpoint(tmp_path / "list.pth")


def test_weights_only_refuses_pickled_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    torch.save({"model": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="evil.pth cannot be read"):
        load_checkpoint(tmp_path / "evil.pth")


def test_strict_load_names_missing_unexpected_and_shape_keys():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    del state["1.bias"]
    state["2.weight"] = torch.zeros(1)
    state["0.weight"] = torch.zeros(5, 3)
    with pytest.raises(CheckpointError) as err:
        load_state_strict(model, state, "run/latest.pth")
    msg = str(err.value)
    assert "run/latest.pth" in msg and "missing keys: ['1.bias']" in msg
    assert "unexpected keys: ['2.weight']" in msg and "0.weight: checkpoint (5, 3) vs model (4, 3)" in msg


def test_strict_load_round_trip():
    src, dst = nn.Linear(3, 2), nn.Linear(3, 2)
    load_state_strict(dst, model_state({"model": src.state_dict()}, "x"), "x")
    assert torch.equal(src.weight, dst.weight)
    assert model_state(src.state_dict(), "y").keys() == src.state_dict().keys()   # a bare state dict


def test_find_resume_checkpoint_order(tmp_path):
    assert find_resume_checkpoint(tmp_path) is None
    for n in (2, 10, 9):
        (tmp_path / f"net_epoch{n}.pth").write_bytes(b"x")
    assert find_resume_checkpoint(tmp_path).name == "net_epoch10.pth"
    (tmp_path / "latest.pth").write_bytes(b"x")
    assert find_resume_checkpoint(tmp_path).name == "latest.pth"


def test_load_pretrained_copies_matching_tensors_only(tmp_path):
    torch.manual_seed(0)
    source = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    atomic_save({"model": source.state_dict()}, tmp_path / "src.pth")
    target = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 5), nn.Linear(5, 1))  # layer 1 resized, 2 new
    before = {k: v.clone() for k, v in target.state_dict().items()}
    report = load_pretrained(target, tmp_path / "src.pth")
    assert report["loaded"] == ["0.bias", "0.weight"]
    assert report["skipped"] == ["1.bias", "1.weight", "2.bias", "2.weight"]
    assert report["unused"] == []
    assert torch.equal(target[0].weight, source[0].weight)
    assert torch.equal(target[1].weight, before["1.weight"])  # shape differs: kept
    assert torch.equal(target[2].bias, before["2.bias"])


def test_load_pretrained_refuses_an_unrelated_checkpoint(tmp_path):
    atomic_save({"model": {"other.weight": torch.zeros(2)}}, tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match="x.pth.*shares no tensor"):
        load_pretrained(nn.Linear(2, 2), tmp_path / "x.pth")
