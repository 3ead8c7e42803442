"""Tests of the cardiac chapter 6-7 models: the regression U-Net with its fixed scanning module
(cmrlab.nn.models.regression_unet) and the ES/ED FrameDetector (cmrlab.nn.models.frame_detector).

Full-width models are only built on the meta device (parameter counts); forward/backward runs use
a few channels and small inputs.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cmrlab.errors import ArgumentError
from cmrlab.nn.models.frame_detector import FrameDetector
from cmrlab.nn.models.regression_unet import RegressionUNet, ScanningModule
from cmrlab.nn.receptive_field import count_parameters, receptive_field_of

VOXEL_ML = 10.0 * 2.0 * 2.0 / 1000.0  # default spacing (10, 2, 2) mm → 0.04 ml per voxel


# ------------------------------------------------------------------------------ synthetic shapes

def ellipse(a: float, b: float, centre=(44.0, 44.0), size: int = 88, supersample: int = 1) -> np.ndarray:
    """Coverage of an ellipse with semi-axes ``a`` along W (columns) and ``b`` along H (rows).

    Pixel (i, j) covers [i, i+1)×[j, j+1), so the default centre is a pixel corner;
    ``supersample`` > 1 gives fractional coverage (an anti-aliased shape whose pixel sum
    approaches the true area π·a·b).
    """
    s = supersample
    offsets = (np.arange(s) + 0.5) / s
    rows = (np.arange(size)[:, None] + offsets[None, :]).reshape(-1)
    rr, cc = np.meshgrid(rows, rows, indexing="ij")
    inside = ((cc - centre[1]) / a) ** 2 + ((rr - centre[0]) / b) ** 2 <= 1.0
    return inside.reshape(size, s, size, s).mean(axis=(1, 3))


def disc(r: float, **kwargs) -> np.ndarray:
    return ellipse(r, r, **kwargs)


def as_cam(*slices: np.ndarray, dtype=torch.float64) -> torch.Tensor:
    """(1, 1, D, H, W) tensor from D slices."""
    return torch.from_numpy(np.stack(slices)).to(dtype)[None, None]


# ------------------------------------------------------------------------------ scanning module

def test_scanning_module_has_no_trainable_state():
    scanner = ScanningModule()
    assert list(scanner.parameters()) == []
    assert count_parameters(scanner, trainable_only=False) == 0
    assert scanner.area_weight.shape == (1, 1, 25, 25)
    assert torch.equal(scanner.area_weight, torch.ones(1, 1, 25, 25))
    assert not scanner.area_weight.requires_grad
    assert scanner.state_dict() == {}  # the fixed kernel is rebuilt from area_kernel
    assert count_parameters(RegressionUNet(base_filters=2).scanner, trainable_only=False) == 0


def test_binary_discs_give_exact_areas_diameters_and_volume():
    radii = (6, 8, 10, 12)  # 24 pixels wide at most: each disc fits in the 25×25 window
    masks = [disc(r) for r in radii]
    out = ScanningModule()(as_cam(*masks))
    counts = [float(m.sum()) for m in masks]
    assert out.area[0].tolist() == counts
    # a disc centred on a pixel corner with integer radius r is exactly 2r pixels across
    assert out.diameter[0].tolist() == [2.0 * r for r in radii]
    assert out.volume.item() == pytest.approx(sum(counts) * VOXEL_ML, rel=1e-12)
    for count, r in zip(counts, radii):
        assert count == pytest.approx(math.pi * r * r, rel=0.04)
    # π̂ is the mean of the per-slice 4A/d²
    per_slice = [4 * c / (2 * r) ** 2 for c, r in zip(counts, radii)]
    assert out.pi_per_slice[0].tolist() == pytest.approx(per_slice, rel=1e-12)
    assert out.pi.item() == pytest.approx(np.mean(per_slice), rel=1e-12)


@pytest.mark.parametrize("r, centre", [(11.3, (40.2, 47.9)), (9.0, (30.0, 55.5)), (11.8, (44.0, 44.0))])
def test_antialiased_disc_gives_pi(r, centre):
    cam = as_cam(disc(r, centre=centre, supersample=8))
    out = ScanningModule()(cam)
    assert out.area.item() == pytest.approx(math.pi * r * r, rel=3e-3)
    assert out.diameter.item() == pytest.approx(2 * r, rel=1e-2)
    assert out.pi.item() == pytest.approx(math.pi, rel=1e-2)


def test_ellipse_gives_the_circularity_ratio_below_pi():
    a, b = 12.0, 7.0  # along W and along H
    out = ScanningModule()(as_cam(ellipse(a, b, centre=(45.3, 41.7), supersample=8)))
    assert out.area.item() == pytest.approx(math.pi * a * b, rel=3e-3)
    assert out.diameter.item() == pytest.approx(a + b, rel=1e-2)  # ½(2b vertical + 2a horizontal)
    expected = 4 * math.pi * a * b / (a + b) ** 2
    assert out.pi.item() == pytest.approx(expected, rel=2e-2)
    assert out.pi.item() < 0.95 * math.pi


def test_area_is_the_largest_object_that_fits_the_window():
    big, small = disc(10, centre=(25.5, 25.5)), disc(5, centre=(65.5, 65.5))
    out = ScanningModule()(as_cam(big + small))
    assert out.area.item() == float(big.sum())  # the small blob elsewhere is ignored
    # an object larger than the window: exactly one full window of ones
    square = np.zeros((88, 88))
    square[20:60, 10:50] = 1.0
    out = ScanningModule()(as_cam(square))
    assert out.area.item() == 625.0
    assert out.diameter.item() == 40.0
    assert ScanningModule(area_kernel=45)(as_cam(square)).area.item() == 40.0 * 40.0


def test_volume_follows_spacing_per_case():
    masks = torch.stack([as_cam(disc(8), disc(9))[0], as_cam(disc(10), disc(4))[0]])  # (2, 1, 2, 88, 88)
    counts = masks.sum(dim=(1, 3, 4))  # each object fits its window
    spacing = torch.tensor([[10.0, 2.0, 2.0], [8.0, 1.5, 1.25]])
    out = ScanningModule()(masks, spacing)
    expected = counts.sum(dim=1) * spacing.prod(dim=1) / 1000.0
    torch.testing.assert_close(out.volume, expected)
    default = ScanningModule()(masks).volume
    torch.testing.assert_close(default, counts.sum(dim=1) * VOXEL_ML)
    torch.testing.assert_close(ScanningModule()(masks, (5.0, 2.0, 2.0)).volume, default / 2)
    torch.testing.assert_close(ScanningModule(spacing=(5.0, 2.0, 2.0))(masks).volume, default / 2)


def test_empty_slice_gives_zero_pi_and_counts_in_the_mean():
    out = ScanningModule()(as_cam(disc(10, supersample=8), np.zeros((88, 88))))
    assert torch.isfinite(out.pi_per_slice).all()
    assert out.area[0, 1].item() == 0.0 and out.pi_per_slice[0, 1].item() == 0.0
    assert out.pi.item() == pytest.approx(out.pi_per_slice[0, 0].item() / 2, rel=1e-12)


def test_scanning_is_deterministic_and_differentiable():
    torch.manual_seed(0)
    cam = torch.rand(2, 1, 3, 88, 88, dtype=torch.float64)
    first, second = ScanningModule()(cam), ScanningModule()(cam.clone())
    for a, b in zip(first, second):
        assert torch.equal(a, b)
    # the gradient of the volume is the voxel volume inside the winning 25×25 window(s), 0 elsewhere
    cam = as_cam(disc(10, centre=(30.0, 30.0), supersample=4)).requires_grad_(True)
    ScanningModule()(cam).volume.sum().backward()
    grad = cam.grad[0, 0, 0]
    assert grad.sum().item() == pytest.approx(625 * VOXEL_ML, rel=1e-9)
    assert grad[30, 30].item() > 0
    assert grad[70:, :].abs().sum().item() == 0.0 and grad[:, 70:].abs().sum().item() == 0.0
    assert (grad >= 0).all()


def test_scanning_module_follows_dtype_and_device():
    scanner = ScanningModule().to(torch.float64)
    assert scanner.area_weight.dtype == torch.float64
    assert ScanningModule().to("meta").area_weight.device.type == "meta"
    out = ScanningModule()(as_cam(disc(7), dtype=torch.float32))  # float32 CAM, float32 kernel
    assert out.volume.dtype == torch.float32


@pytest.mark.parametrize(
    "cam, spacing, match",
    [
        (torch.rand(1, 3, 88, 88), None, "shape"),
        (torch.rand(1, 2, 3, 88, 88), None, "shape"),
        (torch.rand(1, 1, 3, 20, 88), None, "area_kernel"),
        (torch.ones(1, 1, 3, 88, 88, dtype=torch.int64), None, "floating"),
        (torch.rand(1, 1, 3, 88, 88), (2.0, 2.0), "spacing"),
        (torch.rand(1, 1, 3, 88, 88), (10.0, -2.0, 2.0), "spacing"),
        (torch.rand(1, 1, 3, 88, 88), "10,2,2", "spacing"),
        (torch.rand(2, 1, 3, 88, 88), torch.ones(3, 3), "spacing"),
        (torch.rand(1, 1, 3, 88, 88), torch.tensor([10.0, 0.0, 2.0]), "spacing"),
    ],
)
def test_scanning_module_rejects_bad_input(cam, spacing, match):
    with pytest.raises(ArgumentError, match=match):
        ScanningModule()(cam, spacing)


def test_scanning_module_rejects_bad_settings():
    with pytest.raises(ArgumentError, match="area_kernel"):
        ScanningModule(area_kernel=0)
    with pytest.raises(ArgumentError, match="spacing"):
        ScanningModule(spacing=(1.0, float("nan"), 1.0))
    with pytest.raises(ArgumentError, match="min_diameter"):
        ScanningModule(min_diameter=0.0)


# ------------------------------------------------------------------------------ regression U-Net

def test_regression_unet_parameter_counts():
    thesis = 21.87e6
    with torch.device("meta"):
        default = RegressionUNet()
        four_pool = RegressionUNet(base_filters=32, depth=4)
    assert count_parameters(default) == 21_711_297
    assert count_parameters(four_pool) == 21_884_897
    assert count_parameters(default, trainable_only=False) == 21_711_297  # nothing frozen, no extra
    for model in (default, four_pool):
        assert abs(count_parameters(model) - thesis) / thesis < 0.01
    assert default.widths == (64, 128, 256, 512) and four_pool.widths == (32, 64, 128, 256, 512)


def test_regression_unet_uses_keras_batch_norm():
    norms = [m for m in RegressionUNet(base_filters=2).modules() if isinstance(m, torch.nn.BatchNorm3d)]
    assert len(norms) == 2 * (3 + 1 + 3)
    assert all(m.momentum == 0.01 and m.eps == 1e-3 for m in norms)


@pytest.mark.parametrize("slices", [1, 3, 8])
def test_regression_unet_shapes_for_any_number_of_slices(slices):
    torch.manual_seed(0)
    model = RegressionUNet(base_filters=2)
    out = model(torch.rand(1, 1, slices, 88, 88))
    assert out.volume.shape == (1,) and out.pi.shape == (1,)
    assert out.cam.shape == (1, 1, slices, 88, 88)
    assert out.bottleneck.shape == (1, 16, slices, 11, 11)
    assert out.area.shape == out.diameter.shape == (1, slices)
    assert ((out.cam > 0) & (out.cam < 1)).all()
    # the volume and π̂ are the scanning module's reading of the CAM
    scan = model.scanner(out.cam)
    torch.testing.assert_close(out.volume, scan.volume)
    torch.testing.assert_close(out.pi, scan.pi)
    torch.testing.assert_close(out.volume, out.area.sum(dim=1) * VOXEL_ML)


def test_regression_unet_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = RegressionUNet(base_filters=1)
    out = model(torch.rand(2, 1, 2, 88, 88), spacing=(10.0, 2.0, 2.0))
    target = torch.tensor([120.0, 80.0])
    loss = (
        (out.volume - target).abs().mean()
        + 100 * (out.pi - math.pi).abs().mean()
        + 1e-3 * (out.bottleneck.abs().sum() + out.cam.abs().sum())
    )
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.count_nonzero(param.grad) > 0, name


def test_regression_unet_is_deterministic_in_eval_and_spacing_scales_volume():
    torch.manual_seed(0)
    model = RegressionUNet(base_filters=1).eval()
    x = torch.rand(1, 1, 3, 88, 88)
    with torch.no_grad():
        first, second = model(x), model(x)
        halved = model(x, spacing=(5.0, 2.0, 2.0))
    for a, b in zip(first, second):
        assert torch.equal(a, b)
    torch.testing.assert_close(halved.volume, first.volume / 2)
    assert torch.equal(halved.pi, first.pi)


def test_regression_unet_other_builds_run():
    torch.manual_seed(0)
    out = RegressionUNet(base_filters=1, depth=4)(torch.rand(1, 1, 2, 96, 96))
    assert out.bottleneck.shape == (1, 16, 2, 6, 6) and out.cam.shape == (1, 1, 2, 96, 96)
    out = RegressionUNet(in_channels=2, base_filters=1, depth=1, area_kernel=9)(torch.rand(1, 2, 1, 16, 16))
    assert out.cam.shape == (1, 1, 1, 16, 16)


@pytest.mark.parametrize(
    "x, match",
    [
        (torch.rand(1, 88, 88), "dimensions"),
        (torch.rand(1, 2, 3, 88, 88), "channel"),
        (torch.rand(1, 1, 3, 90, 88), "divisible"),
        (torch.ones(1, 1, 3, 88, 88, dtype=torch.int64), "floating"),
        (np.zeros((1, 1, 3, 88, 88)), "Tensor"),
    ],
)
def test_regression_unet_rejects_bad_input(x, match):
    with pytest.raises(ArgumentError, match=match):
        RegressionUNet(base_filters=1)(x)


def test_regression_unet_rejects_bad_settings_and_unfit_sizes():
    with pytest.raises(ArgumentError, match="base_filters"):
        RegressionUNet(base_filters=0)
    with pytest.raises(ArgumentError, match="depth"):
        RegressionUNet(depth=0)
    with pytest.raises(ArgumentError, match="divisible by 2\\*\\*depth = 16"):
        RegressionUNet(base_filters=1, depth=4)(torch.rand(1, 1, 2, 88, 88))  # why the default has 3
    with pytest.raises(ArgumentError, match="area_kernel"):
        RegressionUNet(base_filters=1, depth=1)(torch.rand(1, 1, 2, 16, 16))


# ------------------------------------------------------------------------------ FrameDetector

def test_frame_detector_parameter_counts():
    with torch.device("meta"):
        thesis_build = FrameDetector()
        half = FrameDetector(base_filters=32)
    assert count_parameters(thesis_build) == 4_692_642
    assert abs(count_parameters(thesis_build) - 4.7e6) / 4.7e6 < 0.01
    assert count_parameters(half) == 1_177_922
    # the temporal block is tiny: 9 paths of (9k weights + bias + BN γ, β), then 10·11·11·3 + 3
    paths = sum(count_parameters(p) for p in thesis_build.temporal_paths)
    assert paths == sum(9 * k + 3 for k in (3, 5, 7) for _ in range(3))
    assert count_parameters(thesis_build.classifier) == 10 * 11 * 11 * 3 + 3
    assert thesis_build.feature_size == 11


def test_frame_detector_uses_keras_batch_norm():
    model = FrameDetector(base_filters=1, image_size=16)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm3d)]
    assert len(norms) == 2 * 4 + 9
    assert all(m.momentum == 0.01 and m.eps == 1e-3 for m in norms)


@pytest.mark.parametrize("frames", [1, 2, 13, 35])
def test_frame_detector_shapes_for_any_number_of_frames(frames):
    torch.manual_seed(0)
    model = FrameDetector(base_filters=2, image_size=48).eval()
    x = torch.rand(2, 1, frames, 48, 48)
    with torch.no_grad():
        probs = model(x)
        logits = model(x, return_logits=True)
    assert probs.shape == logits.shape == (2, 3, frames)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(2, frames))
    torch.testing.assert_close(probs, logits.softmax(dim=1))
    assert model.classes == ("ES", "ED", "background")


def test_frame_detector_thesis_geometry_runs():
    torch.manual_seed(0)
    model = FrameDetector(base_filters=1)  # 176×176 input, 11×11 feature maps
    probs = model(torch.rand(1, 1, 3, 176, 176))
    assert probs.shape == (1, 3, 3)
    assert model.classifier.kernel_size == (1, 11, 11)


def test_each_dilated_path_sees_1_plus_k_minus_1_times_d_frames():
    model = FrameDetector(base_filters=1, image_size=16).eval()
    assert model.path_settings == ((3, 1), (3, 2), (3, 4), (5, 1), (5, 2), (5, 4), (7, 1), (7, 2), (7, 4))
    assert model.temporal_receptive_fields == (3, 5, 9, 5, 9, 17, 7, 13, 25)
    frames, centre = 41, 20
    measured = []
    for path in model.temporal_paths:
        with torch.no_grad():  # positive weights and input: the ReLU passes every gradient
            path.conv.weight.uniform_(0.5, 1.0)
            path.conv.bias.zero_()
        x = (torch.rand(1, 1, frames, 3, 3) + 0.1).requires_grad_(True)
        path(x)[0, 0, centre, 1, 1].backward()
        seen = torch.nonzero(x.grad[0, 0].abs().sum(dim=(1, 2))).flatten().tolist()
        k, d = path.conv.kernel_size[0], path.conv.dilation[0]
        half = (k - 1) // 2
        assert seen == [centre + d * j for j in range(-half, half + 1)]  # k taps, d frames apart
        extent = seen[-1] - seen[0] + 1
        assert extent == receptive_field_of(path, axis=0)[-1].size  # analytic calculator agrees
        measured.append(extent)
    assert tuple(measured) == model.temporal_receptive_fields
    assert min(measured) == 3 and max(measured) == 25


def test_frame_detector_output_depends_on_at_most_25_frames_and_the_encoder_on_one():
    torch.manual_seed(0)
    model = FrameDetector(base_filters=2, image_size=32).eval()
    frames, centre = 41, 20
    x = torch.rand(1, 1, frames, 32, 32, requires_grad=True)
    model.collapse(model.encoder(x))[0, 0, centre].sum().backward()
    seen = torch.nonzero(x.grad[0, 0].abs().sum(dim=(1, 2))).flatten().tolist()
    assert seen == [centre]  # the spatial block treats every frame on its own
    x.grad = None
    model(x, return_logits=True)[0, 0, centre].backward()
    seen = torch.nonzero(x.grad[0, 0].abs().sum(dim=(1, 2))).flatten()
    assert centre in seen.tolist()
    assert seen.min() >= centre - 12 and seen.max() <= centre + 12


def test_frame_detector_is_shift_equivariant_in_time_away_from_the_ends():
    torch.manual_seed(0)
    model = FrameDetector(base_filters=2, image_size=32).eval()
    x = torch.rand(1, 1, 40, 32, 32)
    with torch.no_grad():
        out = model(x)
        shifted = model(torch.roll(x, shifts=3, dims=2))
    # frames at least 12 away from both ends (and from the wrap) see the same context
    torch.testing.assert_close(shifted[..., 15:25], out[..., 12:22], rtol=1e-5, atol=1e-6)


def test_frame_detector_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = FrameDetector(base_filters=2, image_size=32)
    x = torch.rand(2, 1, 9, 32, 32)
    target = torch.full((2, 9), 2)
    target[:, 2], target[:, 6] = 0, 1  # ES, ED; the rest background
    logits = model(x, return_logits=True)
    weights = torch.ones(2, 9)
    weights[:, [2, 6]] = 100.0  # the per-frame weights of Eq. 7.1
    loss = (torch.nn.functional.cross_entropy(logits, target, reduction="none") * weights).sum()
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.count_nonzero(param.grad) > 0, name


@pytest.mark.parametrize(
    "x, match",
    [
        (torch.rand(1, 3, 32, 32), "dimensions"),
        (torch.rand(1, 2, 3, 32, 32), "channel"),
        (torch.rand(1, 1, 3, 48, 48), "32×32"),
        (torch.rand(1, 1, 3, 32, 16), "32×32"),
        (torch.ones(1, 1, 3, 32, 32, dtype=torch.uint8), "floating"),
    ],
)
def test_frame_detector_rejects_bad_input(x, match):
    with pytest.raises(ArgumentError, match=match):
        FrameDetector(base_filters=1, image_size=32)(x)


def test_frame_detector_rejects_bad_settings():
    with pytest.raises(ArgumentError, match="divisible"):
        FrameDetector(image_size=100)
    with pytest.raises(ArgumentError, match="odd"):
        FrameDetector(kernel_sizes=(3, 4))
    with pytest.raises(ArgumentError, match="dilations"):
        FrameDetector(dilations=())
    with pytest.raises(ArgumentError, match="base_filters"):
        FrameDetector(base_filters=0)
