"""Tests of cmrlab.train.inference: the sliding-window wrapper against a brute-force average and
MONAI (which does the work: the comparison checks the arguments reach it unchanged); window stacks."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.inferers import sliding_window_inference as monai_sliding_window
from torch import nn

from cmrlab.data.patches import slice_windows
from cmrlab.errors import ArgumentError
from cmrlab.nn.registry import build_model
from cmrlab.train.inference import predict_volume_windows, sliding_window_inference


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


def _brute_force(x, roi, starts, predictor):
    """The plain ("constant") blend written out: each voxel is the mean of the predictions of the
    windows that cover it, for windows starting at the hand-listed ``starts`` (one list per axis)."""
    out = torch.zeros(x.shape[0], 1, *x.shape[2:], dtype=torch.float64)
    count = torch.zeros_like(out)
    for corner in np.stack(np.meshgrid(*starts, indexing="ij"), -1).reshape(-1, len(starts)):
        sl = (slice(None), slice(None), *(slice(int(a), int(a) + r) for a, r in zip(corner, roi)))
        out[sl] += predictor(x[sl])
        count[sl] += 1
    return out / count


def _position_dependent(w):
    """A predictor whose output depends on where the window is (its mean), not only on the voxel:
    the blend then shows which windows were used and how they were weighted."""
    return w ** 2 + w.mean(dim=tuple(range(2, w.ndim)), keepdim=True)


@pytest.mark.parametrize("shape, roi, overlap, starts", [
    ((1, 1, 10), (4,), 0.5, [[0, 2, 4, 6]]),                      # step int(4 · 0.5) = 2
    ((1, 1, 9), (4,), 0.0, [[0, 4, 5]]),                          # the last window moved back to the border
    ((2, 1, 20), (8,), 0.25, [[0, 6, 12]]),                       # step int(8 · 0.75) = 6
    ((1, 1, 7, 6), (3, 6), 0.34, [[0, 1, 2, 3, 4], [0]]),         # step int(3 · 0.66) = 1; a whole axis: 1 window
])
def test_constant_blend_equals_the_brute_force_average(shape, roi, overlap, starts):
    x = torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    got = sliding_window_inference(x, roi, _position_dependent, overlap=overlap, sw_batch_size=2)
    torch.testing.assert_close(got, _brute_force(x, roi, starts, _position_dependent))


def test_gaussian_blend_weighs_the_window_centres():
    """Two windows of 4 over 6 voxels (starts 0 and 2) predicting the constants 0 and 1: with a
    plain mean the shared voxels 2 and 3 get 1/2; with Gaussian weights each shared voxel leans to
    the window whose centre is nearer, by the ratio of the Gaussians of the two distances."""
    x = torch.zeros(1, 1, 6, dtype=torch.float64)
    calls = []

    def which_window(w):
        calls.append(len(calls))
        return torch.full_like(w, float(len(calls) - 1))

    flat = sliding_window_inference(x, (4,), which_window, overlap=0.5)
    torch.testing.assert_close(flat[0, 0], torch.tensor([0, 0, 0.5, 0.5, 1, 1], dtype=torch.float64))
    calls.clear()
    g = sliding_window_inference(x, (4,), which_window, overlap=0.5, mode="gaussian", sigma_scale=0.25)[0, 0]
    # window centres at 1.5 and 3.5; voxel 2 is 0.5 from the first centre, 1.5 from the second
    s = 0.25 * 4
    w_near, w_far = np.exp(-0.5**2 / (2 * s**2)), np.exp(-1.5**2 / (2 * s**2))
    assert float(g[2]) == pytest.approx(w_far / (w_near + w_far), rel=1e-5)
    assert float(g[3]) == pytest.approx(w_near / (w_near + w_far), rel=1e-5)
    assert (g[:2] == 0).all() and (g[4:] == 1).all()


def test_argument_checks_name_the_argument():
    x = torch.rand(1, 1, 8, 8)
    for kwargs, pattern in [({"overlap": -0.1}, r"overlap\[0\]"), ({"overlap": float("nan")}, "overlap"),
                            ({"overlap": (0.1, 0.2, 0.3)}, "one per spatial axis"),
                            ({"mode": "gausian"}, "did you mean 'gaussian'"), ({"sw_batch_size": 0}, "sw_batch_size"),
                            ({"sigma_scale": 0}, r"sigma_scale\[0\]"), ({"progress": "yes"}, "progress"),
                            ({"roi_size": (4, 4.5)}, r"roi_size\[1\]"), ({"roi_size": "44"}, "roi_size")]:
        args = {"roi_size": (4, 4), **kwargs}
        with pytest.raises(ArgumentError, match=pattern):
            sliding_window_inference(x, args.pop("roi_size"), lambda w: w, **args)
    with pytest.raises(ArgumentError, match="inputs must be a tensor"):
        sliding_window_inference(np.zeros((1, 1, 8)), 4, lambda w: w)
    with pytest.raises(ArgumentError, match="predictor must be callable"):
        sliding_window_inference(x, 4, None)
    whole = sliding_window_inference(x, (-1, 4), lambda w: w + 1)            # -1: the whole axis
    torch.testing.assert_close(whole, x + 1)


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
