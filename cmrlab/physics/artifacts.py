"""Image artifacts simulated where they arise: Gibbs ringing, motion, a k-space spike, a bias field.

Each k-space artifact takes an image ``(..., Ny, Nx)``, goes to k-space with :func:`fft2c`,
corrupts it there and comes back with :func:`ifft2c`, so the result is a complex image of the
same shape (numpy in → numpy out, torch in → torch out on the same device). Random choices are
seeded and drawn on the CPU, so a seed gives the same artifact on every device.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from cmrlab.checks import check_int, check_number
from cmrlab.errors import ArgumentError
from cmrlab.physics.constants import as_output, image_tensor
from cmrlab.physics.kspace import ArrayT, DeviceLike, fftc

__all__ = ["bias_field", "gibbs_ringing", "motion_artifact", "spike_artifact"]


def _image(image: Any) -> tuple[torch.Tensor, bool]:
    t, from_numpy = image_tensor(image, "image")
    if t.ndim < 2:
        raise ArgumentError(f"image must have at least 2 dimensions (..., Ny, Nx), "
                            f"got shape {tuple(t.shape)}")
    return t, from_numpy


def gibbs_ringing(image: ArrayT, keep: int | tuple[int, int]) -> ArrayT:
    """Truncation (Gibbs) artifact: keep only the central ``keep`` k-space samples per axis.

    All other samples are set to 0 and the image is reconstructed on the original grid (zero-
    filled). A truncated Fourier series overshoots at every sharp edge: the first peak lies about
    ``N/keep`` pixels from the edge, the ripples repeat every ``2·N/keep`` pixels (N the image size
    along that axis), and the first peak exceeds the edge height by ≈ 9 % of the jump
    (the Wilbraham–Gibbs constant, 8.95 %), however many samples are kept.
    ``keep`` is one count for both axes or ``(keep_y, keep_x)``; the kept block is
    ``[N//2 - keep//2, N//2 - keep//2 + keep)``, centred on k = 0.
    """
    t, from_numpy = _image(image)
    ny, nx = t.shape[-2:]
    if isinstance(keep, (tuple, list)):
        if len(keep) != 2:
            raise ArgumentError(f"keep must be an integer or a (keep_y, keep_x) pair, got {keep!r}")
        ky, kx = (check_int("keep", v) for v in keep)
    else:
        ky = kx = check_int("keep", keep)
    if ky > ny or kx > nx:
        raise ArgumentError(f"keep={keep!r} exceeds the image shape {(ny, nx)}")
    k = fftc(t, (-2, -1), inverse=False)
    rows = torch.zeros(ny, dtype=torch.bool, device=t.device)
    cols = torch.zeros(nx, dtype=torch.bool, device=t.device)
    rows[ny // 2 - ky // 2: ny // 2 - ky // 2 + ky] = True
    cols[nx // 2 - kx // 2: nx // 2 - kx // 2 + kx] = True
    k = k * (rows[:, None] & cols[None, :])
    return as_output(fftc(k, (-2, -1), inverse=True), from_numpy)


def motion_artifact(image: ArrayT, fraction: float = 0.2, max_shift: float = 4.0, *, seed: int = 0) -> ArrayT:
    """Rigid in-plane motion during the scan: some phase-encoding lines see a shifted object.

    A translation by ``(Δy, Δx)`` pixels multiplies k-space by the phase ramp
    ``exp(-i2π (k_y Δy / Ny + k_x Δx / Nx))`` (Fourier shift theorem). Each line is acquired at
    a different time, so if the patient moved during some lines, only those lines carry the
    ramp. Here ``round(fraction · Ny)`` lines, chosen at random, each get their own shift drawn
    uniformly in ``[-max_shift, max_shift]`` pixels along both axes. The inconsistent lines
    spread as ghosts along the phase-encoding direction (y). The magnitude of every k-space
    sample is unchanged. ``seed`` fixes the lines and shifts; leading axes (coils, slices of a
    batch) share the same motion, as the coils of one scan do.
    """
    t, from_numpy = _image(image)
    fraction = check_number("fraction", fraction, 0, 1)
    max_shift = check_number("max_shift", max_shift, 0)
    ny, nx = t.shape[-2:]
    n_lines = round(fraction * ny)
    gen = torch.Generator().manual_seed(check_int("seed", seed, None))
    lines = torch.randperm(ny, generator=gen)[:n_lines]
    shifts = (torch.rand(n_lines, 2, generator=gen, dtype=torch.float64) * 2 - 1) * max_shift
    ky = (lines.to(torch.float64) - ny // 2) / ny                          # (L,) cycles per pixel
    kx = (torch.arange(nx, dtype=torch.float64) - nx // 2) / nx            # (Nx,)
    ramp = torch.polar(torch.ones(n_lines, nx, dtype=torch.float64),
                       -2 * math.pi * (ky[:, None] * shifts[:, :1] + kx[None, :] * shifts[:, 1:]))
    k = fftc(t, (-2, -1), inverse=False)
    phase = torch.ones(ny, nx, dtype=k.dtype, device=k.device)
    phase[lines.to(k.device)] = ramp.to(device=k.device, dtype=k.dtype)
    return as_output(fftc(k * phase, (-2, -1), inverse=True), from_numpy)


def spike_artifact(image: ArrayT, position: tuple[int, int], amplitude: float = 1.0,
                   phase: float = 0.0) -> ArrayT:
    """A k-space spike (a single corrupted sample, e.g. from an electrostatic discharge).

    Adds ``A·e^{iφ}`` to the sample at ``position = (k_y, k_x)`` (offsets from the k-space
    centre, in samples), with ``A = amplitude · max|k-space|``. One k-space sample is one 2D
    complex exponential in the image, so the whole image gets a single-frequency stripe
    (herringbone) pattern::

        Δimage(y, x) = A e^{iφ} / √(Ny·Nx) · exp(i2π (k_y y / Ny + k_x x / Nx))

    (pixel coordinates from the image centre): stripes perpendicular to ``(k_y, k_x)`` with a
    period of ``1 / sqrt((k_y/Ny)² + (k_x/Nx)²)`` pixels.
    """
    t, from_numpy = _image(image)
    ny, nx = t.shape[-2:]
    if not isinstance(position, (tuple, list)) or len(position) != 2:
        raise ArgumentError(f"position must be a (k_y, k_x) pair of integers, got {position!r}")
    py, px = (check_int("position", v, None) for v in position)
    iy, ix = ny // 2 + py, nx // 2 + px
    if not (0 <= iy < ny and 0 <= ix < nx):
        raise ArgumentError(f"position {position!r} lies outside k-space of shape {(ny, nx)}")
    amplitude = check_number("amplitude", amplitude, 0, low_open=True)
    phase = check_number("phase", phase)
    k = fftc(t, (-2, -1), inverse=False)
    peak = k.abs().amax(dim=(-2, -1))                                     # one spike size per image
    spike = torch.zeros_like(k)
    spike[..., iy, ix] = amplitude * peak * complex(math.cos(phase), math.sin(phase))
    return as_output(fftc(k + spike, (-2, -1), inverse=True), from_numpy)


def bias_field(shape: tuple[int, ...], *, order: int = 3, strength: float = 0.2, seed: int = 0,
               dtype: torch.dtype = torch.float32, device: DeviceLike = None) -> torch.Tensor:
    """A smooth multiplicative intensity bias field (receive-coil shading), mean exactly 1.

    ``b(r) = exp(p(r)) / mean(exp(p))`` where ``p`` is a random polynomial of total degree
    ``order`` in the normalised coordinates ``r ∈ [-1, 1]^d`` (2D ``(Ny, Nx)`` or 3D
    ``(Nz, Ny, Nx)``), its non-constant monomial coefficients drawn from a seeded normal
    distribution and scaled so that ``p`` has standard deviation ``strength`` over the grid.
    The exponential keeps the field positive; a low order keeps it smooth (no structure finer
    than the FOV/order). With the defaults the field typically spans about 0.5–1.7 over the
    FOV (its corners are the extremes). Multiply an image by it to simulate the shading that N4
    corrects.
    """
    if not isinstance(shape, (tuple, list, torch.Size)) or len(shape) not in (2, 3):
        raise ArgumentError(f"shape must be (Ny, Nx) or (Nz, Ny, Nx), got {shape!r}")
    dims = [check_int("shape", n, 2) for n in shape]
    order = check_int("order", order)
    strength = check_number("strength", strength, 0, low_open=True)
    if dtype not in (torch.float32, torch.float64):
        raise ArgumentError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    axes = torch.meshgrid(*[torch.linspace(-1, 1, n, dtype=torch.float64) for n in dims], indexing="ij")
    powers = [p for p in _monomials(len(dims), order) if sum(p) > 0]
    gen = torch.Generator().manual_seed(check_int("seed", seed, None))
    coef = torch.randn(len(powers), generator=gen, dtype=torch.float64)
    poly = torch.zeros(dims, dtype=torch.float64)
    for c, p in zip(coef, powers):
        term = torch.ones(dims, dtype=torch.float64)
        for axis, e in zip(axes, p):
            if e:
                term = term * axis ** e
        poly = poly + c * term
    poly = (poly - poly.mean()) * (strength / poly.std())
    field = poly.exp()
    return (field / field.mean()).to(dtype=dtype, device=device)


def _monomials(n_dims: int, order: int) -> list[tuple[int, ...]]:
    """All exponent tuples of ``n_dims`` variables with total degree ≤ ``order``."""
    if n_dims == 1:
        return [(e,) for e in range(order + 1)]
    return [(e, *rest) for e in range(order + 1) for rest in _monomials(n_dims - 1, order - e)]
