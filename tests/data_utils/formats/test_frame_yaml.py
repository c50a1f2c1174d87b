"""Frame yaml: exact read-after-write, defaults, kept keys, and errors naming file / vehicle / key."""
from __future__ import annotations

import re

import numpy as np
import pytest
import yaml

from v2xdet.data_utils.formats import FormatError, read_frame_yaml, write_frame_yaml


def vehicle(**over):
    veh = {"location": [10.0, -3.5, 0.02], "center": [0.0, -0.06, 0.78], "extent": [2.25, 1.0, 0.76],
           "angle": [0.0, -90.27, 0.0], "speed": 3.2}
    veh.update(over)
    return veh


def frame(**over):
    meta = {"lidar_pose": [-275.6, -19.8, 1.93, -0.0029, 89.7, 0.135], "ego_speed": 16.5,
            "true_ego_pos": [-275.6, -19.3, 0.03, -0.0029, 89.7, 0.135], "vehicles": {4306: vehicle()},
            "camera0": {"cords": [1.0, 2.0, 3.0, 0.0, 0.0, 0.0], "intrinsic": [[335.6, 0.0, 400.0]]},
            "plan_trajectory": [[-275.6, -18.0, 21]]}
    meta.update(over)
    return meta


def write_raw(path, meta):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(meta))
    return path


def test_read_after_write_is_exact(tmp_path):
    rng = np.random.default_rng(1)
    awkward = [1e-38, 0.1, 1 / 3, -0.0, 1e20, 123456789.123456789, float(np.float32(0.7)), 5e-324]
    meta = frame(lidar_pose=np.array(awkward[:6]), ego_speed=np.float32(2.5),
                 vehicles={7: vehicle(location=rng.normal(size=3) * 100, speed=awkward[6]),
                           -2: vehicle(angle=(0.1, 179.99, -0.2), extent=np.float32([2.2, 0.9, 0.8]))},
                 noise=rng.normal(size=(2, 3)), flag=np.bool_(True), count=np.int64(4))
    path = write_frame_yaml(tmp_path / "000001.yaml", meta)
    out = read_frame_yaml(path)
    assert out["lidar_pose"] == awkward[:6]  # float equality, element by element
    assert out["ego_speed"] == 2.5
    assert out["vehicles"][7]["location"] == meta["vehicles"][7]["location"].tolist()
    assert out["vehicles"][-2]["extent"] == np.float32([2.2, 0.9, 0.8]).tolist()
    assert out["noise"] == meta["noise"].tolist() and out["flag"] is True and out["count"] == 4
    assert [p.name for p in tmp_path.iterdir()] == ["000001.yaml"]  # atomic: no temp file left
    assert "!!python" not in path.read_text()  # plain yaml any loader reads


def test_defaults_and_kept_keys(tmp_path):
    meta = frame()
    del meta["ego_speed"]
    out = read_frame_yaml(write_raw(tmp_path / "-3" / "000000.yaml", meta))
    assert out["ego_speed"] == 0.0
    assert out["RSU"] is True  # negative agent folder
    assert out["camera0"] == meta["camera0"] and out["plan_trajectory"] == meta["plan_trajectory"]
    assert read_frame_yaml(write_raw(tmp_path / "8" / "000000.yaml", meta))["RSU"] is False
    assert read_frame_yaml(write_raw(tmp_path / "9" / "000000.yaml", frame(RSU=True)))["RSU"] is True
    assert "RSU" not in read_frame_yaml(write_raw(tmp_path / "x" / "000000.yaml", meta))
    assert read_frame_yaml(tmp_path / "x" / "000000.yaml", agent_id=-1)["RSU"] is True


def test_vehicles_normalised(tmp_path):
    out = read_frame_yaml(write_raw(tmp_path / "f.yaml", frame(vehicles={"12": vehicle(speed=0)})))
    assert list(out["vehicles"]) == [12]
    assert isinstance(out["vehicles"][12]["speed"], float)
    assert read_frame_yaml(write_raw(tmp_path / "g.yaml", frame(vehicles=None)))["vehicles"] == {}


def test_loader_is_the_c_one_when_available():
    from v2xdet.data_utils.formats import frame_yaml
    if hasattr(yaml, "CSafeLoader"):
        assert frame_yaml._Loader is yaml.CSafeLoader
    else:
        assert frame_yaml._Loader is yaml.SafeLoader


@pytest.mark.parametrize("meta, match", [
    ({k: v for k, v in frame().items() if k != "lidar_pose"}, "no 'lidar_pose' key"),
    (frame(lidar_pose=[1, 2, 3, 4, 5]), "'lidar_pose' must be a list of 6 finite numbers"),
    (frame(lidar_pose=[1, 2, 3, 4, 5, ".nan"]), "'lidar_pose' must be a list of 6"),
    (frame(predicted_ego_pos="here"), "'predicted_ego_pos' must be a list of 6"),
    (frame(ego_speed="fast"), "'ego_speed' must be a finite number"),
    (frame(RSU="no"), "'RSU' must be true or false"),
    (frame(vehicles=[1, 2]), "'vehicles' must be a mapping"),
    (frame(vehicles={"car": vehicle()}), "id 'car' is not an integer"),
    (frame(vehicles={55: {k: v for k, v in vehicle().items() if k != "extent"}}),
     "vehicle 55 has no 'extent'"),
    (frame(vehicles={55: vehicle(angle=[0, 1])}), "vehicle 55 key 'angle' must be a list of 3"),
    (frame(vehicles={55: vehicle(location=[0, "a", 1])}), "vehicle 55 key 'location'"),
    (frame(vehicles={55: vehicle(extent=[1, -1, 1])}), "vehicle 55 key 'extent' holds half sizes"),
    (frame(vehicles={55: vehicle(speed=True)}), "vehicle 55 key 'speed' must be a finite number"),
    (frame(vehicles={55: "car"}), "vehicle 55 must be a mapping"),
])
def test_malformed_frames_name_file_and_key(tmp_path, meta, match):
    path = write_raw(tmp_path / "5" / "000003.yaml", meta)
    if meta.get("lidar_pose") and ".nan" in meta["lidar_pose"]:
        path.write_text(path.read_text().replace("'.nan'", ".nan"))
    with pytest.raises(FormatError, match=re.escape(str(path)) + ".*" + re.escape(match)):
        read_frame_yaml(path)
    with pytest.raises(FormatError, match=re.escape(match)):
        write_frame_yaml(tmp_path / "out.yaml", meta)  # the writer validates the same way
    assert not (tmp_path / "out.yaml").exists()


@pytest.mark.parametrize("text, match", [("a: [1, 2\n", "not valid yaml"),
                                         ("- 1\n- 2\n", "must be a mapping")])
def test_not_a_frame(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(FormatError, match=re.escape(str(path)) + ".*" + match):
        read_frame_yaml(path)


def test_missing_file(tmp_path):
    with pytest.raises(FormatError, match=re.escape(str(tmp_path / "no.yaml")) + ".*does not exist"):
        read_frame_yaml(tmp_path / "no.yaml")
