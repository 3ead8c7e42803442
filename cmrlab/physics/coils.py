"""Receive coil arrays: sensitivity maps, root-sum-of-squares and SENSE combination, SENSE unfolding.

A coil ``c`` sees the object ``ρ`` weighted by its complex sensitivity ``S_c(r)``:
``x_c(r) = S_c(r) · ρ(r)``. Coil images are stacked on a coil axis, by default the third from
last: ``(..., coils, Ny, Nx)``. Same array rule as the rest of ``cmrlab.physics``: numpy in →
numpy out, torch in → torch out on the same device.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from cmrlab.checks import check_int, check_int_tuple, check_number
from cmrlab.errors import ArgumentError
from cmrlab.physics.constants import as_output, complex_dtype, image_tensor
from cmrlab.physics.kspace import ArrayT, DeviceLike, fftc

__all__ = ["coil_combine_rss", "coil_sensitivities", "sense_combine", "sense_unfold"]


def coil_sensitivities(shape: tuple[int, int], n_coils: int = 8, *, coil_radius: float = 1.5,
                       coil_width: float = 0.8, start_angle: float = 0.0, normalize: bool = True,
                       dtype: torch.dtype = torch.complex64, device: DeviceLike = None) -> torch.Tensor:
    """Smooth complex sensitivity maps of ``n_coils`` loop coils evenly spaced around the FOV.

    Geometry (in units of the half-FOV, so the image spans [-1, 1) on each axis): coil ``j`` is
    centred at angle ``θ_j = start_angle + 2πj/n_coils`` (radians, from +x towards +y) on a
    circle of radius ``coil_radius``.
    Each coil is a long rectangular loop parallel to z, i.e. two antiparallel straight wires
    ``coil_width`` apart along the tangent. By Biot–Savart a straight wire at ``w`` gives, at
    ``r`` (``d = (r - w)`` as the complex number ``d_x + i d_y``), the transverse field
    ``B_x + iB_y ∝ i / conj(d)`` (used here as the complex sensitivity; taking the conjugate
    instead would only flip the sign of the phase); the loop's sensitivity is the difference of
    its two wires::

        S_j(r) = i / conj(r - w_j⁺)  -  i / conj(r - w_j⁻)

    a smooth map whose magnitude falls off with distance from the coil and whose phase varies
    across the FOV, like a real surface coil. ``coil_radius`` must exceed √2 so that the wires
    lie outside the square FOV.

    ``normalize=True`` scales all maps together so that ``Σ_c |S_c|² = 1`` at every pixel
    (unit-norm maps, as ESPIRiT estimates them): then the RSS of the coil images is exactly
    ``|ρ|``. ``normalize=False`` keeps the raw Biot–Savart profile, scaled so that its maximum
    RSS is 1, showing the brighter periphery of an array without intensity correction.
    Returns ``(n_coils, Ny, Nx)`` complex maps.
    """
    ny, nx = check_int_tuple("shape (Ny, Nx)", shape, length=2)
    n_coils = check_int("n_coils", n_coils)
    coil_radius = check_number("coil_radius (in half-FOVs: the coils lie outside the FOV)", coil_radius,
                               math.sqrt(2), low_open=True)
    coil_width = check_number("coil_width", coil_width, 0, low_open=True)
    start_angle = check_number("start_angle", start_angle)
    if dtype not in (torch.complex64, torch.complex128):
        raise ArgumentError(f"dtype must be torch.complex64 or torch.complex128, got {dtype}")

    y = (torch.arange(ny, dtype=torch.float64, device=device) - ny // 2) / (ny / 2)
    x = (torch.arange(nx, dtype=torch.float64, device=device) - nx // 2) / (nx / 2)
    r = torch.complex(x[None, :].expand(ny, nx), y[:, None].expand(ny, nx))    # x + iy
    theta = start_angle + 2 * math.pi * torch.arange(n_coils, dtype=torch.float64, device=device) / n_coils
    centre = coil_radius * torch.polar(torch.ones_like(theta), theta)            # (C,)
    tangent = 1j * torch.polar(torch.ones_like(theta), theta)                    # unit tangent
    wire_p = (centre + 0.5 * coil_width * tangent)[:, None, None]
    wire_m = (centre - 0.5 * coil_width * tangent)[:, None, None]
    maps = 1j / (r - wire_p).conj() - 1j / (r - wire_m).conj()                  # (C, Ny, Nx)
    rss = maps.abs().square().sum(0).sqrt()
    maps = maps / rss if normalize else maps / rss.max()
    return maps.to(dtype)


def _coil_axis(t: torch.Tensor, coil_dim: int, name: str) -> int:
    if not -t.ndim <= coil_dim < t.ndim:
        raise ArgumentError(f"coil_dim={coil_dim} is out of range for {name} of shape {tuple(t.shape)}")
    return coil_dim


def coil_combine_rss(coil_images: ArrayT, coil_dim: int = -3) -> ArrayT:
    """Root-sum-of-squares coil combination: ``sqrt(Σ_c |x_c|²)`` over ``coil_dim``.

    Needs no sensitivity maps; the result is the magnitude image weighted by ``sqrt(Σ|S_c|²)``
    (uniform for unit-norm maps). Returns a real array.
    """
    t, from_numpy = image_tensor(coil_images, "coil_images")
    dim = _coil_axis(t, coil_dim, "coil_images")
    return as_output((t * t.conj()).real.sum(dim).sqrt(), from_numpy)  # avoids |x|'s slow hypot


def sense_combine(coil_images: ArrayT, maps: Any, coil_dim: int = -3) -> ArrayT:
    """SENSE-style (Roemer) combination with known maps: ``ρ = Σ_c conj(S_c) x_c / Σ_c |S_c|²``.

    This is the least-squares estimate of ``ρ`` from ``x_c = S_c ρ``: exact without noise,
    complex-valued (keeps the object's phase), and optimal in SNR for white, uncorrelated coil
    noise. Pixels where every map is 0 give 0. ``maps`` must broadcast against ``coil_images``.
    """
    t, from_numpy = image_tensor(coil_images, "coil_images")
    s, _ = image_tensor(maps, "maps")
    s = s.to(t.device)
    try:
        torch.broadcast_shapes(t.shape, s.shape)
    except RuntimeError:
        raise ArgumentError(f"maps shape {tuple(s.shape)} does not match "
                            f"coil_images shape {tuple(t.shape)}") from None
    dim = _coil_axis(t, coil_dim, "coil_images")
    num = (s.conj() * t).sum(dim)
    den = s.abs().square().sum(dim)
    out = torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(num))
    return as_output(out, from_numpy)


def sense_unfold(kspace: ArrayT, maps: Any, R: int, *, offset: int = 0,
                 regularization: float = 0.0) -> ArrayT:
    """SENSE reconstruction (Pruessmann et al., 1999) of uniformly undersampled Cartesian k-space.

    ``kspace`` is ``(..., coils, Ny, Nx)`` with only the lines of ``uniform_mask(shape, R,
    offset=offset)`` (no ACS lines) non-zero; ``maps`` is ``(coils, Ny, Nx)``. Keeping every R-th
    line shrinks the FOV R times, so the zero-filled image of coil ``c`` is a sum of R shifted
    copies (with ``s = offset``)::

        x_c(y) = (1/R) Σ_{r=0}^{R-1} e^{-i2π r s / R} S_c(y + r·Ny/R) ρ(y + r·Ny/R)

    For each of the ``Ny/R`` rows, the coils give ``n_coils ≥ R`` equations for the ``R``
    unknown pixels, solved by (optionally Tikhonov-regularised) least squares
    ``ρ = (EᴴE + λI)⁻¹ Eᴴ x``. Without noise and with exact maps the image is recovered exactly.
    ``Ny`` must be a multiple of ``R``. Returns the complex image ``(..., Ny, Nx)``.
    """
    k, from_numpy = image_tensor(kspace, "kspace")
    s, _ = image_tensor(maps, "maps")
    s = s.to(device=k.device, dtype=complex_dtype(k))
    R = check_int("R", R)
    if k.ndim < 3:
        raise ArgumentError(f"kspace must be (..., coils, Ny, Nx), got shape {tuple(k.shape)}")
    if s.shape != k.shape[-3:]:
        raise ArgumentError(f"maps shape {tuple(s.shape)} must equal the (coils, Ny, Nx) "
                            f"of kspace {tuple(k.shape)}")
    n_coils, ny, nx = s.shape
    if ny % R:
        raise ArgumentError(f"Ny={ny} must be a multiple of R={R}")
    if n_coils < R:
        raise ArgumentError(f"R={R} needs at least R coils, got {n_coils}")
    offset = check_int("offset", offset, 0, R - 1)
    lam = check_number("regularization", regularization, 0)

    x = fftc(k, (-2, -1), inverse=True)[..., : ny // R, :]                # (..., C, Ny/R, Nx)
    step = ny // R
    r_index = torch.arange(R, dtype=torch.float64)
    weights = torch.polar(torch.ones(R, dtype=torch.float64), -2 * math.pi * r_index * offset / R)
    weights = (weights / R).to(device=k.device, dtype=s.dtype)
    # E[y, x, c, r] = w_r S_c(y + r·step, x) for the rows y of the reduced FOV
    enc = torch.stack([weights[r] * s[:, r * step:(r + 1) * step, :] for r in range(R)], dim=-1)
    enc = enc.permute(1, 2, 0, 3)                                          # (Ny/R, Nx, C, R)
    eh = enc.conj().transpose(-2, -1)                                      # (Ny/R, Nx, R, C)
    gram = eh @ enc + lam * torch.eye(R, dtype=enc.dtype, device=enc.device)
    rhs = eh @ x.movedim(-3, -1).unsqueeze(-1)                             # (..., Ny/R, Nx, R, 1)
    rho = torch.linalg.solve(gram, rhs).squeeze(-1)                        # (..., Ny/R, Nx, R)
    out = torch.cat([rho[..., r] for r in range(R)], dim=-2)                # (..., Ny, Nx)
    return as_output(out, from_numpy)
