import numpy as np
import pytest

from v2xdet.data_utils.preprocess import augment, augmentation_matrix, conjugate_transform
from v2xdet.geometry.boxes import points_in_boxes
from v2xdet.geometry.transforms import transform_points, x_to_world

STEPS = [{"NAME": "random_world_flip", "ALONG_AXIS_LIST": ["x", "y"]},
         {"NAME": "random_world_rotation", "WORLD_ROT_ANGLE": [-0.785, 0.785]},
         {"NAME": "random_world_scaling", "WORLD_SCALE_RANGE": [0.9, 1.1]}]


def scene(rng):
    boxes = np.array([[5.0, 2.0, -1.0, 4.0, 1.8, 1.5, 0.3], [-8.0, -3.0, -0.8, 4.5, 2.0, 1.6, 2.5]])
    pts = np.column_stack([rng.uniform(-12, 12, 2000), rng.uniform(-6, 6, 2000), rng.uniform(-2, 0.5, 2000),
                           rng.uniform(0, 1, 2000)]).astype(np.float32)
    return pts, boxes


@pytest.mark.parametrize("seed", range(6))
def test_points_stay_in_their_boxes(seed):
    rng = np.random.default_rng(100 + seed)
    pts, boxes = scene(rng)
    inside = points_in_boxes(pts, boxes)
    assert inside.sum() > 20
    (moved,), moved_boxes, _ = augment([pts], boxes, STEPS, np.random.default_rng(seed))
    # points on a face may flip in/out by rounding; none lie that close here
    np.testing.assert_array_equal(points_in_boxes(moved, moved_boxes), inside)
    assert moved.dtype == np.float32 and np.all(moved[:, 3] == pts[:, 3])


def test_same_seed_same_transform_and_every_agent_moves_alike():
    rng = np.random.default_rng(3)
    a, boxes = scene(rng)
    b = a[::2].copy()
    out1 = augment([a, b], boxes, STEPS, np.random.default_rng(7))
    out2 = augment([a, b], boxes, STEPS, np.random.default_rng(7))
    np.testing.assert_array_equal(out1[0][0], out2[0][0])
    np.testing.assert_array_equal(out1[1], out2[1])
    np.testing.assert_array_equal(out1[0][1], out1[0][0][::2])  # one transform for every agent
    other = augment([a], boxes, STEPS, np.random.default_rng(8))
    assert not np.allclose(other[1], out1[1])


def test_flip_rotation_scale_semantics():
    steps = [{"NAME": "random_world_flip", "ALONG_AXIS_LIST": ["x"]}]
    flips = {bool(augmentation_matrix(steps, np.random.default_rng(s))[0][1, 1] < 0) for s in range(20)}
    assert flips == {True, False}
    box = np.array([[1.0, 2.0, 0.0, 4.0, 2.0, 1.5, 0.5]])
    for s in range(20):
        matrix, _ = augmentation_matrix(steps, np.random.default_rng(s))
        if matrix[1, 1] < 0:
            _, out, _ = augment([np.zeros((0, 4))], box, steps, np.random.default_rng(s))
            np.testing.assert_allclose(out, [[1.0, -2.0, 0.0, 4.0, 2.0, 1.5, -0.5]])
            break
    rot = [{"NAME": "random_world_rotation", "WORLD_ROT_ANGLE": [0.25, 0.25]},
           {"NAME": "random_world_scaling", "WORLD_SCALE_RANGE": [2.0, 2.0]}]
    _, out, matrix = augment([np.zeros((0, 4))], box, rot, np.random.default_rng(0))
    c, s = np.cos(0.25), np.sin(0.25)
    np.testing.assert_allclose(out[0], [2 * (c - 2 * s), 2 * (s + 2 * c), 0.0, 8.0, 4.0, 3.0, 0.75])
    assert np.isclose(np.linalg.det(matrix[:3, :3]), 8.0)


def test_conjugated_transform_keeps_agents_aligned():
    rng = np.random.default_rng(1)
    pts_agent = rng.normal(size=(50, 4))
    agent_to_ego = np.linalg.inv(x_to_world([0, 0, 0, 0, 0, 0])) @ x_to_world([10, -3, 0.2, 1, 30, -2])
    steps = STEPS + [{"NAME": "random_world_flip", "ALONG_AXIS_LIST": ["x"]}]
    (aug_agent, aug_ego), _, matrix = augment([pts_agent, transform_points(pts_agent, agent_to_ego)],
                                              np.zeros((0, 7)), steps, np.random.default_rng(5))
    moved = transform_points(aug_agent, conjugate_transform(agent_to_ego, matrix))
    np.testing.assert_allclose(moved, aug_ego, atol=1e-9)


def test_bad_steps_are_named():
    with pytest.raises(ValueError, match=r"data_augment\[0\].NAME"):
        augment([np.zeros((1, 4))], np.zeros((0, 7)), [{"NAME": "random_cutout"}], np.random.default_rng(0))
    with pytest.raises(ValueError, match="WORLD_ROT_ANGLE"):
        augmentation_matrix([{"NAME": "random_world_rotation", "WORLD_ROT_ANGLE": [1.0]}],
                            np.random.default_rng(0))
