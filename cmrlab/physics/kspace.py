"""k-space: centred Fourier transforms, sampling an object at a FOV and matrix, masks, partial Fourier.

Conventions of the k-space, coil, noise and artifact modules
--------------------------------------------------------------
* **Array types.** Every function that takes an image or k-space accepts a ``torch.Tensor`` or a
  ``numpy.ndarray`` and follows one rule: *numpy in → numpy out, torch in → torch out, on the
  input's device* (the rule of :mod:`cmrlab.physics.constants`). The work is done with torch, so
  it runs on a GPU and is differentiable. Functions that build something from a shape (masks,
  coil maps, bias fields) return torch tensors on the ``device`` they are given.
* **Precision.** ``complex64`` and ``complex128`` are both supported; an image keeps its precision,
  NumPy or torch, and a real input becomes the complex type of the same precision (``float32`` →
  ``complex64``, ``float64`` → ``complex128``): a large single-precision k-space stays single.
* **Axes.** Images are ``(..., y, x)``: the last axis is the readout (frequency-encoding)
  direction ``x`` and the one before it the phase-encoding direction ``y``; any leading axes
  (batch, coils, slices) are carried along. A row of k-space is one phase-encoding line.
* **Centre.** Along an axis of length ``N``, sample ``n`` sits at position ``(n - N//2)·Δx`` and
  k-space sample ``m`` at spatial frequency ``(m - N//2)·Δk``: the centre of k-space (``k = 0``)
  is at index ``N//2``, for even and odd ``N``.
* **Units.** Lengths in any unit (mm in the course); spatial frequencies in cycles per that unit.

The Fourier helpers are orthonormal (``norm="ortho"``), so they preserve energy (Parseval) and
white complex Gaussian noise keeps its standard deviation from k-space to image space.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, TypeVar, Union

import numpy as np
import torch

from cmrlab.checks import check_int, check_int_tuple, check_number
from cmrlab.errors import ArgumentError
from cmrlab.physics.constants import (
    as_output,
    check_no_nan,
    complex_dtype,
    image_tensor,
    real_dtype,
)

__all__ = [
    "Ellipse",
    "SampledImage",
    "apply_mask",
    "ellipse_kspace",
    "fft2c",
    "fft3c",
    "fftc",
    "homodyne_recon",
    "ifft2c",
    "ifft3c",
    "mask_acceleration",
    "partial_fourier_mask",
    "sample_object",
    "scan_time",
    "shepp_logan_ellipses",
    "uniform_mask",
    "variable_density_mask",
    "zero_filled_recon",
]

ArrayT = TypeVar("ArrayT", torch.Tensor, np.ndarray)
Array = Union[torch.Tensor, np.ndarray]
DeviceLike = Union[str, torch.device, None]


# --------------------------------------------------------------------------------------------
# Argument helpers of this module
# --------------------------------------------------------------------------------------------
_positive_number = functools.partial(check_number, minimum=0.0, low_open=True)


def _pair(value: Any, name: str, convert: Callable[[str, Any], Any]) -> tuple:
    """A scalar or a pair → a ``(y, x)`` pair, each converted with ``convert(name, v)``."""
    if isinstance(value, (tuple, list, np.ndarray, torch.Tensor)):
        items = list(value)
        if len(items) != 2:
            raise ArgumentError(f"{name} must be a number or a (y, x) pair, got {value!r}")
        return tuple(convert(name, v) for v in items)
    v = convert(name, value)
    return (v, v)


def _centred_positions(n: int, step: float, *, device: DeviceLike = None,
                       dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Positions ``(i - n//2) * step`` for ``i = 0 … n-1`` (the centring convention of this module)."""
    return (torch.arange(n, device=device, dtype=dtype) - n // 2) * step


# --------------------------------------------------------------------------------------------
# Centred orthonormal FFTs
# --------------------------------------------------------------------------------------------
def _centring(n: int, inverse: bool, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Factors ``(pre, post)`` that turn a plain DFT of length ``n`` into the centred one.

    With ``c = n//2`` the centred DFT is ``Z[m] = Σ_j x[j] e^{∓i2π(m-c)(j-c)/n}``, and expanding
    the exponent gives ``Z = post ⊙ DFT(pre ⊙ x)`` with ``pre[j] = e^{±i2πcj/n}`` and
    ``post[m] = e^{∓i2π(c² - cm)/n}`` (upper signs forward). For even ``n`` these are the real
    signs ``pre[j] = (-1)^j`` and ``post[m] = (-1)^(m+c)``: exact, and cheaper than the two
    ``roll`` copies of ``ifftshift``/``fftshift``, which also slow down on the strided output of a
    transform along a non-last axis.
    """
    rdt = real_dtype(like)
    j = torch.arange(n, device=like.device, dtype=torch.float64)
    c = n // 2
    if n % 2 == 0:
        sign = 1.0 - 2.0 * (j % 2)
        return sign.to(rdt), (sign * (1.0 - 2.0 * (c % 2))).to(rdt)
    s = 1.0 if inverse else -1.0
    ones = torch.ones_like(j)
    pre = torch.polar(ones, -s * 2 * math.pi * c * j / n)
    post = torch.polar(ones, s * 2 * math.pi * (c * c - c * j) / n)
    cdt = complex_dtype(like)
    return pre.to(cdt), post.to(cdt)


def _centring_nd(shape: Sequence[int], dims: tuple[int, ...], inverse: bool,
                 like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Outer products of :func:`_centring` over ``dims``, shaped to broadcast against ``shape``."""
    pre = post = None
    ndim = len(shape)
    for d in dims:
        d = d % ndim
        p, q = _centring(shape[d], inverse, like)
        view = [1] * (ndim - d)
        view[0] = shape[d]
        p, q = p.reshape(view), q.reshape(view)
        pre = p if pre is None else pre * p
        post = q if post is None else post * q
    return pre, post


def fftc(x: torch.Tensor, dims: tuple[int, ...], inverse: bool = False,
         weight: torch.Tensor | None = None) -> torch.Tensor:
    """Centred orthonormal FFT of a tensor over ``dims`` (inverse if asked), via modulation.

    The tensor-level transform behind :func:`fft2c` and friends, for code that already holds a
    complex or real tensor (coils, noise, artifacts): ``fftshift(fft(ifftshift(x)))`` along
    ``dims``, orthonormal, on ``x``'s device and precision. ``weight`` (e.g. a sampling mask) multiplies ``x`` first, folded into the pre-factor so that
    it costs no extra pass over ``x``.
    """
    pre, post = _centring_nd(x.shape, dims, inverse, x)
    if weight is not None:
        pre = pre * weight
    fft = torch.fft.ifftn if inverse else torch.fft.fftn
    return fft(x * pre, dim=dims, norm="ortho") * post


def _fftc_public(x: Any, ndim: int, inverse: bool) -> Array:
    t, from_numpy = image_tensor(x, "x")
    if t.ndim < ndim:
        raise ArgumentError(f"x must have at least {ndim} dimensions, got shape {tuple(t.shape)}")
    return as_output(fftc(t, tuple(range(-ndim, 0)), inverse), from_numpy)


def fft2c(x: ArrayT) -> ArrayT:
    """Centred orthonormal 2D Fourier transform over the last two axes: image → k-space.

    ``fftshift(fft2(ifftshift(x), norm="ortho"))``: the image centre (index ``N//2``) is the
    origin and k = 0 lands at index ``N//2``. Orthonormal means ``‖fft2c(x)‖ = ‖x‖`` (Parseval)
    and ``ifft2c(fft2c(x)) == x``. Leading axes are a batch.
    """
    return _fftc_public(x, 2, inverse=False)


def ifft2c(x: ArrayT) -> ArrayT:
    """Centred orthonormal inverse 2D Fourier transform over the last two axes: k-space → image."""
    return _fftc_public(x, 2, inverse=True)


def fft3c(x: ArrayT) -> ArrayT:
    """Centred orthonormal 3D Fourier transform over the last three axes (see :func:`fft2c`)."""
    return _fftc_public(x, 3, inverse=False)


def ifft3c(x: ArrayT) -> ArrayT:
    """Centred orthonormal inverse 3D Fourier transform over the last three axes."""
    return _fftc_public(x, 3, inverse=True)


# --------------------------------------------------------------------------------------------
# Imaging a continuous object at a chosen FOV and matrix
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ellipse:
    """A uniform ellipse, an analytic object whose k-space is known in closed form.

    ``intensity`` is added inside the ellipse (overlapping ellipses add, as in Shepp–Logan),
    ``axes = (a, b)`` are the semi-axes along the ellipse's own x and y, ``centre = (x0, y0)``
    and ``angle`` (degrees) turns the ellipse's first axis from +x towards +y. y grows with the
    row index, so on an ``imshow`` (origin upper) +y points down the screen and a positive angle
    looks clockwise.
    """

    intensity: complex
    axes: tuple[float, float]
    centre: tuple[float, float] = (0.0, 0.0)
    angle: float = 0.0


# Modified Shepp–Logan phantom (Toft 1996; MATLAB's "Modified Shepp-Logan"), in units of the
# half-size: (intensity, a, b, x0, y0, angle°). y0 and the angles are negated with respect to the
# usual table because y grows downward here, so the phantom appears the usual way up on screen.
_SHEPP_LOGAN = (
    (1.0, 0.69, 0.92, 0.0, 0.0, 0.0),
    (-0.8, 0.6624, 0.8740, 0.0, 0.0184, 0.0),
    (-0.2, 0.1100, 0.3100, 0.22, 0.0, 18.0),
    (-0.2, 0.1600, 0.4100, -0.22, 0.0, -18.0),
    (0.1, 0.2100, 0.2500, 0.0, -0.35, 0.0),
    (0.1, 0.0460, 0.0460, 0.0, -0.1, 0.0),
    (0.1, 0.0460, 0.0460, 0.0, 0.1, 0.0),
    (0.1, 0.0460, 0.0230, -0.08, 0.605, 0.0),
    (0.1, 0.0230, 0.0230, 0.0, 0.606, 0.0),
    (0.1, 0.0230, 0.0460, 0.06, 0.605, 0.0),
)


def shepp_logan_ellipses(size: float = 2.0) -> list[Ellipse]:
    """The ten ellipses of the modified Shepp–Logan head phantom, spanning ``size`` in y.

    The classic table spans [-1, 1] (``size = 2``); everything is scaled by ``size / 2``.
    Intensities are the modified (higher-contrast) ones of Toft (1996): skull 1, brain 0.2, …
    """
    s = check_number("size", size, 0, low_open=True) / 2.0
    return [Ellipse(intensity=a, axes=(s * ax, s * bx), centre=(s * x0, s * y0), angle=ang)
            for a, ax, bx, x0, y0, ang in _SHEPP_LOGAN]


def ellipse_kspace(ellipses: Sequence[Ellipse], kx: Any, ky: Any) -> torch.Tensor:
    """Continuous Fourier transform of a sum of uniform ellipses at spatial frequencies ``(kx, ky)``.

    For one ellipse of intensity ``A``, semi-axes ``(a, b)``, angle ``θ`` and centre ``c``,
    with ``F(k) = ∫ f(r) e^{-i2π k·r} dr``:

        F(k) = A · a · b · J1(2πκ) / κ · exp(-i2π k·c),
        κ = sqrt((a·k_u)² + (b·k_v)²),  k_u = kx cosθ + ky sinθ,  k_v = -kx sinθ + ky cosθ,

    with the limit ``F(0) = A·π·a·b`` (intensity × area). ``kx`` and ``ky`` broadcast together;
    the result is complex128 on their device.
    """
    if len(ellipses) == 0:
        raise ArgumentError("ellipses must contain at least one Ellipse")
    kx_t, _ = image_tensor(kx, "kx")
    ky_t, _ = image_tensor(ky, "ky")
    kx_t, ky_t = torch.broadcast_tensors(kx_t.to(torch.float64), ky_t.to(torch.float64).to(kx_t.device))
    out = torch.zeros(kx_t.shape, dtype=torch.complex128, device=kx_t.device)
    for e in ellipses:
        if not isinstance(e, Ellipse):
            raise ArgumentError(f"ellipses must hold Ellipse objects, got {type(e).__name__}")
        a, b = (check_number("Ellipse.axes", v, 0, low_open=True) for v in e.axes)
        x0, y0 = (float(v) for v in e.centre)
        amp = complex(e.intensity)
        if not all(math.isfinite(v) for v in (x0, y0, float(e.angle), amp.real, amp.imag)):
            raise ArgumentError(f"Ellipse values must be finite, got {e!r}")
        th = math.radians(float(e.angle))
        ku = kx_t * math.cos(th) + ky_t * math.sin(th)
        kv = -kx_t * math.sin(th) + ky_t * math.cos(th)
        kappa = torch.sqrt((a * ku) ** 2 + (b * kv) ** 2)
        small = kappa < 1e-12
        safe = torch.where(small, torch.ones_like(kappa), kappa)
        jinc = torch.where(small, torch.full_like(kappa, math.pi),
                           torch.special.bessel_j1(2 * math.pi * safe) / safe)
        shift = torch.polar(torch.ones_like(kappa), -2 * math.pi * (kx_t * x0 + ky_t * y0))
        out = out + (amp * a * b) * jinc * shift
    return out


@dataclass(frozen=True)
class SampledImage:
    """The result of :func:`sample_object`.

    ``image`` (complex, ``(..., Ny, Nx)``) is in the object's intensity units; ``kspace`` is its
    orthonormal k-space, ``ifft2c(kspace) == image`` (the continuous k-space samples times
    ``Δk·√N`` per axis). ``x`` and ``y`` are the pixel-centre positions, ``spacing = (Δy, Δx) =
    (FOV_y/Ny, FOV_x/Nx)`` and ``fov = (FOV_y, FOV_x)``.
    """

    image: Array
    kspace: Array
    x: Array
    y: Array
    spacing: tuple[float, float]
    fov: tuple[float, float]


def sample_object(obj: Sequence[Ellipse] | Array, fov: float | tuple[float, float],
                  matrix: int | tuple[int, int], *, object_fov: float | tuple[float, float] | None = None,
                  dtype: torch.dtype = torch.complex64, device: DeviceLike = None) -> SampledImage:
    """Image a continuous object with a chosen field of view and matrix, as a scanner does.

    The scanner measures the object's continuous k-space ``F(k)`` on a Cartesian grid with step
    ``Δk = 1/FOV`` and ``N`` points per axis (``k_m = (m - N//2)·Δk``), and reconstructs with an
    inverse DFT:

        image(x_n) = Δk_y Δk_x Σ_m F(k_m) e^{+i2π k_m·x_n},   x_n = (n - N//2)·Δx,  Δx = FOV/N.

    Two consequences are the lesson:

    * **resolution** – the pixel size is ``Δx = FOV/N``; the image is the object blurred by the
      point-spread function of the sampled k-space window (a Dirichlet kernel, FWHM ≈ 1.2 Δx);
    * **aliasing** – sampling k-space at ``Δk = 1/FOV`` makes the image periodic with period
      FOV: ``e^{-i2π k_m (x ± FOV)} = e^{-i2π k_m x}``, so anything outside the FOV wraps around,
      content at ``x`` appearing at ``x - FOV`` (or ``x + FOV``).

    Parameters
    ----------
    obj
        Either a sequence of :class:`Ellipse` (exact analytic k-space, see :func:`ellipse_kspace`),
        or a high-resolution image ``(..., H, W)`` (numpy or torch, real or complex) whose pixels
        are point samples of the object on a grid of extent ``object_fov`` centred on the origin.
        Its k-space is then the DFT evaluated at exactly the needed ``k_m``,
        ``F(k) = δy δx Σ_p f_p e^{-i2π k·r_p}`` (``δ = object_fov / (H, W)``); the requested
        pixel size must not be finer than the grid's (``Δx ≥ δx``).
    fov
        Field of view ``FOV`` (or ``(FOV_y, FOV_x)``), > 0, in the units of the object.
    matrix
        ``N`` (or ``(Ny, Nx)``), the number of k-space samples = image pixels per axis.
    object_fov
        Physical extent ``(H·δy, W·δx)`` of a grid object (required for one, unused for ellipses).
    dtype, device
        complex64 or complex128, and the device, of the result for an ellipse object. A grid
        object's result follows the grid's precision and device, and numpy in gives numpy out.
    """
    fy, fx = _pair(fov, "fov", _positive_number)
    ny, nx = _pair(matrix, "matrix", check_int)
    if dtype not in (torch.complex64, torch.complex128):
        raise ArgumentError(f"dtype must be torch.complex64 or torch.complex128, got {dtype}")
    dky, dkx = 1.0 / fy, 1.0 / fx

    if isinstance(obj, (np.ndarray, torch.Tensor)):
        f, from_numpy = image_tensor(obj, "obj")
        if f.ndim < 2:
            raise ArgumentError(f"obj must be an image (..., H, W), got shape {tuple(f.shape)}")
        check_no_nan(f, "obj")
        if object_fov is None:
            raise ArgumentError("object_fov is required when obj is an image grid")
        oy, ox = _pair(object_fov, "object_fov", _positive_number)
        h, w = f.shape[-2:]
        dy_obj, dx_obj = oy / h, ox / w
        for n_, fov_, d_, axis in ((ny, fy, dy_obj, "y"), (nx, fx, dx_obj, "x")):
            if fov_ / n_ < d_ * (1 - 1e-9):
                raise ArgumentError(
                    f"matrix asks for pixels of {fov_ / n_:g} along {axis}, finer than the object grid's "
                    f"{d_:g}; use a finer object grid or a smaller matrix")
        cdt = complex_dtype(f)
        rdt = real_dtype(f)
        dev = f.device
        ky = _centred_positions(ny, dky, device=dev)
        kx = _centred_positions(nx, dkx, device=dev)
        ys = _centred_positions(h, dy_obj, device=dev)
        xs = _centred_positions(w, dx_obj, device=dev)
        one = torch.ones((), dtype=torch.float64, device=dev)  # phases in float64, then cast
        ey = torch.polar(one, -2 * math.pi * ky[:, None] * ys[None, :]).to(cdt)   # (Ny, H)
        ex = torch.polar(one, -2 * math.pi * xs[:, None] * kx[None, :]).to(cdt)   # (W, Nx)
        k_cont = (ey @ f.to(cdt) @ ex) * (dy_obj * dx_obj)
    else:
        if isinstance(obj, Ellipse):
            obj = [obj]
        from_numpy = False
        dev = torch.device(device) if device is not None else torch.device("cpu")
        ky = _centred_positions(ny, dky, device=dev)
        kx = _centred_positions(nx, dkx, device=dev)
        k_cont = ellipse_kspace(list(obj), kx[None, :], ky[:, None]).to(dtype)
        rdt = torch.float64 if dtype == torch.complex128 else torch.float32

    kspace = k_cont * (dky * dkx * math.sqrt(ny * nx))
    image = fftc(kspace, (-2, -1), inverse=True)
    y = _centred_positions(ny, fy / ny, device=kspace.device, dtype=rdt)
    x = _centred_positions(nx, fx / nx, device=kspace.device, dtype=rdt)
    return SampledImage(image=as_output(image, from_numpy), kspace=as_output(kspace, from_numpy),
                        x=as_output(x, from_numpy), y=as_output(y, from_numpy),
                        spacing=(fy / ny, fx / nx), fov=(fy, fx))


# --------------------------------------------------------------------------------------------
# Sampling masks (Cartesian: whole phase-encoding lines, i.e. rows, are kept or skipped)
# --------------------------------------------------------------------------------------------
def _rows_to_mask(rows: torch.Tensor, n_read: int) -> torch.Tensor:
    return rows[:, None].expand(rows.shape[0], n_read).contiguous()


def _acs_rows(n_phase: int, acs_lines: int, device: DeviceLike) -> torch.Tensor:
    rows = torch.zeros(n_phase, dtype=torch.bool, device=device)
    start = n_phase // 2 - acs_lines // 2
    rows[start:start + acs_lines] = True
    return rows


def partial_fourier_mask(shape: tuple[int, int], fraction: float, *,
                         device: DeviceLike = None) -> torch.Tensor:
    """Partial-Fourier sampling: the first ``ceil(fraction · n_phase)`` phase-encoding lines.

    Lines are acquired from the most negative ``k_y`` through the centre and a few lines beyond
    it (the *overscan*, needed to estimate the phase); the top ``(1 - fraction)`` of k-space is
    skipped, which shortens the scan by that fraction. Returns a boolean mask of ``shape =
    (n_phase, n_read)``. ``fraction`` must be in (0.5, 1]; typical values are 5/8, 6/8, 7/8.
    """
    n_phase, n_read = check_int_tuple("shape (n_phase, n_read)", shape, length=2)
    fraction = check_number("fraction", fraction, 0, low_open=True)
    if not 0.5 < fraction <= 1.0:
        raise ArgumentError(f"fraction must be in (0.5, 1], got {fraction!r}")
    n_acq = min(n_phase, math.ceil(fraction * n_phase - 1e-9))
    if n_acq <= n_phase // 2:
        raise ArgumentError(f"fraction={fraction!r} keeps no line past the k-space centre "
                            f"for n_phase={n_phase}")
    rows = torch.zeros(n_phase, dtype=torch.bool, device=device)
    rows[:n_acq] = True
    return _rows_to_mask(rows, n_read)


def uniform_mask(shape: tuple[int, int], R: int, acs_lines: int = 0, *, offset: int = 0,
                 device: DeviceLike = None) -> torch.Tensor:
    """Regular Cartesian undersampling: every ``R``-th phase-encoding line plus a fully sampled centre.

    Line ``i`` (row index) is kept when ``(i - n_phase//2 - offset) mod R == 0`` (so the k = 0
    line is kept for ``offset = 0``), and the ``acs_lines`` central lines (the autocalibration
    signal region used by GRAPPA/ESPIRiT) are always kept. With ``acs_lines = 0`` and ``R``
    dividing ``n_phase`` the acceleration is exactly ``R``; the ACS lines lower it a little
    (see :func:`mask_acceleration`). Returns a boolean mask of ``shape = (n_phase, n_read)``.
    """
    n_phase, n_read = check_int_tuple("shape (n_phase, n_read)", shape, length=2)
    R = check_int("R", R)
    acs_lines = check_int("acs_lines", acs_lines, 0)
    if acs_lines > n_phase:
        raise ArgumentError(f"acs_lines={acs_lines} exceeds n_phase={n_phase}")
    offset = check_int("offset", offset, 0)
    if offset >= R:
        raise ArgumentError(f"offset must be in [0, R), got {offset} with R={R}")
    idx = torch.arange(n_phase, device=device)
    rows = ((idx - n_phase // 2 - offset) % int(R) == 0) | _acs_rows(n_phase, acs_lines, device)
    return _rows_to_mask(rows, n_read)


def variable_density_mask(shape: tuple[int, int], R: float, acs_lines: int = 0, *, power: float = 2.0,
                          seed: int = 0, device: DeviceLike = None) -> torch.Tensor:
    """Random Cartesian undersampling, denser near the k-space centre (seeded, reproducible).

    Keeps ``round(n_phase / R)`` lines in all: the ``acs_lines`` central lines, and the rest
    drawn without replacement with probability ∝ ``(1 - |k_y|/k_max)^power + 10⁻⁶``. The
    acceleration ``n_phase / n_kept`` is ``R`` up to rounding. Random numbers come from a CPU
    generator seeded with ``seed``, so the mask is the same on every device.
    Returns a boolean mask of ``shape = (n_phase, n_read)``.
    """
    n_phase, n_read = check_int_tuple("shape (n_phase, n_read)", shape, length=2)
    R = check_number("R", R, 0, low_open=True)
    if R < 1:
        raise ArgumentError(f"R must be >= 1, got {R!r}")
    acs_lines = check_int("acs_lines", acs_lines, 0)
    power = check_number("power", power, 0)
    n_keep = max(1, round(n_phase / R))
    if acs_lines > n_keep:
        raise ArgumentError(f"acs_lines={acs_lines} is more than the {n_keep} lines allowed by R={R:g} "
                            f"for n_phase={n_phase}")
    rows = _acs_rows(n_phase, acs_lines, "cpu")
    n_random = n_keep - acs_lines
    if n_random > 0:
        r = (torch.arange(n_phase, dtype=torch.float64) - n_phase // 2).abs() / (n_phase / 2)
        weight = (1 - r).clamp_min(0) ** power + 1e-6
        weight[rows] = 0
        gen = torch.Generator().manual_seed(int(seed))
        rows[torch.multinomial(weight, n_random, replacement=False, generator=gen)] = True
    return _rows_to_mask(rows.to(device), n_read)


def mask_acceleration(mask: Any) -> float:
    """Acceleration factor of a sampling mask: number of samples / number of samples kept."""
    m, _ = image_tensor(mask, "mask")
    kept = float((m != 0).sum())
    if kept == 0:
        raise ArgumentError("mask keeps no sample")
    return m.numel() / kept


def apply_mask(kspace: ArrayT, mask: Any) -> ArrayT:
    """Zero the k-space samples that ``mask`` does not keep.

    ``mask`` (boolean or 0/1, numpy or torch) covers the trailing axes of ``kspace``: its shape
    must broadcast against them (e.g. ``(Ny, Nx)`` or ``(Ny, 1)`` for ``(coils, Ny, Nx)``
    k-space), else an ArgumentError names ``mask``.
    """
    k, from_numpy = image_tensor(kspace, "kspace")
    m = _mask_for(mask, k)
    return as_output(k * m, from_numpy)


def _mask_for(mask: Any, k: torch.Tensor) -> torch.Tensor:
    m, _ = image_tensor(mask, "mask") if not isinstance(mask, torch.Tensor) else (mask, False)
    if m.ndim > k.ndim or any(ms not in (1, ks) for ms, ks in zip(m.shape[::-1], k.shape[::-1])):
        raise ArgumentError(f"mask shape {tuple(m.shape)} does not match kspace shape {tuple(k.shape)}")
    if m.dtype != torch.bool:
        check_no_nan(m, "mask")
    return m.to(k.device)


def zero_filled_recon(kspace: ArrayT, mask: Any) -> ArrayT:
    """Zero-filled reconstruction: the inverse FFT of k-space with the missing samples set to 0."""
    k, from_numpy = image_tensor(kspace, "kspace")
    return as_output(fftc(k, (-2, -1), inverse=True, weight=_mask_for(mask, k)), from_numpy)


def homodyne_recon(kspace: ArrayT, mask: Any) -> ArrayT:
    """Phase-constrained partial-Fourier reconstruction by homodyne detection (Noll et al., 1991).

    A real object has Hermitian k-space, ``F(-k) = F(k)*``, so half of k-space would do. Real
    images carry a smooth phase ``φ(r)``, so the method estimates ``φ`` from the symmetric,
    fully sampled centre and removes it:

    1. the acquired lines span ``k_y ∈ [-k_max, K]`` (K = overscan; or the mirror image,
       ``[-K, k_max]``); the symmetric band is ``|k_y| ≤ K``;
    2. low-resolution phase: ``φ = arg IFT(L · S)`` with ``L`` a Hann window over the band;
    3. homodyne (ramp) filter ``H``: 2 on the one-sided acquired lines, a linear ramp from 2 to 0
       across the band (``H(k) + H(-k) = 2`` there, ``H(0) = 1``), 0 where nothing was acquired;
    4. ``ρ = Re{ IFT(H · S) · e^{-iφ} }`` — the doubled one-sided half supplies the missing half
       through the Hermitian symmetry — and the result is ``ρ · e^{iφ}`` (0 where the
       low-resolution image is exactly 0).

    ``mask`` must keep whole phase-encoding lines forming one contiguous block that contains the
    k-space centre and at least one overscan line (as :func:`partial_fourier_mask` makes). Works
    on ``(..., Ny, Nx)`` k-space; the magnitude ``|result| = |ρ|`` is the image to look at.
    """
    k, from_numpy = image_tensor(kspace, "kspace")
    if k.ndim < 2:
        raise ArgumentError(f"kspace must have at least 2 dimensions, got shape {tuple(k.shape)}")
    mm = _mask_for(mask, k) != 0
    ny = k.shape[-2]
    while mm.ndim > 2:
        if mm.shape[0] != 1:
            raise ArgumentError("mask for homodyne_recon must be the same for every image: "
                                "shape (Ny, Nx) or (Ny, 1)")
        mm = mm[0]
    mm = torch.broadcast_to(mm, k.shape[-2:])
    rows = mm[:, 0]
    if not bool((mm == rows[:, None]).all()):
        raise ArgumentError("mask must keep whole phase-encoding lines (identical across the readout) "
                            "for homodyne_recon")
    idx = torch.nonzero(rows).flatten().tolist()
    if not idx or idx[-1] - idx[0] + 1 != len(idx):
        raise ArgumentError("mask must keep one contiguous block of phase-encoding lines for homodyne_recon")
    lo, hi, c = idx[0], idx[-1] + 1, ny // 2
    if not lo <= c < hi:
        raise ArgumentError("mask must keep the k-space centre line for homodyne_recon")
    n_neg, n_pos = c - lo, hi - 1 - c  # acquired lines below and above the centre
    band = min(n_neg, n_pos)
    if n_neg == n_pos or hi - lo == ny:  # symmetric or complete: nothing to fill in
        return as_output(fftc(k, (-2, -1), inverse=True, weight=mm), from_numpy)
    if band < 1:
        raise ArgumentError("mask must keep at least one overscan line past the k-space centre "
                            "for homodyne_recon")

    rdt = real_dtype(k)
    ky = torch.arange(ny, device=k.device, dtype=rdt) - c
    side = -1.0 if n_neg > n_pos else 1.0  # the side with the extra, one-sided lines
    in_band = ky.abs() <= band
    acquired = rows.to(k.device)
    h = torch.where(in_band, 1 + side * ky / (band + 1), torch.full_like(ky, 2.0)) * acquired
    low = torch.where(in_band, 0.5 * (1 + torch.cos(math.pi * ky / (band + 1))), torch.zeros_like(ky))
    # Both branches are centred 2D transforms post ⊙ IFFT(pre ⊙ ·) (see _centring). The filters
    # absorb the pre-factors; the post-factors, common to both branches, cancel in
    # Re{full·conj(lowres)}/|lowres|², so they are applied once, to the real scale factor.
    pre, post = _centring_nd(k.shape, (-2, -1), True, k)
    full = torch.fft.ifft2(k * (h[:, None] * pre), norm="ortho")      # IFT(H·S), uncentred
    lowres = torch.fft.ifft2(k * (low[:, None] * pre), norm="ortho")  # IFT(L·S), its phase is φ
    # ρ·e^{iφ} = Re{full·e^{-iφ}}·e^{iφ} = lowres · Re{full·conj(lowres)} / |lowres|²
    # (no square root, no arctangent)
    dot = (full * lowres.conj()).real
    power = (lowres * lowres.conj()).real
    scale = dot / power.clamp_min(torch.finfo(power.dtype).tiny)
    return as_output(lowres * (scale * post), from_numpy)


# --------------------------------------------------------------------------------------------
# Scan time
# --------------------------------------------------------------------------------------------
def scan_time(TR: float, n_phase: int, nex: int = 1, *, n_partitions: int = 1, echo_train_length: int = 1,
              acceleration: float = 1.0) -> float:
    """Acquisition time of a Cartesian scan, in the units of ``TR``.

    One phase-encoding line per repetition (per echo for a train of ``echo_train_length``
    echoes, as in turbo spin echo), every line repeated ``nex`` times:

        T = TR · N_phase · N_partitions · NEX / (ETL · R)

    ``n_partitions`` is the number of phase encodes along the slice axis of a 3D scan, and
    ``acceleration`` the effective undersampling ``R`` (parallel imaging and/or partial Fourier,
    e.g. ``mask_acceleration(mask)``). Example: TR = 500 ms, 256 lines, NEX = 2 → 256 000 ms.
    """
    TR = check_number("TR", TR, 0, low_open=True)
    n_phase = check_int("n_phase", n_phase)
    nex = check_int("nex", nex)
    n_partitions = check_int("n_partitions", n_partitions)
    echo_train_length = check_int("echo_train_length", echo_train_length)
    acceleration = check_number("acceleration", acceleration, 0, low_open=True)
    if acceleration < 1:
        raise ArgumentError(f"acceleration must be >= 1, got {acceleration!r}")
    return TR * n_phase * n_partitions * nex / (echo_train_length * acceleration)
