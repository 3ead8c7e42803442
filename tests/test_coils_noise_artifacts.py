"""cmrlab.physics coils, noise and artifacts: maps, RSS/SENSE, Rician noise, SNR, Gibbs, spike, bias."""

import numpy as np
import pytest
import torch
from scipy import stats

from cmrlab.errors import ArgumentError
from cmrlab.physics.artifacts import bias_field, gibbs_ringing, motion_artifact, spike_artifact
from cmrlab.physics.coils import coil_combine_rss, coil_sensitivities, sense_combine, sense_unfold
from cmrlab.physics.kspace import fft2c, sample_object, shepp_logan_ellipses, uniform_mask
from cmrlab.physics.noise import (
    RAYLEIGH_MEAN_FACTOR,
    RAYLEIGH_SD_FACTOR,
    add_noise,
    measure_snr,
    nex_average,
    snr_to_sigma,
)


@pytest.fixture(scope="module")
def phantom():
    """A 128² modified Shepp–Logan slice (complex128) with a smooth phase."""
    img = sample_object(shepp_logan_ellipses(220.0), 256.0, 128, dtype=torch.complex128).image.real
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 128, dtype=torch.float64),
                            torch.linspace(-1, 1, 128, dtype=torch.float64), indexing="ij")
    return img * torch.polar(torch.ones_like(xx), 0.5 + xx - 0.3 * yy)


def _disc_masks(n=128, radius=30, gap=50):
    yy, xx = torch.meshgrid(torch.arange(n) - n // 2, torch.arange(n) - n // 2, indexing="ij")
    r = (yy.square() + xx.square()).double().sqrt()
    return r <= radius, r >= gap


# ------------------------------------------------------------------------------------ coils
def test_coil_maps_are_unit_norm_smooth_and_local():
    maps = coil_sensitivities((96, 128), 8)
    assert maps.shape == (8, 96, 128) and maps.dtype == torch.complex64
    torch.testing.assert_close(coil_combine_rss(maps), torch.ones(96, 128), atol=1e-5, rtol=0)
    # smooth: neighbouring pixels differ by a few per cent at most
    assert (maps[..., 1:] - maps[..., :-1]).abs().max() < 0.05
    assert (maps[..., 1:, :] - maps[..., :-1, :]).abs().max() < 0.05
    # coil 0 sits at angle 0 (+x side), coil 2 at 90° (+y side, larger row index)
    mag = maps.abs()
    assert mag[0, 48, -1] > 5 * mag[0, 48, 0]
    assert mag[2, -1, 64] > 5 * mag[2, 0, 64]
    raw = coil_sensitivities((64, 64), 4, normalize=False, dtype=torch.complex128)
    rss = coil_combine_rss(raw)
    assert rss.max().item() == pytest.approx(1.0) and rss.min() < 0.5  # brighter near the coils
    with pytest.raises(ArgumentError, match="coil_radius"):
        coil_sensitivities((64, 64), 8, coil_radius=1.2)
    with pytest.raises(ArgumentError, match="n_coils"):
        coil_sensitivities((64, 64), 0)


def test_rss_and_sense_combine(phantom):
    maps = coil_sensitivities((128, 128), 8, dtype=torch.complex128)
    coil_images = maps * phantom
    torch.testing.assert_close(coil_combine_rss(coil_images), phantom.abs(), atol=1e-12, rtol=0)
    torch.testing.assert_close(sense_combine(coil_images, maps), phantom, atol=1e-12, rtol=0)
    # non-normalised maps: RSS carries the coil shading, SENSE still recovers the complex image
    raw = coil_sensitivities((128, 128), 8, normalize=False, dtype=torch.complex128)
    torch.testing.assert_close(sense_combine(raw * phantom, raw), phantom, atol=1e-12, rtol=0)
    assert not torch.allclose(coil_combine_rss(raw * phantom), phantom.abs())
    # numpy in → numpy out, coil axis elsewhere
    out = coil_combine_rss(np.moveaxis(coil_images.numpy(), 0, -1), coil_dim=-1)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, phantom.abs().numpy(), atol=1e-12)
    with pytest.raises(ArgumentError, match="maps shape"):
        sense_combine(coil_images, maps[:, :64])


@pytest.mark.parametrize("R,offset", [(2, 0), (2, 1), (4, 3)])
def test_sense_unfold_recovers_the_image_without_noise(phantom, R, offset):
    maps = coil_sensitivities((128, 128), 8, dtype=torch.complex128)
    k = fft2c(maps * phantom) * uniform_mask((128, 128), R, offset=offset)
    out = sense_unfold(k, maps, R, offset=offset)
    torch.testing.assert_close(out, phantom, atol=1e-9, rtol=0)


def test_sense_unfold_with_noise_and_bad_input(phantom):
    maps = coil_sensitivities((128, 128), 8)
    clean = fft2c(maps * phantom.to(torch.complex64))
    mask = uniform_mask((128, 128), 2)
    sigma = snr_to_sigma(phantom, 40.0, phantom.abs() > 0.1)
    out = sense_unfold(add_noise(clean, sigma, seed=0) * mask, maps, 2)
    err = (out - phantom).abs().norm() / phantom.abs().norm()
    assert err.item() < 0.1
    with pytest.raises(ArgumentError, match="multiple of R"):
        sense_unfold(clean[:, :126], maps[:, :126], 4)
    with pytest.raises(ArgumentError, match="maps shape"):
        sense_unfold(clean, maps[:4], 2)
    with pytest.raises(ArgumentError, match="R must be"):
        sense_unfold(clean, maps, 0)


# ------------------------------------------------------------------------------------ noise
def test_add_noise_has_the_requested_per_channel_sd():
    x = torch.zeros(256, 256, dtype=torch.float64)
    noisy = add_noise(x, 0.3, seed=1)
    assert noisy.dtype == torch.complex128
    assert noisy.real.std().item() == pytest.approx(0.3, rel=0.02)
    assert noisy.imag.std().item() == pytest.approx(0.3, rel=0.02)
    assert abs(noisy.real.mean().item()) < 0.01
    assert abs(torch.corrcoef(torch.stack([noisy.real.flatten(), noisy.imag.flatten()]))[0, 1].item()) < 0.02
    torch.testing.assert_close(noisy, add_noise(x, 0.3, seed=1))
    assert not torch.equal(noisy, add_noise(x, 0.3, seed=2))
    assert isinstance(add_noise(np.ones((4, 4), np.float32), 0.1, seed=0), np.ndarray)
    with pytest.raises(ArgumentError, match="sigma"):
        add_noise(x, -1.0)
    with pytest.raises(ArgumentError, match="sigma"):
        add_noise(x, float("nan"))


def test_noise_in_kspace_equals_noise_in_image_space():
    """The orthonormal FFT keeps white noise's per-channel SD."""
    k = add_noise(torch.zeros(256, 256, dtype=torch.complex128), 0.5, seed=3)
    img = torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(k), norm="ortho"))
    assert img.real.std().item() == pytest.approx(0.5, rel=0.02)


def test_magnitude_background_is_rayleigh_and_signal_snr_is_as_requested():
    signal, background = _disc_masks()
    clean = torch.where(signal, 100.0, 0.0).double()
    sigma = snr_to_sigma(clean, 20.0, signal)
    assert sigma == pytest.approx(5.0)
    mag = add_noise(clean, sigma, seed=4).abs()
    bg = mag[background]
    assert bg.mean().item() == pytest.approx(sigma * RAYLEIGH_MEAN_FACTOR, rel=0.02)  # σ√(π/2)
    assert bg.std().item() == pytest.approx(sigma * RAYLEIGH_SD_FACTOR, rel=0.03)     # 0.655σ
    assert stats.kstest(bg.numpy(), stats.rayleigh(scale=sigma).cdf).pvalue > 0.01
    assert RAYLEIGH_SD_FACTOR == pytest.approx(0.655, abs=5e-4)
    # ROI mean / background SD overestimates by 1/0.655 without the Rayleigh correction
    assert measure_snr(mag, signal, background, rayleigh_correction=True) == pytest.approx(20.0, rel=0.04)
    assert measure_snr(mag, signal, background) == pytest.approx(20.0 / RAYLEIGH_SD_FACTOR, rel=0.04)


def test_snr_grows_as_sqrt_nex():
    signal, background = _disc_masks()
    clean = torch.where(signal, 1.0, 0.0).double()
    sigma = snr_to_sigma(clean, 5.0, signal)
    snr = {nex: measure_snr(nex_average(clean, sigma, nex, seed=10 + nex), signal, background,
                            rayleigh_correction=True) for nex in (1, 4, 16)}
    assert snr[1] == pytest.approx(5.0, rel=0.05)
    assert snr[4] / snr[1] == pytest.approx(2.0, rel=0.05)
    assert snr[16] / snr[1] == pytest.approx(4.0, rel=0.05)
    with pytest.raises(ArgumentError, match="nex"):
        nex_average(clean, sigma, 0)


def test_snr_bad_input():
    signal, background = _disc_masks(32, 8, 12)
    img = torch.rand(32, 32)
    with pytest.raises(ArgumentError, match="snr"):
        snr_to_sigma(img, 0.0)
    with pytest.raises(ArgumentError, match="snr"):
        snr_to_sigma(img, -5.0)
    with pytest.raises(ArgumentError, match="snr"):
        snr_to_sigma(img, float("nan"))
    with pytest.raises(ArgumentError, match="signal_mask shape"):
        measure_snr(img, signal[:16], background)
    with pytest.raises(ArgumentError, match="background_mask selects no pixel"):
        measure_snr(img, signal, torch.zeros(32, 32, dtype=torch.bool))
    bad = img.clone()
    bad[3, 3] = float("nan")
    with pytest.raises(ArgumentError, match="image contains NaN"):
        measure_snr(bad, signal, background)
    with pytest.raises(ValueError):  # ArgumentError is a ValueError
        snr_to_sigma(bad, 10.0)


# -------------------------------------------------------------------------------- artifacts
@pytest.mark.parametrize("keep", [32, 64])
def test_gibbs_overshoot_is_about_nine_percent(keep):
    img = torch.zeros(4, 512, dtype=torch.float64)
    img[:, 128:384] = 1.0  # a step of height 1 at each edge
    ringing = gibbs_ringing(img, (4, keep))
    overshoot = ringing.real.max().item() - 1.0
    assert overshoot == pytest.approx(0.0895, abs=0.01)
    undershoot = ringing.real[:, :128].min().item()
    assert undershoot == pytest.approx(-0.0895, abs=0.02)
    torch.testing.assert_close(gibbs_ringing(img, (4, 512)).real, img)  # keeping everything changes nothing


def test_spike_gives_a_single_frequency_stripe_pattern(phantom):
    out = spike_artifact(phantom, (5, -12), amplitude=0.5, phase=0.3)
    diff = out - phantom
    k = fft2c(diff).abs()
    peak = fft2c(phantom).abs().max().item()
    assert k[64 + 5, 64 - 12].item() == pytest.approx(0.5 * peak, rel=1e-9)
    k[64 + 5, 64 - 12] = 0
    assert k.max().item() < 1e-9 * peak
    # a plane wave of constant magnitude A/√N and period 1/|(5/128, -12/128)| pixels
    assert diff.abs().std().item() < 1e-9 * diff.abs().mean().item()
    assert diff.abs().mean().item() == pytest.approx(0.5 * peak / 128, rel=1e-9)
    row = diff.real[0]
    crossings = ((row[:-1] * row[1:]) < 0).sum().item()
    assert crossings == 2 * 12  # 12 periods along x across the 128 columns
    with pytest.raises(ArgumentError, match="position"):
        spike_artifact(phantom, (64, 0))


def test_motion_corrupts_only_the_chosen_lines_by_a_phase():
    img = sample_object(shepp_logan_ellipses(200.0), 256.0, 64, dtype=torch.complex128).image
    out = motion_artifact(img, fraction=0.25, max_shift=3.0, seed=5)
    k0, k1 = fft2c(img), fft2c(out)
    changed = ((k1 - k0).abs() > 1e-9 * k0.abs().max()).any(dim=1)
    assert changed.sum().item() == 16
    torch.testing.assert_close(k1.abs(), k0.abs(), atol=1e-10, rtol=0)  # a pure phase corruption
    torch.testing.assert_close(out, motion_artifact(img, fraction=0.25, max_shift=3.0, seed=5))
    torch.testing.assert_close(motion_artifact(img, fraction=0.25, max_shift=0.0), img, atol=1e-12, rtol=0)
    # ghosts spread along the phase-encoding direction: outside the object, the error sits in the
    # columns the object occupies (above/below it), not in the rows beside it
    err = (out - img).abs()
    cols = img.abs().amax(0) > 0.5
    rows = img.abs().amax(1) > 0.5
    assert err[~rows][:, cols].mean() > 3 * err[rows][:, ~cols].mean()
    with pytest.raises(ArgumentError, match="fraction"):
        motion_artifact(img, fraction=1.5)


def test_bias_field_mean_one_positive_smooth_and_seeded():
    b = bias_field((128, 96), seed=3)
    assert b.shape == (128, 96) and b.dtype == torch.float32
    assert b.mean().item() == pytest.approx(1.0, abs=1e-6)
    assert b.min() > 0 and b.max() > 1.05 and b.min() < 0.95
    # smooth: small first and tiny second differences (white noise of this range would give ~0.5)
    for axis in (0, 1):
        d1 = torch.diff(b, dim=axis)
        assert d1.abs().max() < 0.1 and torch.diff(d1, dim=axis).abs().max() < 0.01
    assert torch.equal(b, bias_field((128, 96), seed=3))
    assert not torch.equal(b, bias_field((128, 96), seed=4))
    b3 = bias_field((16, 32, 32), strength=0.1, seed=0, dtype=torch.float64)
    assert b3.shape == (16, 32, 32) and b3.mean().item() == pytest.approx(1.0, abs=1e-12)
    assert torch.log(b3).std().item() == pytest.approx(0.1, rel=0.1)
    with pytest.raises(ArgumentError, match="shape"):
        bias_field((64,))
    with pytest.raises(ArgumentError, match="strength"):
        bias_field((64, 64), strength=0.0)
