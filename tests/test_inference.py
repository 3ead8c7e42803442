"""Tests of cmrlab.train.inference: MONAI's sliding_window_inference as the oracle; window stacks."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.inferers import sliding_window_inference as monai_sliding_window
from torch import nn

from cmrlab.data.patches import slice_windows
from cmrlab.errors import ArgumentError
from cmrlab.nn.registry import build_model
from cmrlab.train.inference import (
    importance_map,
    predict_volume_windows,
    sliding_window_inference,
    window_starts_nd,
)


def _net(spatial_dims: int) -> nn.Module:
    torch.manual_seed(0)
    conv = nn.Conv3d if spatial_dims == 3 else nn.Conv2d
    return nn.Sequential(conv(2, 4, 3, padding=1), nn.Tanh(), conv(4, 3, 1)).eval()


@pytest.mark.parametrize("shape, roi, overlap, mode, batch", [
    ((2, 2, 20, 17, 9), (8, 8, 8), 0.25, "constant", 1),
    ((1, 2, 20, 17, 9), (8, 6, 4), 0.5, "gaussian", 3),
    ((1, 2, 20, 17, 9), (32, 8, 12), 0.4, "gaussian", 2),     # ROI larger than the image: padded
    ((1, 2, 20, 17, 9), (20, 17, 9), 0.0, "constant", 4),     # one window
    ((2, 2, 33, 40), (16, 16), 0.75, "gaussian", 5),          # 2D
])
def test_equals_monai(shape, roi, overlap, mode, batch):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    net = _net(len(shape) - 2)
    ours = sliding_window_inference(x, roi, net, overlap=overlap, mode=mode, sw_batch_size=batch)
    oracle = monai_sliding_window(x, roi, batch, net, overlap=overlap, mode=mode)
    assert ours.shape == oracle.shape == (shape[0], 3, *shape[2:])
    torch.testing.assert_close(ours, torch.as_tensor(oracle), rtol=1e-5, atol=1e-6)


def test_window_positions_and_weights():
    assert window_starts_nd([20], [8], [0.25]) == [[0, 6, 12]]        # step int(8 · 0.75) = 6
    assert window_starts_nd([10], [10], [0.5]) == [[0]]
    assert window_starts_nd([9], [4], [0.0]) == [[0, 4, 5]]           # the last one moved back
    g = importance_map((5, 3), "gaussian", 0.125)
    assert g.shape == (5, 3) and g[2, 1] == 1.0 and torch.allclose(g, g.flip(0))
    assert g.min() >= 1e-3
    assert torch.equal(importance_map((4, 4)), torch.ones(4, 4))


def test_blending_a_linear_predictor_is_exact_and_device_follows_input():
    # a predictor that returns its own input: any blending of overlapping windows gives it back
    x = torch.rand(1, 1, 30, 31, dtype=torch.float64)
    for mode in ("constant", "gaussian"):
        out = sliding_window_inference(x, (12, 10), lambda w: w * 2, overlap=0.6, mode=mode, sw_batch_size=7)
        torch.testing.assert_close(out, 2 * x)
        assert out.device == x.device and out.dtype == torch.float64
    with pytest.raises(ArgumentError, match="overlap"):
        sliding_window_inference(x, (12, 10), lambda w: w, overlap=1.0)
    with pytest.raises(ArgumentError, match="mode"):
        sliding_window_inference(x, (12, 10), lambda w: w, mode="box")
    with pytest.raises(ArgumentError, match="predictor must return"):
        sliding_window_inference(x, (12, 10), lambda w: w[..., :5])


def test_predict_volume_windows_matches_manual_average():
    model = build_model("pspunet", base_filters=2, depth=2)
    model.train()
    volume = np.random.default_rng(0).random((16, 16, 5)).astype(np.float32)
    probs = predict_volume_windows(model, volume, batch_size=2)
    assert probs.shape == (4, 16, 16, 5)
    torch.testing.assert_close(probs.sum(0), torch.ones(16, 16, 5))
    assert model.training                                               # its mode is given back
    model.eval()
    windows, _ = slice_windows(torch.from_numpy(volume))
    with torch.no_grad():
        p = model(windows[:, None]).softmax(1)                           # (3, 4, 3, X, Y)
    manual_slice2 = (p[0, :, 2] + p[1, :, 1] + p[2, :, 0]) / 3          # slice 2 is in all 3 windows
    torch.testing.assert_close(probs[..., 2], manual_slice2, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(probs[..., 0], p[0, :, 0], rtol=1e-5, atol=1e-6)   # first slice: one window
    with pytest.raises(ArgumentError, match="model must map"):
        predict_volume_windows(lambda w: w[:, :, 0], volume)
    if torch.cuda.is_available():
        gpu = predict_volume_windows(model.cuda(), torch.from_numpy(volume).cuda())
        assert gpu.device.type == "cuda"
        torch.testing.assert_close(gpu.cpu(), probs, rtol=1e-4, atol=1e-5)
