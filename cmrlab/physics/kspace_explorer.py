"""The k-space explorer: change what part of k-space is acquired and watch the image change.

A Shepp–Logan head (or any sum of :class:`~cmrlab.physics.kspace.Ellipse`) is imaged the way a
scanner does it (:func:`~cmrlab.physics.kspace.sample_object`: its continuous k-space sampled on a
Cartesian grid with step ``Δk = 1/FOV`` and ``N`` points per axis), then

* only the **centre** of k-space (``|k| ≤ radius · k_max``) or only the **periphery**
  (``|k| > radius · k_max``) is kept, with ``k_max = N/2 · Δk`` the edge of the sampled grid;
* only every ``R``-th phase-encoding line is kept (:func:`~cmrlab.physics.kspace.uniform_mask`);
* optionally one acquired sample is corrupted by a **spike**
  (:func:`~cmrlab.physics.artifacts.spike_artifact`);

and the image is the zero-filled inverse FFT, :math:`\\rho = \\mathcal{F}^{-1}\\{M \\cdot S\\}`.
The figure shows the acquired k-space (log magnitude) next to the image.

:func:`kspace_view` computes the arrays (use it in code and tests); :func:`kspace_explorer`
wraps it in a :class:`cmrlab.viz.explorer.Explorer` with sliders and menus; on the static
website it becomes an animation over the kept-centre radius.

Usage in a notebook::

    from cmrlab.physics.kspace_explorer import kspace_explorer, kspace_view
    kspace_explorer(matrix=96).show()    # live controls in JupyterLab, an animation on the website
    view = kspace_view(kspace.shepp_logan_ellipses(200.0), fov=240.0, matrix=96,
                       keep="centre", radius=0.2)   # the same arrays, for code
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cmrlab.checks import check_bool, check_choice, check_int, check_int_tuple, check_number
from cmrlab.errors import ArgumentError
from cmrlab.physics import artifacts, kspace
from cmrlab.physics.kspace import Ellipse
from cmrlab.viz.explorer import Choice, Explorer, Slider, Toggle

__all__ = ["KEEP_OPTIONS", "KspaceView", "draw_kspace_view", "kspace_explorer", "kspace_view"]

#: What part of k-space :func:`kspace_view` keeps: everything, the centre disc, or its complement.
KEEP_OPTIONS: tuple[str, ...] = ("all", "centre", "periphery")


@dataclass(frozen=True)
class KspaceView:
    """What the explorer shows, as arrays (all NumPy, ``(N, N)``).

    ``kspace`` is the acquired k-space (zero where nothing was acquired), ``mask`` the samples
    kept, ``image`` the zero-filled reconstruction ``ifft2c(kspace)`` (complex), ``full_image``
    the image of the fully sampled, spike-free k-space at the same FOV and matrix, and
    ``kspace_peak`` the largest magnitude of that k-space (its centre). ``kx`` and ``ky`` are the
    spatial frequencies of the columns and rows (cycles/mm), ``x`` and ``y`` the pixel positions
    (mm). ``spike_index`` is the ``(row, column)`` of the corrupted sample, or ``None``.
    """

    kspace: np.ndarray
    mask: np.ndarray
    image: np.ndarray
    full_image: np.ndarray
    kspace_peak: float
    kx: np.ndarray
    ky: np.ndarray
    x: np.ndarray
    y: np.ndarray
    fov: float
    matrix: int
    spike_index: tuple[int, int] | None

    @property
    def spacing(self) -> float:
        """Pixel size Δx = FOV / N (mm)."""
        return self.fov / self.matrix

    @property
    def kept_fraction(self) -> float:
        """Fraction of the N × N k-space samples that were acquired."""
        return float(self.mask.mean())


def _check_ellipses(ellipses: Any) -> list[Ellipse]:
    if isinstance(ellipses, Ellipse):
        ellipses = [ellipses]
    if not isinstance(ellipses, Sequence) or isinstance(ellipses, str) or len(ellipses) == 0:
        raise ArgumentError("ellipses must be a non-empty sequence of cmrlab.physics.kspace.Ellipse")
    for e in ellipses:
        if not isinstance(e, Ellipse):
            raise ArgumentError(f"ellipses must hold Ellipse objects, got {type(e).__name__}")
    return list(ellipses)


def _radial_mask(n: int, keep: str, radius: float) -> np.ndarray:
    """Samples with ``|k| ≤ radius·k_max`` (centre), their complement (periphery), or all."""
    if keep == "all":
        return np.ones((n, n), dtype=bool)
    k = (np.arange(n) - n // 2) / (n / 2)  # in units of k_max
    inside = np.hypot(k[:, None], k[None, :]) <= radius
    return inside if keep == "centre" else ~inside


def kspace_view(
    ellipses: Sequence[Ellipse] | Ellipse,
    fov: float,
    matrix: int,
    *,
    keep: str = "all",
    radius: float = 1.0,
    R: int = 1,
    spike: bool = False,
    spike_at: tuple[float, float] = (0.15, 0.2),
    spike_amplitude: float = 2.0,
) -> KspaceView:
    """Image ``ellipses`` at ``fov`` (mm, square) and ``matrix`` (N), keep part of k-space, reconstruct.

    The acquired k-space is ``S_acq = M · (S + spike)`` and the image ``ifft2c(S_acq)``, where
    ``S`` is the object's k-space sampled at ``Δk = 1/FOV`` (:func:`kspace.sample_object`) and
    the mask ``M`` keeps

    * ``keep="all"``: every sample; ``"centre"``: the samples with ``|k| ≤ radius · k_max``;
      ``"periphery"``: those with ``|k| > radius · k_max`` (``k_max = N/2 · Δk``, so
      ``radius = 1`` is the disc touching the edges of the grid);
    * and, for ``R > 1``, only every ``R``-th phase-encoding line (row), the ``k_y = 0`` line
      included (:func:`kspace.uniform_mask`), so the image holds ``R`` copies ``FOV/R`` apart.

    With ``spike=True`` one acquired sample, the kept sample nearest to ``spike_at`` (a
    ``(k_y, k_x)`` pair in units of ``k_max``), gets an extra ``spike_amplitude · max|S|``
    (:func:`artifacts.spike_artifact`): a stripe pattern over the whole image. Computed in
    float64. Bad arguments raise :class:`~cmrlab.errors.ArgumentError`.
    """
    ellipses = _check_ellipses(ellipses)
    fov = check_number("fov", fov, 0.0, low_open=True)
    n = check_int("matrix", matrix, 4)
    keep = check_choice("keep", keep, KEEP_OPTIONS)
    radius = check_number("radius", radius, 0.0, math.sqrt(2.0))
    R = check_int("R", R, 1)
    if R > n // 2:
        raise ArgumentError(f"R must be at most matrix // 2 = {n // 2}, got {R}")
    spike = check_bool("spike", spike)
    if not isinstance(spike_at, (tuple, list)) or len(spike_at) != 2:
        raise ArgumentError(f"spike_at must be a (k_y, k_x) pair in units of k_max, got {spike_at!r}")
    spike_y, spike_x = (check_number("spike_at", v, -1.0, 1.0) for v in spike_at)
    spike_amplitude = check_number("spike_amplitude", spike_amplitude, 0.0, low_open=True)

    sampled = kspace.sample_object(ellipses, fov, n, dtype=torch.complex128)
    full_image = sampled.image.numpy()
    full_kspace = sampled.kspace.numpy()
    mask = _radial_mask(n, keep, radius) & kspace.uniform_mask((n, n), R).numpy()

    spike_index = None
    if spike and mask.any():
        rows, cols = np.nonzero(mask)
        target_y, target_x = spike_y * n / 2, spike_x * n / 2
        nearest = int(np.argmin((rows - n // 2 - target_y) ** 2 + (cols - n // 2 - target_x) ** 2))
        spike_index = (int(rows[nearest]), int(cols[nearest]))
        position = (spike_index[0] - n // 2, spike_index[1] - n // 2)
        corrupted = artifacts.spike_artifact(full_image, position, amplitude=spike_amplitude)
        full_kspace = kspace.fft2c(corrupted)

    acquired = full_kspace * mask
    image = kspace.ifft2c(acquired)
    dk = 1.0 / fov
    k_axis = (np.arange(n) - n // 2) * dk
    return KspaceView(kspace=acquired, mask=mask, image=image, full_image=full_image,
                      kspace_peak=float(np.abs(sampled.kspace.numpy()).max()), kx=k_axis,
                      ky=k_axis.copy(), x=sampled.x.numpy(), y=sampled.y.numpy(), fov=fov, matrix=n,
                      spike_index=spike_index)


def draw_kspace_view(fig: Any, view: KspaceView, *, log_floor: float = 1e-5) -> None:
    """Draw ``view`` into ``fig``: acquired k-space (log₁₀ of |S|/max|S|) and the image magnitude.

    Samples that were not acquired are shown at the floor ``log₁₀(log_floor)`` (black). The
    image is windowed from 0 to half its own maximum: the bright skull of the Shepp–Logan head
    saturates and the soft-tissue contrast shows, and a weak periphery-only image stays visible.
    """
    ax_k, ax_i = fig.subplots(1, 2)
    log_k = np.log10(np.maximum(np.abs(view.kspace) / view.kspace_peak, log_floor))
    dk = 1.0 / view.fov
    k_extent = (view.kx[0] - dk / 2, view.kx[-1] + dk / 2, view.ky[-1] + dk / 2, view.ky[0] - dk / 2)
    ax_k.imshow(log_k, cmap="magma", vmin=math.log10(log_floor), vmax=0.0, extent=k_extent,
                interpolation="nearest")
    ax_k.set_xlabel("$k_x$ (cycles/mm)  readout")
    ax_k.set_ylabel("$k_y$ (cycles/mm)  phase encoding")
    ax_k.set_title(f"k-space, log|S| ({100 * view.kept_fraction:.0f}% acquired)", fontsize=9)
    if view.spike_index is not None:
        iy, ix = view.spike_index
        ax_k.plot(view.kx[ix], view.ky[iy], "o", mfc="none", mec="cyan", ms=9)

    magnitude = np.abs(view.image)
    top = 0.5 * magnitude.max()
    dx = view.spacing
    x_extent = (view.x[0] - dx / 2, view.x[-1] + dx / 2, view.y[-1] + dx / 2, view.y[0] - dx / 2)
    ax_i.imshow(magnitude, cmap="gray", vmin=0.0, vmax=top if top > 0 else 1.0, extent=x_extent,
                interpolation="nearest")
    ax_i.set_xlabel("x (mm)")
    ax_i.set_ylabel("y (mm)")
    ax_i.set_title(f"image, FOV {view.fov:g} mm, {view.matrix}×{view.matrix}, Δx = {dx:.3g} mm",
                   fontsize=9)


def kspace_explorer(
    ellipses: Sequence[Ellipse] | None = None,
    *,
    object_size: float = 200.0,
    fov: float = 240.0,
    matrix: int = 96,
    keep: str = "centre",
    radius: float = 0.3,
    R: int = 1,
    spike: bool = False,
    matrices: Sequence[int] = (32, 64, 96, 128),
    fov_range: tuple[float, float] = (100.0, 300.0),
    max_R: int = 4,
    frames: int = 8,
) -> Explorer:
    """An :class:`~cmrlab.viz.explorer.Explorer` over :func:`kspace_view`.

    Controls: ``keep`` (all / centre / periphery), ``radius`` (fraction of ``k_max``, the one
    the static website animates), ``matrix`` (one of ``matrices``), ``fov`` (mm, within
    ``fov_range``), ``R`` (uniform undersampling, 1 … ``max_R``) and ``spike``. The object is
    ``ellipses``, by default the modified Shepp–Logan phantom scaled so that its [-1, 1] square
    spans ``object_size`` mm (the head itself is 0.92 · ``object_size`` tall and 0.69 ·
    ``object_size`` wide); an FOV smaller than the object makes it wrap around (aliasing). Keep
    ``matrices`` ≤ 128 so that a redraw stays fast; the static animation has ``frames`` frames
    (each one a full matplotlib redraw, about 0.3 s).
    """
    if ellipses is None:
        size = check_number("object_size", object_size, 0.0, low_open=True)
        ellipses = kspace.shepp_logan_ellipses(size)
    ellipses = _check_ellipses(ellipses)
    matrices = list(check_int_tuple("matrices", matrices, minimum=4))
    if check_int("matrix", matrix, 4) not in matrices:
        raise ArgumentError(f"matrix must be one of matrices={matrices}, got {matrix!r}")
    if not isinstance(fov_range, (tuple, list)) or len(fov_range) != 2:
        raise ArgumentError(f"fov_range must be a (low, high) pair in mm, got {fov_range!r}")
    low, high = (check_number("fov_range", v, 0.0, low_open=True) for v in fov_range)
    if not low < high:
        raise ArgumentError(f"fov_range must have low < high, got {fov_range!r}")
    fov = check_number("fov", fov, low, high)
    keep = check_choice("keep", keep, KEEP_OPTIONS)
    radius = check_number("radius", radius, 0.05, 1.0)
    max_R = check_int("max_R", max_R, 2)
    if max_R > min(matrices) // 2:
        raise ArgumentError(f"max_R must be at most min(matrices) // 2 = {min(matrices) // 2}, got {max_R}")
    R = check_int("R", R, 1)
    if R > max_R:
        raise ArgumentError(f"R must be in 1 … max_R = {max_R}, got {R}")
    spike = check_bool("spike", spike)

    cache: dict[tuple, KspaceView] = {}

    def view_for(**params: Any) -> KspaceView:
        key = tuple(sorted(params.items()))
        if key not in cache:
            if len(cache) > 64:
                cache.clear()
            cache[key] = kspace_view(ellipses, **params)
        return cache[key]

    def draw(fig: Any, keep: str, radius: float, matrix: int, fov: float, R: int, spike: bool) -> None:
        view = view_for(fov=float(fov), matrix=int(matrix), keep=keep, radius=float(radius), R=int(R),
                        spike=bool(spike))
        draw_kspace_view(fig, view)

    controls = {
        "keep": Choice([("keep all of k-space", "all"), ("keep the centre", "centre"),
                        ("keep the periphery", "periphery")], value=keep, label="k-space"),
        "radius": Slider(0.05, 1.0, radius, step=0.05, label="radius (× k_max)"),
        "matrix": Choice([(f"{m}×{m}", m) for m in matrices], value=matrix, label="matrix"),
        "fov": Slider(low, high, fov, step=10.0, label="FOV (mm)"),
        "R": Slider(1, max_R, R, step=1, label="undersampling R"),
        "spike": Toggle(spike, label="add a spike"),
    }
    return Explorer(draw, controls, animate="radius", frames=frames, figsize=(8.0, 3.9),
                    title="k-space explorer", continuous_update=False)
