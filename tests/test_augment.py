"""Tests of cmrlab.data.augment: exact cases, a scipy oracle, image/label alignment, bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from cmrlab.data.augment import AugmentParams, RandomAugment, affine_resample
from cmrlab.errors import ArgumentError


def _params(n: int = 1, *, rotation: float = 0.0, shear: float = 0.0, zoom: float = 1.0,
            shift: tuple[float, float] = (0.0, 0.0), flip: bool = False, gamma: float = 1.0) -> AugmentParams:
    full = lambda v: torch.full((n,), float(v), dtype=torch.float64)  # noqa: E731
    return AugmentParams(rotation=full(rotation), shear=full(shear), zoom=full(zoom),
                         shift=torch.tensor([shift] * n, dtype=torch.float64),
                         flip=torch.full((n,), flip), gamma=full(gamma))


def _disc(size: int, centre: tuple[float, float], radius: float) -> torch.Tensor:
    rows, cols = torch.meshgrid(torch.arange(size, dtype=torch.float64),
                                torch.arange(size, dtype=torch.float64), indexing="ij")
    return ((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2).long()


def _centroid(mask: torch.Tensor) -> torch.Tensor:
    return torch.nonzero(mask).double().mean(0)   # (row, col)


def test_zero_parameters_leave_everything_unchanged():
    images = torch.rand(2, 3, 9, 11, dtype=torch.float64)
    labels = torch.randint(0, 4, (2, 9, 11))
    out, lab = RandomAugment().apply(images, labels, _params(2))
    assert torch.allclose(out, images, atol=1e-12)
    assert torch.equal(lab, labels) and lab.dtype == torch.int64


def test_integer_shift_moves_content_and_fills_labels_with_background():
    images = torch.rand(1, 1, 8, 10, dtype=torch.float64)
    labels = torch.randint(1, 4, (1, 8, 10))
    out, lab = RandomAugment().apply(images, labels, _params(shift=(2.0, -3.0)))
    assert torch.allclose(out[0, 0, 2:, :-3], images[0, 0, :-2, 3:], atol=1e-12)
    assert torch.equal(lab[0, 2:, :-3], labels[0, :-2, 3:])
    assert (lab[0, :2] == 0).all() and (lab[0, :, -3:] == 0).all()
    assert torch.allclose(out[0, 0, :2, :-3], images[0, 0, :1, 3:].expand(2, -1), atol=1e-12)  # edge replicated


def test_quarter_turn_is_exact_and_counter_clockwise_with_row_index_up():
    images = torch.rand(1, 1, 7, 7, dtype=torch.float64)
    labels = torch.randint(0, 4, (1, 7, 7))
    out, lab = RandomAugment().apply(images, labels, _params(rotation=90.0))
    # with rows increasing upwards (imshow origin="lower") counter-clockwise is rot90(k=-1) of the array
    assert torch.allclose(out[0, 0], torch.rot90(images[0, 0], -1, (0, 1)), atol=1e-12)
    assert torch.equal(lab[0], torch.rot90(labels[0], -1, (0, 1)))


def test_matches_scipy_affine_transform():
    rng = np.random.default_rng(3)
    image = rng.random((13, 17))
    params = _params(rotation=23.0, shear=11.0, zoom=1.07, shift=(1.3, -2.2))
    out = affine_resample(torch.from_numpy(image)[None, None], params.matrices(), params.shift)[0, 0]
    a_inv = np.linalg.inv(params.matrices()[0].numpy())
    swap = np.array([[0.0, 1.0], [1.0, 0.0]])          # (col, row) ↔ (row, col)
    m_rc = swap @ a_inv @ swap
    c = np.array([(13 - 1) / 2, (17 - 1) / 2])
    offset = c - m_rc @ (c + params.shift[0].numpy())
    expected = ndimage.affine_transform(image, m_rc, offset=offset, order=1, mode="nearest")
    assert np.allclose(out.numpy(), expected, atol=1e-9)


def test_rotation_turns_an_off_centre_object_by_the_angle_and_zoom_scales_its_area():
    size = 64
    labels = _disc(size, (31.5 + 15.0, 31.5), 6.0)[None]            # 15 px above the centre
    images = labels[:, None].double()
    _, lab = RandomAugment().apply(images, labels, _params(rotation=-30.0))
    row, col = (_centroid(lab[0]) - 31.5).tolist()
    assert math.degrees(math.atan2(row, col)) == pytest.approx(90.0 - 30.0, abs=1.0)
    _, big = RandomAugment().apply(images, labels, _params(zoom=1.2))
    assert big[0].sum().item() / labels[0].sum().item() == pytest.approx(1.2**2, rel=0.06)


def test_image_and_labels_stay_aligned_under_random_transforms():
    size = 48
    labels = torch.stack([_disc(size, (18.0, 28.0), 7.0), _disc(size, (30.0, 20.0), 5.0)])
    images = ndimage_smooth(labels)
    augment = RandomAugment(rotation=30, shift=5, scale=0.1, shear=20)
    out, lab = augment(images, labels, generator=torch.Generator().manual_seed(1))
    for k in range(2):
        assert set(lab[k].unique().tolist()) <= {0, 1}
        assert torch.allclose(_centroid(out[k, 0] > 0.5), _centroid(lab[k]), atol=0.5)


def ndimage_smooth(labels: torch.Tensor) -> torch.Tensor:
    """A smooth image whose 0.5 level set is the label boundary (for the alignment test)."""
    return torch.from_numpy(np.stack([ndimage.gaussian_filter(m.double().numpy(), 1.0) for m in labels]))[:, None]


def test_mirroring_is_off_by_default_and_a_plain_left_right_flip_when_on():
    assert not RandomAugment(rotation=30).sample(1000).flip.any()
    flips = RandomAugment(flip=True).sample(1000, torch.Generator().manual_seed(0)).flip
    assert 400 < int(flips.sum()) < 600
    images = torch.rand(1, 1, 6, 9, dtype=torch.float64)
    labels = torch.randint(0, 4, (1, 6, 9))
    out, lab = RandomAugment(flip=True).apply(images, labels, _params(flip=True))
    assert torch.allclose(out, torch.flip(images, [-1]), atol=1e-12)
    assert torch.equal(lab, torch.flip(labels, [-1]))


def test_gamma_keeps_the_range_and_follows_the_formula():
    images = 2.0 + 3.0 * torch.rand(2, 1, 10, 10, dtype=torch.float64)
    out, _ = RandomAugment(gamma=0.5).apply(images, None, _params(2, gamma=2.0))
    low, high = images.amin(dim=(1, 2, 3), keepdim=True), images.amax(dim=(1, 2, 3), keepdim=True)
    assert torch.allclose(out, low + (high - low) * ((images - low) / (high - low)) ** 2, atol=1e-12)
    gammas = RandomAugment(gamma=0.3).sample(500, torch.Generator().manual_seed(0)).gamma
    assert gammas.min() >= math.exp(-0.3) and gammas.max() <= math.exp(0.3)


def test_noise_has_the_requested_mean_and_standard_deviation():
    images = torch.zeros(1, 1, 200, 200)
    out, _ = RandomAugment(noise_mean=0.035, noise_std=0.01)(images, generator=torch.Generator().manual_seed(0))
    assert float(out.mean()) == pytest.approx(0.035, abs=2e-4)
    assert float(out.std()) == pytest.approx(0.01, rel=0.02)
    assert out.dtype == torch.float32


def test_volumes_get_one_in_plane_transform_for_every_slice():
    volume = torch.rand(2, 1, 4, 12, 12, dtype=torch.float64)
    labels = torch.randint(0, 3, (2, 4, 12, 12))
    augment3d = RandomAugment(rotation=30, shift=3, scale=0.1, spatial_dims=3)
    params = augment3d.sample(2, torch.Generator().manual_seed(5))
    out, lab = augment3d.apply(volume, labels, params)
    assert out.shape == volume.shape and lab.shape == labels.shape
    augment2d = RandomAugment(rotation=30, shift=3, scale=0.1)
    for z in range(4):
        o2, l2 = augment2d.apply(volume[:, :, z], labels[:, z], params)
        assert torch.allclose(out[:, :, z], o2) and torch.equal(lab[:, z], l2)


def test_same_generator_seed_same_result():
    images, labels = torch.rand(3, 1, 16, 16), torch.randint(0, 4, (3, 16, 16))
    augment = RandomAugment(rotation=30, shift=2, scale=0.1, gamma=0.2, noise_std=0.05)
    a = augment(images, labels, generator=torch.Generator().manual_seed(7))
    b = augment(images, labels, generator=torch.Generator().manual_seed(7))
    c = augment(images, labels, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


@pytest.mark.parametrize("kwargs, match", [
    ({"rotation": -1}, "rotation"), ({"scale": 1.0}, "scale"), ({"shear": 90}, "shear"),
    ({"noise_std": float("nan")}, "noise_std"), ({"flip": 1}, "flip"), ({"spatial_dims": 4}, "spatial_dims"),
    ({"gamma": "0.2"}, "gamma"),
])
def test_bad_settings_are_named(kwargs, match):
    with pytest.raises(ArgumentError, match=match):
        RandomAugment(**kwargs)


def test_bad_inputs_are_named():
    augment = RandomAugment(rotation=10)
    with pytest.raises(ArgumentError, match="images"):
        augment(np.zeros((1, 1, 8, 8)))
    with pytest.raises(ArgumentError, match="images"):
        augment(torch.zeros(1, 1, 8, 8, dtype=torch.int64))
    with pytest.raises(ArgumentError, match=r"\(N, C, H, W\)"):
        augment(torch.zeros(8, 8))
    with pytest.raises(ArgumentError, match="labels must have shape"):
        augment(torch.zeros(2, 1, 8, 8), torch.zeros(2, 8, 9, dtype=torch.int64))
    with pytest.raises(ArgumentError, match="integer"):
        augment(torch.zeros(2, 1, 8, 8), torch.zeros(2, 8, 8))
    with pytest.raises(ArgumentError, match="samples"):
        augment.apply(torch.zeros(2, 1, 8, 8), None, _params(3))
