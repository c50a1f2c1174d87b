import numpy as np
import torch

from v2xdet.data_utils.preprocess import decode, encode


def test_encode_by_hand_and_zero_on_the_anchor():
    anchor = np.array([1.0, 2.0, -1.0, 3.0, 4.0, 2.0, 0.5])
    box = np.array([4.0, -3.0, 0.0, 6.0, 2.0, 2.0, 1.0])
    np.testing.assert_allclose(encode(box, anchor), [0.6, -1.0, 0.5, np.log(2), np.log(0.5), 0.0, 0.5])
    np.testing.assert_allclose(encode(anchor, anchor), np.zeros(7), atol=1e-12)


def test_round_trip_numpy_and_torch():
    rng = np.random.default_rng(0)
    anchors = np.column_stack([rng.normal(size=(50, 3)) * 20, rng.uniform(1, 5, (50, 3)),
                               rng.uniform(-3, 3, 50)])
    boxes = np.column_stack([rng.normal(size=(50, 3)) * 20, rng.uniform(1, 5, (50, 3)),
                             rng.uniform(-3, 3, 50)])
    np.testing.assert_allclose(decode(encode(boxes, anchors), anchors), boxes, atol=1e-9)
    t_boxes, t_anchors = torch.from_numpy(boxes), torch.from_numpy(anchors)
    deltas = encode(t_boxes, t_anchors)
    assert isinstance(deltas, torch.Tensor)
    np.testing.assert_allclose(deltas.numpy(), encode(boxes, anchors), atol=1e-12)
    np.testing.assert_allclose(decode(deltas, t_anchors).numpy(), boxes, atol=1e-9)
    # broadcasting: one anchor grid (H, W, A, 7) against a batch of deltas (B, H, W, A, 7)
    grid = anchors[:12].reshape(2, 3, 2, 7)
    batch = np.stack([encode(boxes[:12].reshape(2, 3, 2, 7), grid)] * 2)
    np.testing.assert_allclose(decode(batch, grid)[1], boxes[:12].reshape(2, 3, 2, 7), atol=1e-9)
