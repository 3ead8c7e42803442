"""cmrlab.physics.kspace: centred FFTs, imaging at a FOV/matrix, partial Fourier, masks, scan time."""
import math

import numpy as np
import pytest
import torch

from cmrlab.errors import ArgumentError
from cmrlab.physics.kspace import (
    Ellipse,
    apply_mask,
    ellipse_kspace,
    fft2c,
    fft3c,
    homodyne_recon,
    ifft2c,
    ifft3c,
    mask_acceleration,
    partial_fourier_mask,
    sample_object,
    scan_time,
    shepp_logan_ellipses,
    uniform_mask,
    variable_density_mask,
    zero_filled_recon,
)


def _np_centred(x, axes, inverse=False):
    f = np.fft.ifftn if inverse else np.fft.fftn
    return np.fft.fftshift(f(np.fft.ifftshift(x, axes=axes), axes=axes, norm="ortho"), axes=axes)


# ---------------------------------------------------------------------------------------- FFTs
@pytest.mark.parametrize("dtype,tol", [(torch.complex64, 1e-6), (torch.complex128, 1e-12)])
def test_fft_round_trip_is_exact(dtype, tol):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 32, 48, dtype=dtype, generator=g)
    torch.testing.assert_close(ifft2c(fft2c(x)), x, atol=tol, rtol=0)
    torch.testing.assert_close(fft2c(ifft2c(x)), x, atol=tol, rtol=0)
    torch.testing.assert_close(ifft3c(fft3c(x)), x, atol=tol, rtol=0)
    assert fft2c(x).dtype == dtype


@pytest.mark.parametrize("shape", [(6, 8), (7, 9), (2, 5, 6), (3, 4, 5, 7)])
def test_fft_matches_the_shift_definition_for_even_and_odd_sizes(shape):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    np.testing.assert_allclose(fft2c(x), _np_centred(x, (-2, -1)), atol=1e-12)
    np.testing.assert_allclose(ifft2c(x), _np_centred(x, (-2, -1), inverse=True), atol=1e-12)
    if len(shape) >= 3:
        np.testing.assert_allclose(fft3c(x), _np_centred(x, (-3, -2, -1)), atol=1e-12)
        np.testing.assert_allclose(ifft3c(x), _np_centred(x, (-3, -2, -1), inverse=True), atol=1e-12)


def test_fft_parseval_and_centre():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 33, 64))
    k = fft2c(x)
    assert isinstance(k, np.ndarray) and k.dtype == np.complex128  # numpy in → numpy out, real → complex
    np.testing.assert_allclose(np.sum(np.abs(k) ** 2), np.sum(x ** 2), rtol=1e-12)
    # a constant image puts all its energy at k = 0, index N//2
    k1 = fft2c(torch.ones(33, 64))
    assert k1.dtype == torch.complex64
    assert torch.argmax(k1.abs()).item() == 16 * 64 + 32
    assert abs(k1[16, 32].real.item() - math.sqrt(33 * 64)) < 1e-3


def test_fft_follows_autograd():
    x = torch.randn(8, 8, dtype=torch.complex128, requires_grad=True)
    loss = fft2c(x).abs().square().sum()  # = ‖x‖² by Parseval, gradient 2x
    loss.backward()
    torch.testing.assert_close(x.grad, 2 * x.detach())


def test_fft_rejects_too_few_dims():
    with pytest.raises(ArgumentError, match="x must have at least 2"):
        fft2c(np.zeros(5))
    with pytest.raises(ArgumentError, match="x must have at least 3"):
        ifft3c(torch.zeros(4, 4))


# ------------------------------------------------------------------------ imaging an object
def test_resolution_pixel_size_is_fov_over_matrix():
    for n in (32, 64, 100):
        r = sample_object([Ellipse(1.0, (20.0, 20.0))], fov=(200.0, 240.0), matrix=n)
        assert r.spacing == (200.0 / n, 240.0 / n)
        assert r.image.shape == (n, n)
        np.testing.assert_allclose(np.diff(r.x.numpy()), 240.0 / n, rtol=1e-5)
        assert r.x[n // 2].item() == 0.0 and r.y[0].item() == pytest.approx(-(n // 2) * 200.0 / n)


def test_resolution_point_spread_function_width_scales_with_pixel_size():
    """The PSF of N samples at Δk = 1/FOV is a Dirichlet kernel with FWHM ≈ 1.207 Δx."""
    fov, widths = 128.0, []
    for n in (32, 64):
        dot = sample_object([Ellipse(1.0, (1e-3, 1e-3))], fov, n, dtype=torch.complex128)
        up = 16  # look at the PSF between the pixels: zero-pad k-space 16×
        k = torch.zeros(n * up, n * up, dtype=torch.complex128)
        s = n * up // 2 - n // 2
        k[s:s + n, s:s + n] = dot.kspace
        profile = ifft2c(k)[n * up // 2].abs()
        above = (profile >= profile.max() / 2).nonzero().flatten()
        fwhm = (above.max() - above.min() + 1).item() * (fov / n) / up
        widths.append(fwhm / (fov / n))
    assert widths[0] == pytest.approx(1.207, abs=0.07)
    assert widths[1] == pytest.approx(1.207, abs=0.07)


def test_small_fov_wraps_content_by_exactly_one_fov():
    fov, n = 100.0, 64
    c128 = torch.complex128
    outside = sample_object([Ellipse(1.0, (5.0, 5.0), centre=(70.0, 0.0))], fov, n, dtype=c128)
    inside = sample_object([Ellipse(1.0, (5.0, 5.0), centre=(70.0 - fov, 0.0))], fov, n, dtype=c128)
    # identical k-space samples: e^{-i2π k_m FOV} = 1 for every k_m = m/FOV
    torch.testing.assert_close(outside.kspace, inside.kspace, atol=1e-9, rtol=0)
    img = outside.image.abs()
    w = img * (img > 0.5)
    cx = (w.sum(0) * outside.x).sum() / w.sum()
    cy = (w.sum(1) * outside.y).sum() / w.sum()
    assert cx.item() == pytest.approx(-30.0, abs=0.2) and abs(cy.item()) < 0.2
    # along y (phase encoding) too: a disc at y = +65 appears at y = -35
    r = sample_object([Ellipse(1.0, (5.0, 5.0), centre=(0.0, 65.0))], fov, n)
    img = r.image.abs()
    w = img * (img > 0.5)
    assert ((w.sum(1) * r.y).sum() / w.sum()).item() == pytest.approx(-35.0, abs=0.2)


def test_grid_object_folds_exactly_into_a_half_fov():
    rng = np.random.default_rng(3)
    obj = rng.random((128, 96))
    r = sample_object(obj, fov=(50.0, 60.0), matrix=(64, 48), object_fov=(100.0, 120.0))
    assert isinstance(r.image, np.ndarray) and r.spacing == (50.0 / 64, 60.0 / 48)
    # object pixel p sits at (p - 64)·δ; image pixel n at (n - 32)·δ: p lands on n ≡ p - 32 (mod 64)
    expected = np.zeros((64, 48))
    for p in range(128):
        for q in range(96):
            expected[(p - 32) % 64, (q - 24) % 48] += obj[p, q]
    np.testing.assert_allclose(r.image, expected, atol=1e-10)
    # same FOV and matrix as the grid: the object comes back unchanged
    same = sample_object(obj, fov=(100.0, 120.0), matrix=(128, 96), object_fov=(100.0, 120.0))
    np.testing.assert_allclose(same.image, obj, atol=1e-10)


def test_ellipse_kspace_matches_a_rasterised_ellipse():
    e = Ellipse(2.0, axes=(30.0, 15.0), centre=(12.0, -20.0), angle=30.0)
    # F(0) = intensity × area, and the image integrates to F(0)
    assert abs(ellipse_kspace([e], 0.0, 0.0).item() - 2.0 * math.pi * 30 * 15) < 1e-9
    r = sample_object([e], 128.0, 64, dtype=torch.complex128)
    integral = (r.image.sum() * r.spacing[0] * r.spacing[1]).real.item()
    assert integral == pytest.approx(2.0 * math.pi * 450, rel=1e-9)
    # rasterise the same ellipse on a fine grid (4×4 supersampling) and image it the same way
    m, sub = 512, 4
    c = (torch.arange(m * sub, dtype=torch.float64) - m * sub // 2 + 0.5 - sub / 2) * (128.0 / (m * sub))
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    th = math.radians(30.0)
    u = (xx - 12.0) * math.cos(th) + (yy + 20.0) * math.sin(th)
    v = -(xx - 12.0) * math.sin(th) + (yy + 20.0) * math.cos(th)
    fine = 2.0 * ((u / 30.0) ** 2 + (v / 15.0) ** 2 <= 1).double()
    raster = fine.reshape(m, sub, m, sub).mean((1, 3))
    rr = sample_object(raster, 128.0, 64, object_fov=128.0)
    err = (rr.image - r.image).abs().norm() / r.image.abs().norm()
    assert err.item() < 0.02


def test_shepp_logan_spans_the_requested_size():
    r = sample_object(shepp_logan_ellipses(200.0), 256.0, 128)
    img = r.image.real
    assert img.shape == (128, 128)
    rows = (img.abs() > 0.5).any(1).nonzero().flatten()
    extent = (rows.max() - rows.min() + 1).item() * r.spacing[0]
    assert extent == pytest.approx(0.92 * 200.0, abs=2 * r.spacing[0])
    # brain tissue is 1 - 0.8 = 0.2 at the centre
    assert img[64, 64].item() == pytest.approx(0.2, abs=0.05)


def test_sample_object_bad_input():
    disc = [Ellipse(1.0, (5.0, 5.0))]
    with pytest.raises(ArgumentError, match="fov"):
        sample_object(disc, 0.0, 32)
    with pytest.raises(ArgumentError, match="matrix"):
        sample_object(disc, 10.0, 0)
    with pytest.raises(ArgumentError, match="Ellipse.axes"):
        sample_object([Ellipse(1.0, (-1.0, 5.0))], 10.0, 8)
    with pytest.raises(ArgumentError, match="object_fov"):
        sample_object(np.ones((8, 8)), 10.0, 8)
    with pytest.raises(ArgumentError, match="obj contains NaN"):
        sample_object(np.full((8, 8), np.nan), 10.0, 8, object_fov=10.0)
    with pytest.raises(ArgumentError, match="finer than the object grid"):
        sample_object(np.ones((8, 8)), 10.0, 16, object_fov=10.0)


# ------------------------------------------------------------------------- partial Fourier
def _smooth_phase_phantom(n=128):
    img = sample_object(shepp_logan_ellipses(230.0), 256.0, n, dtype=torch.complex128).image.real
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, n, dtype=torch.float64),
                            torch.linspace(-1, 1, n, dtype=torch.float64), indexing="ij")
    phase = 0.4 + 1.2 * xx - 0.8 * yy + 0.9 * xx * yy + 0.7 * yy ** 2
    return img * torch.polar(torch.ones_like(phase), phase)


def test_partial_fourier_mask_keeps_the_centre_and_overscan():
    m = partial_fourier_mask((128, 96), 5 / 8)
    assert m.shape == (128, 96) and m.dtype == torch.bool
    rows = m[:, 0]
    assert rows.sum().item() == 80 and rows[:80].all() and not rows[80:].any()
    assert bool((m == rows[:, None]).all())
    assert mask_acceleration(m) == pytest.approx(1.6)
    with pytest.raises(ArgumentError, match="fraction"):
        partial_fourier_mask((128, 96), 0.5)
    with pytest.raises(ArgumentError, match="fraction"):
        partial_fourier_mask((128, 96), 1.2)


def test_homodyne_beats_zero_filling_on_a_smooth_phase_phantom():
    truth = _smooth_phase_phantom()
    k = fft2c(truth)
    for fraction in (5 / 8, 6 / 8):
        mask = partial_fourier_mask(truth.shape, fraction)
        zf = zero_filled_recon(k, mask)
        hd = homodyne_recon(k * mask, mask)
        err_zf = ((zf.abs() - truth.abs()).norm() / truth.abs().norm()).item()
        err_hd = ((hd.abs() - truth.abs()).norm() / truth.abs().norm()).item()
        assert err_hd < 0.5 * err_zf, (fraction, err_hd, err_zf)
        assert err_hd < 0.05


def test_homodyne_is_exact_for_a_real_object():
    """For a real object H(k) + H(-k) = 2 restores the missing half exactly (Hermitian k-space)."""
    rng = np.random.default_rng(4)
    img = np.abs(rng.standard_normal((64, 48))) + 0.5
    k = fft2c(img)
    k[0, :] = 0  # the k_y = -N/2 line has no partner in the grid; drop it so the object stays real
    real_img = ifft2c(k)
    mask = partial_fourier_mask((64, 48), 0.6).numpy()
    out = homodyne_recon(k * mask, mask)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, real_img, atol=1e-10)


def test_homodyne_handles_batches_and_the_mirrored_side():
    truth = _smooth_phase_phantom(64)
    k = fft2c(torch.stack([truth, 2 * truth]))
    mask = partial_fourier_mask((64, 64), 0.7).flip(0)  # acquired lines on the +k_y side instead
    hd = homodyne_recon(k * mask, mask)
    assert hd.shape == (2, 64, 64)
    err = ((hd[1].abs() - 2 * truth.abs()).norm() / (2 * truth.abs()).norm()).item()
    assert err < 0.05
    torch.testing.assert_close(hd[1], 2 * hd[0])
    # a full mask has nothing to fill in: plain inverse FFT
    full = torch.ones(64, 64, dtype=torch.bool)
    torch.testing.assert_close(homodyne_recon(k, full), ifft2c(k))


def test_homodyne_bad_masks():
    k = torch.zeros(32, 32, dtype=torch.complex64)
    rows = torch.zeros(32, dtype=torch.bool)
    rows[::2] = True
    with pytest.raises(ArgumentError, match="contiguous"):
        homodyne_recon(k, rows[:, None])
    no_centre = torch.zeros(32, 1, dtype=torch.bool)
    no_centre[:10] = True
    with pytest.raises(ArgumentError, match="centre"):
        homodyne_recon(k, no_centre)
    no_overscan = torch.zeros(32, 1, dtype=torch.bool)
    no_overscan[:17] = True
    with pytest.raises(ArgumentError, match="overscan"):
        homodyne_recon(k, no_overscan)
    with pytest.raises(ArgumentError, match="mask shape"):
        homodyne_recon(k, torch.ones(16, 32, dtype=torch.bool))


# ------------------------------------------------------------------ undersampling masks
def test_uniform_mask_acceleration_and_centre():
    m = uniform_mask((256, 128), 4)
    assert m.shape == (256, 128) and mask_acceleration(m) == 4.0
    assert m[128].all()  # the k = 0 line
    assert bool((m == m[:, :1]).all())
    m_acs = uniform_mask((256, 128), 4, acs_lines=24)
    assert m_acs[128 - 12:128 + 12].all()
    assert m_acs[:, 0].sum().item() == 64 + 24 - 6  # 6 of the 24 ACS lines are already on the R-grid
    shifted = uniform_mask((256, 128), 3, offset=1)
    assert shifted[129, 0] and not shifted[128, 0]
    assert uniform_mask((64, 8), 1).all()


def test_variable_density_mask_acceleration_seed_and_density():
    m = variable_density_mask((256, 64), 4, acs_lines=20, seed=1)
    assert m[:, 0].sum().item() == 64 and mask_acceleration(m) == 4.0
    assert m[118:138].all()
    assert bool((m == m[:, :1]).all())
    assert torch.equal(m, variable_density_mask((256, 64), 4, acs_lines=20, seed=1))
    assert not torch.equal(m, variable_density_mask((256, 64), 4, acs_lines=20, seed=2))
    # denser near the centre: average over seeds, outside the ACS block
    masks = [variable_density_mask((256, 1), 4, acs_lines=0, seed=s)[:, 0] for s in range(50)]
    freq = torch.stack(masks).double().mean(0)
    inner = torch.cat([freq[96:118], freq[138:160]]).mean()
    outer = torch.cat([freq[:32], freq[-32:]]).mean()
    assert inner > 3 * outer
    assert mask_acceleration(variable_density_mask((200, 8), 3.3, seed=0)) == pytest.approx(200 / 61)


def test_mask_bad_input():
    with pytest.raises(ArgumentError, match="R must be"):
        uniform_mask((64, 64), 0)
    with pytest.raises(ArgumentError, match="R must be"):
        uniform_mask((64, 64), 2.5)
    with pytest.raises(ArgumentError, match="R must be"):
        variable_density_mask((64, 64), 0.5)
    with pytest.raises(ArgumentError, match="R must be"):
        variable_density_mask((64, 64), float("nan"))
    with pytest.raises(ArgumentError, match="acs_lines"):
        variable_density_mask((64, 64), 8, acs_lines=20)
    with pytest.raises(ArgumentError, match="mask contains NaN"):
        apply_mask(torch.zeros(8, 8), torch.full((8, 8), float("nan")))
    with pytest.raises(ArgumentError, match="shape"):
        uniform_mask((64,), 2)
    with pytest.raises(ArgumentError, match="mask shape"):
        apply_mask(torch.zeros(4, 64, 64), torch.ones(32, 64))
    with pytest.raises(ArgumentError, match="mask shape"):
        zero_filled_recon(np.zeros((64, 64)), np.ones((64, 32)))


def test_apply_mask_and_zero_filled_recon_broadcast():
    k = torch.randn(3, 16, 8, dtype=torch.complex64)
    m = uniform_mask((16, 8), 2)
    out = apply_mask(k, m[:, :1])
    assert torch.equal(out[:, 1::2], torch.zeros_like(out[:, 1::2])) and torch.equal(out[:, ::2], k[:, ::2])
    torch.testing.assert_close(zero_filled_recon(k, m), ifft2c(out))


# ------------------------------------------------------------------------------ scan time
def test_scan_time_worked_examples():
    assert scan_time(500.0, 256, 2) == 256000.0                      # 500 ms × 256 lines × 2
    assert scan_time(3.0, 192, n_partitions=160) == pytest.approx(92160.0)  # 3D GRE
    assert scan_time(4000.0, 256, echo_train_length=16) == 64000.0  # TSE
    assert scan_time(500.0, 256, acceleration=2.0) == 64000.0
    with pytest.raises(ArgumentError, match="TR"):
        scan_time(-1.0, 256)
    with pytest.raises(ArgumentError, match="TR"):
        scan_time(float("nan"), 256)
    with pytest.raises(ArgumentError, match="nex"):
        scan_time(500.0, 256, 0)
    with pytest.raises(ArgumentError, match="acceleration"):
        scan_time(500.0, 256, acceleration=0.5)


def test_reconstructions_are_differentiable():
    g = torch.Generator().manual_seed(6)
    k = torch.randn(8, 6, dtype=torch.complex128, generator=g, requires_grad=True)
    mask = partial_fourier_mask((8, 6), 0.75)
    assert torch.autograd.gradcheck(lambda x: homodyne_recon(x, mask), (k,))
    assert torch.autograd.gradcheck(lambda x: zero_filled_recon(x, mask), (k,))
