"""Split index and whole-frame read/write on a small layout the test writes itself."""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from v2xdet.data_utils.formats import (
    FormatError,
    Frame,
    frame_paths,
    index_dataset,
    load_frame,
    read_pcd,
    timestamp_str,
    write_frame,
)

LAYOUT = {"2021_01_02_03_04_05": {-1: [0, 2], 650: [0, 2, 4], 651: [2]},
          "2021_01_01_00_00_00": {12: [10]}}


def meta_for(agent_id, t):
    return {"lidar_pose": [float(agent_id), float(t), 1.9, 0.0, 45.0, 0.0], "ego_speed": 3.0 + t,
            "vehicles": {agent_id + 1000: {"location": [5.0, 0.0, 0.0], "center": [0.0, 0.0, 0.7],
                                           "extent": [2.0, 1.0, 0.7], "angle": [0.0, 45.0, 0.0],
                                           "speed": 1.0}},
            "true_ego_pos": [0.0] * 6, "camera0": {"cords": [1, 2, 3]}}


def points_for(agent_id, t):
    rng = np.random.default_rng(abs(agent_id) * 100 + t)
    pts = rng.uniform(-50, 50, (200, 4)).astype(np.float32)
    pts[:, 3] = np.rint(rng.uniform(0, 1, 200) * 255).astype(np.float32) / 255
    return pts


@pytest.fixture
def split(tmp_path):
    root = tmp_path / "train"
    for scenario, agents in LAYOUT.items():
        for agent_id, stamps in agents.items():
            for t in stamps:
                write_frame(root, scenario, agent_id, t, points_for(agent_id, t), meta_for(agent_id, t),
                            data=("binary", "ascii", "binary_compressed")[t % 3])
    scen = root / "2021_01_02_03_04_05"
    (scen / "data_protocol.yaml").write_text("world: {}\n")  # not an agent
    (scen / "map").mkdir()  # not an agent folder
    (scen / "650" / "000000_additional.yaml").write_text("x: 1\n")  # not a frame
    (scen / "650" / "000000_camera0.png").write_bytes(b"\x89PNG")  # not a frame
    return root


def test_write_frame_layout(split):
    pcd, yml = frame_paths(split, "2021_01_02_03_04_05", -1, 2)
    assert pcd == split / "2021_01_02_03_04_05" / "-1" / "000002.pcd" and yml == pcd.with_suffix(".yaml")
    assert pcd.read_bytes().startswith(b"# .PCD v0.7") and b"FIELDS x y z rgb" in pcd.read_bytes()[:200]
    assert not list(split.rglob(".*.tmp"))


def test_index(split):
    index = index_dataset(split)
    assert index.scenarios == ("2021_01_01_00_00_00", "2021_01_02_03_04_05")
    assert index.agent_ids("2021_01_02_03_04_05") == (-1, 650, 651)
    assert index.timestamps("2021_01_02_03_04_05", 650) == ("000000", "000002", "000004")
    assert index.agents_at("2021_01_02_03_04_05", "000002") == (-1, 650, 651)
    assert list(index.frames()) == [("2021_01_01_00_00_00", "000010"), ("2021_01_02_03_04_05", "000000"),
                                    ("2021_01_02_03_04_05", "000002"), ("2021_01_02_03_04_05", "000004")]
    assert len(index) == 7
    with pytest.raises(KeyError, match="no agent 5"):
        index.timestamps("2021_01_02_03_04_05", 5)


def test_load_frame_round_trip(split):
    index = index_dataset(split)
    for scenario, agents in LAYOUT.items():
        for agent_id, stamps in agents.items():
            for t in stamps:
                frame = load_frame(index, scenario, agent_id, t)
                assert isinstance(frame, Frame)
                np.testing.assert_array_equal(frame.points, points_for(agent_id, t))
                meta = meta_for(agent_id, t)
                np.testing.assert_array_equal(frame.lidar_pose, meta["lidar_pose"])
                assert frame.ego_speed == meta["ego_speed"] and frame.is_rsu == (agent_id < 0)
                assert frame.agent_id == agent_id and frame.scenario == scenario
                assert frame.timestamp == timestamp_str(t)
                assert frame.extra == {"true_ego_pos": [0.0] * 6, "camera0": {"cords": [1, 2, 3]}}
                ids, boxes = frame.boxes()
                assert ids.tolist() == [agent_id + 1000]
                np.testing.assert_allclose(boxes[0, 3:6], [4.0, 2.0, 1.4])
    direct = load_frame(split, "2021_01_02_03_04_05", 650, "000004")  # from the folder, no index
    np.testing.assert_array_equal(direct.points, points_for(650, 4))


def test_load_frame_not_in_index(split):
    index = index_dataset(split)
    with pytest.raises(FormatError, match=r"651.*no frame 000004 for agent 651"):
        load_frame(index, "2021_01_02_03_04_05", 651, 4)
    with pytest.raises(FormatError, match=r"000004\.yaml.*does not exist"):
        load_frame(split, "2021_01_02_03_04_05", 651, 4)


def test_unpaired_files(split):
    lone_yaml = split / "2021_01_02_03_04_05" / "651" / "000002.pcd"
    lone_yaml.unlink()
    expected = re.escape(str(lone_yaml.with_suffix(".yaml"))) + ".*" + re.escape(str(lone_yaml))
    with pytest.raises(FormatError, match=expected):
        index_dataset(split)
    with pytest.warns(UserWarning, match=expected):
        index = index_dataset(split, strict=False)
    assert index.agent_ids("2021_01_02_03_04_05") == (-1, 650)  # 651 had no other frame


def test_bad_split_dirs(tmp_path):
    with pytest.raises(FormatError, match=re.escape(str(tmp_path / "nope")) + ".*does not exist"):
        index_dataset(tmp_path / "nope")
    with pytest.raises(FormatError, match=re.escape(str(tmp_path)) + ".*holds no scenario"):
        index_dataset(tmp_path)
    (tmp_path / "scen" / "7").mkdir(parents=True)
    scen = re.escape(str(tmp_path / "scen"))
    with pytest.raises(FormatError, match=scen + ".*no agent folder with frames"):
        index_dataset(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(FormatError, match="holds no scenario"):
            index_dataset(tmp_path, strict=False)


def test_write_frame_validates_before_writing(tmp_path):
    with pytest.raises(FormatError, match="lidar_pose"):
        write_frame(tmp_path, "s", 1, 0, points_for(1, 0), {"ego_speed": 1.0})
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        write_frame(tmp_path, "s", 1, 0, points_for(1, 0)[:, :3], meta_for(1, 0))
    assert not list(tmp_path.rglob("*.*"))  # neither file written


def test_timestamp_str():
    assert timestamp_str(69) == "000069" and timestamp_str("000069") == "000069"
    assert timestamp_str(1234567) == "1234567"
    with pytest.raises(ValueError, match="digits"):
        timestamp_str("69a")


def test_rsu_frame_read_back(split):
    frame = load_frame(split, "2021_01_02_03_04_05", -1, 0)
    assert frame.is_rsu is True
    assert read_pcd(frame_paths(split, "2021_01_02_03_04_05", -1, 0)[0]).shape == (200, 4)
