"""cmrlab.physics.kspace_explorer: the arrays behind the k-space explorer, its drawing and its animation."""
import re

import numpy as np
import pytest
import torch

from cmrlab.errors import ArgumentError
from cmrlab.physics import kspace
from cmrlab.physics.kspace_explorer import KEEP_OPTIONS, kspace_explorer, kspace_view

SHEPP = kspace.shepp_logan_ellipses(200.0)


def drawn_arrays(explorer, **params):
    """The two arrays the explorer draws: (log k-space, image magnitude)."""
    fig = explorer.figure(**params)
    ax_k, ax_i = fig.axes
    return np.asarray(ax_k.images[0].get_array()), np.asarray(ax_i.images[0].get_array())


def test_full_view_is_the_sampled_object():
    view = kspace_view(SHEPP, 240.0, 64)
    ref = kspace.sample_object(SHEPP, 240.0, 64, dtype=torch.complex128)
    assert view.mask.all() and view.kept_fraction == 1.0 and view.spike_index is None
    np.testing.assert_allclose(view.image, ref.image.numpy(), atol=1e-12)
    np.testing.assert_allclose(view.kspace, ref.kspace.numpy(), atol=1e-12)
    assert view.spacing == pytest.approx(240.0 / 64)
    assert view.kx[32] == 0.0 and view.kx[33] == pytest.approx(1 / 240.0)


def test_centre_keeps_the_mean_and_periphery_has_none():
    full = kspace_view(SHEPP, 240.0, 64).image
    centre = kspace_view(SHEPP, 240.0, 64, keep="centre", radius=0.2)
    periphery = kspace_view(SHEPP, 240.0, 64, keep="periphery", radius=0.2)
    # the k = 0 sample is the image mean: the centre keeps it exactly, the periphery drops it
    assert centre.image.mean() == pytest.approx(full.mean(), abs=1e-12)
    assert abs(periphery.image.mean()) < 1e-12
    np.testing.assert_allclose(centre.image + periphery.image, full, atol=1e-12)
    assert centre.mask.sum() + periphery.mask.sum() == 64 * 64
    # the centre disc of radius 0.2 k_max holds about π·0.2²/4 ≈ 3 % of the samples
    assert centre.kept_fraction == pytest.approx(np.pi * 0.2 ** 2 / 4, rel=0.1)
    k = np.arange(64) - 32
    kept_radius = np.hypot(k[:, None], k[None, :])[centre.mask].max() / 32
    assert kept_radius <= 0.2 < np.hypot(k[:, None], k[None, :])[periphery.mask].min() / 32 + 1 / 32


def test_uniform_undersampling_gives_R_copies_fov_over_R_apart():
    full = kspace_view(SHEPP, 240.0, 64).image
    for R in (2, 4):
        view = kspace_view(SHEPP, 240.0, 64, R=R)
        assert view.mask[32].all() and view.kept_fraction == pytest.approx(1 / R)
        copies = sum(np.roll(full, j * 64 // R, axis=0) for j in range(R)) / R
        np.testing.assert_allclose(view.image, copies, atol=1e-12)


def test_small_fov_wraps_a_disc_to_x_minus_fov():
    disc = kspace.Ellipse(1.0, (15.0, 15.0), centre=(0.0, 100.0))
    for fov, expected in ((240.0, 100.0), (160.0, 100.0 - 160.0)):
        view = kspace_view([disc], fov, int(fov / 2.5))
        profile = np.abs(view.image).max(axis=1)
        bright = profile >= 0.5 * profile.max()
        centre_y = (profile[bright] * view.y[bright]).sum() / profile[bright].sum()
        assert centre_y == pytest.approx(expected, abs=0.5)


def test_spike_corrupts_one_acquired_sample_and_stripes_the_whole_image():
    clean = kspace_view(SHEPP, 240.0, 64, keep="centre", radius=0.5, R=2)
    spiked = kspace_view(SHEPP, 240.0, 64, keep="centre", radius=0.5, R=2, spike=True,
                         spike_at=(0.15, 0.2), spike_amplitude=2.0)
    iy, ix = spiked.spike_index
    assert clean.mask[iy, ix]  # the spike lands on a sample that was acquired
    diff = spiked.kspace - clean.kspace
    assert np.count_nonzero(np.abs(diff) > 1e-9) == 1 and abs(diff[iy, ix]) > 0
    peak = np.abs(kspace.fft2c(clean.full_image)).max()
    assert clean.kspace_peak == pytest.approx(peak, rel=1e-12)
    assert abs(diff[iy, ix]) == pytest.approx(2.0 * peak)
    # one k-space sample is one complex exponential of constant magnitude over the image
    stripe = spiked.image - clean.image
    np.testing.assert_allclose(np.abs(stripe), 2.0 * peak / 64, rtol=1e-9)
    assert len(set(np.round(np.angle(stripe[0, :4]), 6))) == 4  # a phase ramp: stripes


def test_explorer_state_changes_change_the_drawing():
    ex = kspace_explorer(matrix=64, matrices=(32, 64))
    k0, img0 = drawn_arrays(ex)
    assert img0.shape == (64, 64) and k0.shape == (64, 64)
    k1, img1 = drawn_arrays(ex, radius=0.8)
    assert (k1 > k0.min()).sum() > (k0 > k0.min()).sum()  # more of k-space drawn as acquired
    assert not np.allclose(img0, img1)
    _, img_p = drawn_arrays(ex, keep="periphery")
    assert not np.allclose(img_p, img0)
    k_small, img_small = drawn_arrays(ex, matrix=32)
    assert img_small.shape == (32, 32) and k_small.shape == (32, 32)
    _, img_fov = drawn_arrays(ex, fov=120.0)
    assert not np.allclose(img_fov, img0)
    k_r, _ = drawn_arrays(ex, keep="all", R=2)
    assert (k_r[1::2] == k_r.min()).all() and (k_r[::2] > k_r.min()).all()  # odd lines skipped
    _, img_s = drawn_arrays(ex, spike=True)
    assert not np.allclose(img_s, img0)
    ex.set(keep="all")
    assert ex.params["keep"] == "all"
    _, img_all = drawn_arrays(ex)
    assert not np.allclose(img_all, img0)


def test_static_animation_sweeps_the_radius():
    default = kspace_explorer()
    assert default.animate == "radius" and default.sweep_values()[0] == 0.05
    assert default.sweep_values()[-1] == 1.0 and len(default.sweep_values()) == default.frames == 8
    ex = kspace_explorer(matrix=32, matrices=(32,), frames=4)
    assert ex.animate == "radius" and len(ex.sweep_values()) == 4
    html = ex.to_html()
    assert len(re.findall(r'frames\[\d+\] = "data:image/png;base64,', html)) == 4
    assert ex.params["radius"] == 0.3  # the sweep leaves the explorer's state alone


@pytest.mark.parametrize("kwargs, match", [
    (dict(keep="middle"), "keep"),
    (dict(radius=-0.1), "radius"),
    (dict(radius=float("nan")), "radius"),
    (dict(R=0), "R"),
    (dict(R=40), "R"),
    (dict(matrix=2), "matrix"),
    (dict(matrix=32.0), "matrix"),
    (dict(fov=0.0), "fov"),
    (dict(spike="yes"), "spike"),
    (dict(spike=True, spike_at=(2.0, 0.0)), "spike_at"),
    (dict(spike=True, spike_amplitude=-1.0), "spike_amplitude"),
])
def test_kspace_view_bad_arguments(kwargs, match):
    args = dict(ellipses=SHEPP, fov=240.0, matrix=64)
    args.update(kwargs)
    with pytest.raises(ArgumentError, match=match):
        kspace_view(**args)


def test_kspace_view_needs_ellipses():
    with pytest.raises(ArgumentError, match="ellipses"):
        kspace_view([], 240.0, 64)
    with pytest.raises(ArgumentError, match="Ellipse"):
        kspace_view([(1.0, 2.0)], 240.0, 64)


@pytest.mark.parametrize("kwargs, match", [
    (dict(matrix=48), "matrix"),
    (dict(fov=500.0), "fov"),
    (dict(fov_range=(300.0, 100.0)), "fov_range"),
    (dict(keep="edges"), "keep"),
    (dict(radius=2.0), "radius"),
    (dict(R=5), "R"),
    (dict(max_R=64), "max_R"),
    (dict(object_size=-1.0), "object_size"),
    (dict(matrices=()), "matrices"),
])
def test_kspace_explorer_bad_arguments(kwargs, match):
    with pytest.raises(ArgumentError, match=match):
        kspace_explorer(**kwargs)


def test_keep_options_are_the_menu():
    ex = kspace_explorer()
    assert ex.controls["keep"].values == list(KEEP_OPTIONS)
