"""Thermal noise: complex Gaussian noise at a target SNR, NEX averaging, SNR measurement.

**Noise model.** MRI noise is white, zero-mean complex Gaussian: the real and the imaginary
channel each get independent ``N(0, σ²)`` noise. ``σ`` (the *per-channel* SD) is the one noise
level used everywhere here. The centred FFTs are orthonormal, so noise with per-channel SD ``σ``
added in k-space has per-channel SD ``σ`` in the fully sampled image too — adding it in k-space
or in image space is the same.

**SNR definition.** ``SNR = mean signal in an ROI / σ``, with ``σ`` the per-channel noise SD:
:func:`snr_to_sigma` turns a target SNR into ``σ = mean(|ρ|_ROI) / SNR``.

**Magnitude images are Rician.** ``|ρ + n|`` follows a Rice distribution; where there is no
signal (the background) it is Rayleigh, with mean ``σ·√(π/2) ≈ 1.253σ`` and SD
``σ·√(2 - π/2) ≈ 0.655σ``. So the background SD of a magnitude image underestimates ``σ``, and
:func:`measure_snr` (ROI mean / background SD) overestimates the SNR by 1/0.655 unless the
Rayleigh correction is applied (``rayleigh_correction=True``, which multiplies by 0.655).
"""
from __future__ import annotations

import math
from typing import Any

import torch

from cmrlab.checks import check_int, check_number
from cmrlab.errors import ArgumentError
from cmrlab.physics.constants import as_output, check_no_nan, complex_dtype, image_tensor
from cmrlab.physics.kspace import Array, ArrayT

__all__ = [
    "RAYLEIGH_MEAN_FACTOR",
    "RAYLEIGH_SD_FACTOR",
    "add_noise",
    "measure_snr",
    "nex_average",
    "snr_to_sigma",
]

#: Mean of Rayleigh-distributed background magnitude, in units of σ: √(π/2) ≈ 1.2533.
RAYLEIGH_MEAN_FACTOR = math.sqrt(math.pi / 2)
#: SD of Rayleigh-distributed background magnitude, in units of σ: √(2 − π/2) ≈ 0.6551.
RAYLEIGH_SD_FACTOR = math.sqrt(2 - math.pi / 2)


def _generator(seed: int | None, generator: torch.Generator | None,
               device: torch.device) -> torch.Generator | None:
    if seed is not None and generator is not None:
        raise ArgumentError("give seed or generator, not both")
    if generator is not None:
        return generator
    if seed is None:
        return None
    return torch.Generator(device=device).manual_seed(check_int("seed", seed, None))


def _bool_mask(mask: Any, like: torch.Tensor, name: str) -> torch.Tensor:
    m, _ = image_tensor(mask, name) if not isinstance(mask, torch.Tensor) else (mask, False)
    if tuple(m.shape) != tuple(like.shape):
        raise ArgumentError(f"{name} shape {tuple(m.shape)} must equal the image shape {tuple(like.shape)}")
    m = m.to(like.device) != 0
    if not bool(m.any()):
        raise ArgumentError(f"{name} selects no pixel")
    return m


def snr_to_sigma(reference: Any, snr: float, signal_mask: Any = None) -> float:
    """Per-channel noise SD that gives ``reference`` the signal-to-noise ratio ``snr``.

    ``σ = mean(|reference|[signal_mask]) / snr`` (the whole array when ``signal_mask`` is None).
    ``reference`` is the noise-free image, e.g. the combined image of a coil array.
    """
    snr = check_number("snr", snr, 0, low_open=True)
    ref, _ = image_tensor(reference, "reference")
    check_no_nan(ref, "reference")
    mag = ref.abs()
    if signal_mask is not None:
        mag = mag[_bool_mask(signal_mask, ref, "signal_mask")]
    mean = float(mag.mean())
    if mean <= 0:
        raise ArgumentError("reference has no signal in signal_mask (mean magnitude 0)")
    return mean / snr


def add_noise(x: ArrayT, sigma: float, *, seed: int | None = None,
              generator: torch.Generator | None = None) -> ArrayT:
    """Add white complex Gaussian noise, per-channel SD ``sigma``: ``x + σ(a + ib)``, a, b ~ N(0, 1).

    Works on images or k-space of any shape (every element gets independent noise); a real
    ``x`` becomes complex. ``seed`` makes the noise reproducible on a given device (a generator
    on ``x``'s device is created); or pass your own ``generator``; neither uses torch's global RNG.
    ``sigma = 0`` returns a complex copy of ``x``.
    """
    t, from_numpy = image_tensor(x, "x")
    s = check_number("sigma", sigma, 0)
    gen = _generator(seed, generator, t.device)
    cdt = complex_dtype(t)
    # torch's complex randn has variance 1/2 per channel, hence the √2.
    noise = torch.randn(t.shape, dtype=cdt, device=t.device, generator=gen)
    return as_output(torch.add(t.to(cdt), noise, alpha=s * math.sqrt(2.0)), from_numpy)


def nex_average(x: ArrayT, sigma: float, nex: int, *, seed: int | None = None,
                generator: torch.Generator | None = None) -> ArrayT:
    """Average of ``nex`` independent noisy acquisitions of the noise-free ``x`` (NEX averaging).

    Signal adds coherently and noise incoherently, so the per-channel noise SD of the average is
    ``σ/√NEX`` and the SNR grows as ``√NEX`` — at the price of ``NEX`` times the scan time.
    """
    nex = check_int("nex", nex)
    t, from_numpy = image_tensor(x, "x")
    gen = _generator(seed, generator, t.device)
    total = add_noise(t, sigma, generator=gen)
    for _ in range(nex - 1):
        total = total + add_noise(t, sigma, generator=gen)
    return as_output(total / nex, from_numpy)


def measure_snr(image: Array, signal_mask: Any, background_mask: Any, *,
                rayleigh_correction: bool = False) -> float:
    """Measured SNR = mean of the image in the signal ROI / SD of the image in the background.

    This is the two-region method of the brain thesis (ROI mean over the SD of the air outside
    the anatomy). A complex image is measured on its magnitude. In a magnitude image the
    background is Rayleigh distributed and its SD is only ``0.655 σ``; ``rayleigh_correction=True``
    divides the background SD by ``√(2 - π/2) ≈ 0.655`` so that the result estimates
    ``mean / σ``, the SNR as defined by :func:`snr_to_sigma`. The SD uses Bessel's correction
    (n - 1). Masks must have the image's shape; returns a Python float.
    """
    img, _ = image_tensor(image, "image")
    check_no_nan(img, "image")
    if img.is_complex():
        img = img.abs()
    sig = _bool_mask(signal_mask, img, "signal_mask")
    bg = _bool_mask(background_mask, img, "background_mask")
    if int(bg.sum()) < 2:
        raise ArgumentError("background_mask must select at least 2 pixels")
    sd = float(img[bg].double().std())
    if sd == 0:
        raise ArgumentError("the background has zero SD (a noise-free image has no finite SNR)")
    if rayleigh_correction:
        sd /= RAYLEIGH_SD_FACTOR
    return float(img[sig].double().mean()) / sd
