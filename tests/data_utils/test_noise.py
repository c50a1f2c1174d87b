"""Pose noise and delay: repeatable per (seed, frame, agent), independent across them, right scale."""
from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from v2xdet.data_utils.delay import delay_ms, delay_steps, delayed_index
from v2xdet.data_utils.noise import noisy_pose, pose_noise, stable_key

SCEN = "2021_08_20_21_48_35"


def test_same_key_same_draw_and_every_key_part_matters():
    base = pose_noise(7, SCEN, "000070", 650, 0.2, 0.2)
    np.testing.assert_array_equal(base, pose_noise(7, SCEN, "000070", 650, 0.2, 0.2))
    np.testing.assert_array_equal(base, pose_noise(7, SCEN, 70, 650, 0.2, 0.2))  # "000070" is frame 70
    others = [pose_noise(7, SCEN, "000070", 641, 0.2, 0.2),   # other agent
              pose_noise(7, SCEN, "000070", -650, 0.2, 0.2),  # an RSU id is not its absolute value
              pose_noise(7, SCEN, "000072", 650, 0.2, 0.2),   # other frame
              pose_noise(7, SCEN + "x", "000070", 650, 0.2, 0.2),  # other scenario
              pose_noise(8, SCEN, "000070", 650, 0.2, 0.2)]   # other seed
    for other in others:
        assert not np.allclose(other, base)


def test_only_x_y_and_yaw_are_perturbed():
    noise = pose_noise(1, SCEN, "000068", 641, 0.2, 0.5)
    assert np.all(noise[[2, 3, 5]] == 0)
    assert np.all(noise[[0, 1, 4]] != 0)
    pose = np.array([10.0, -3.0, 1.9, 0.5, 45.0, -0.2])
    np.testing.assert_allclose(noisy_pose(pose, 1, SCEN, "000068", 641, 0.2, 0.5), pose + noise)


def test_empirical_std_matches_the_config():
    draws = np.array([pose_noise(3, SCEN, f"{t:06d}", agent, 0.2, 0.5)
                      for t in range(0, 4000, 2) for agent in (641, 650)])
    std = draws.std(axis=0)
    # 4000 draws: the sample std is within ~2.2 % (1 sigma) of the true one; allow 7 %.
    np.testing.assert_allclose(std[[0, 1]], [0.2, 0.2], rtol=0.07)
    np.testing.assert_allclose(std[4], 0.5, rtol=0.07)
    np.testing.assert_allclose(draws.mean(axis=0)[[0, 1, 4]], 0.0, atol=0.03)
    # independent across axes and across agents of the same frame
    assert abs(np.corrcoef(draws[:, 0], draws[:, 1])[0, 1]) < 0.08
    by_agent = draws.reshape(-1, 2, 6)
    assert abs(np.corrcoef(by_agent[:, 0, 0], by_agent[:, 1, 0])[0, 1]) < 0.1


def test_draws_do_not_depend_on_python_hash_salt():
    code = ("from v2xdet.data_utils.noise import pose_noise;"
            f"print(repr(pose_noise(5, '{SCEN}', '000070', -1, 0.2, 0.2).tolist()))")
    outs = set()
    for salt in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=salt)
        outs.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                check=True).stdout)
    assert len(outs) == 1
    assert outs.pop().strip() == repr(pose_noise(5, SCEN, "000070", -1, 0.2, 0.2).tolist())


def test_stable_key_keeps_ids_apart():
    keys = [stable_key(v) for v in (0, 1, -1, 2, -2, 641, -641)]
    assert len(set(keys)) == len(keys) and min(keys) >= 0
    assert stable_key("000069") == stable_key(69)
    with pytest.raises(TypeError):
        stable_key(True)


def test_bad_noise_arguments_are_rejected():
    with pytest.raises(ValueError, match="seed"):
        pose_noise(-1, SCEN, "000070", 1, 0.2, 0.2)
    with pytest.raises(ValueError, match="xyz_std"):
        pose_noise(1, SCEN, "000070", 1, -0.2, 0.2)


def _wild(**kw):
    base = dict(async_=True, async_mode="sim", async_overhead=100.0, seed=0, data_size=0.0,
                transmission_speed=27.0, backbone_delay=0.0)
    base.update(kw)
    return SimpleNamespace(**base)


def test_delay_sim_and_real_as_v2xvit_computes_them():
    assert delay_ms(_wild(async_overhead=-150.0), None) == 150.0
    assert delay_ms(_wild(async_=False), None) == 0.0
    rng = np.random.default_rng(0)
    expected_overhead = np.random.default_rng(0).uniform(0, 100.0)
    got = delay_ms(_wild(async_mode="real", data_size=1.06, backbone_delay=10.0), rng)
    assert got == pytest.approx(expected_overhead + 1.06 / 27 * 1000 + 10.0)
    assert delay_steps(_wild(async_overhead=250.0), SCEN, "000070", 5, is_ego=False) == 2
    assert delay_steps(_wild(async_overhead=250.0), SCEN, "000070", 5, is_ego=True) == 0
    assert delay_steps(_wild(async_overhead=99.0), SCEN, "000070", 5, is_ego=False) == 0


def test_real_delay_is_repeatable_per_agent_and_frame():
    wild = _wild(async_mode="real", async_overhead=300.0, data_size=1.06, backbone_delay=10.0)
    steps = [delay_steps(wild, SCEN, f"{t:06d}", a, False) for t in range(0, 400, 2) for a in (1, 2)]
    assert steps == [delay_steps(wild, SCEN, f"{t:06d}", a, False) for t in range(0, 400, 2) for a in (1, 2)]
    # minimum 49.3 ms, maximum 349.3 ms: 0 to 3 steps, all of them reached
    assert set(steps) == {0, 1, 2, 3}


def test_delayed_index_clamps_at_the_first_frame():
    assert delayed_index(5, 2) == 3
    assert delayed_index(1, 3) == 0
    with pytest.raises(ValueError):
        delayed_index(3, -1)
