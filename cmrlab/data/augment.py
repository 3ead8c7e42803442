"""Paired random augmentation of images and label maps, 2D or 3D, on the images' device.

::

    from cmrlab.data.augment import RandomAugment
    augment = RandomAugment(rotation=30, shift=4, scale=0.1, gamma=0.2, noise_std=0.02)
    images, labels = augment(images, labels, generator=torch.Generator().manual_seed(0))

Every sample of a batch gets its own random transform, and its label map gets *the same*
geometric transform, so image and segmentation stay aligned. The steps, in this order:

1. **geometry**, one resampling of the in-plane axes (the last two, rows and columns) with the
   matrix :math:`A = R(\\theta)\\, H(\\phi)\\, S(s)` (rotation, shear, zoom) and a shift
   :math:`t`, about the image centre :math:`c`: an output pixel at :math:`p` takes the input
   value at :math:`c + A^{-1}(p - c - t)`. Images are interpolated bilinearly (edges
   replicated), labels by nearest neighbour (outside is background, 0), so no new label values
   appear. A 3D sample ``(D, H, W)`` is a stack of slices: every slice gets the same in-plane
   transform, as the cardiac thesis did for its 3-slice windows and cine frames.
2. **intensity**: a gamma curve :math:`I' = m + (M - m)\\,((I - m)/(M - m))^{\\gamma}` with
   :math:`m, M` the sample's minimum and maximum (so the range is kept), then additive Gaussian
   noise :math:`\\mathcal{N}(\\mu, \\sigma^2)` per pixel. Labels are not touched.

**Mirroring is off by default.** ``flip=True`` mirrors each sample left–right with probability
½. Do not use it on cardiac short-axis images: the heart is not mirror-symmetric, and a mirrored
slice puts the right ventricle on the wrong side of the left ventricle, an image no scanner
produces (cardiac thesis §3.4.6, L2708-2710; the chapter on training measures the RV's angle
around the LV before and after). Learning from such images teaches the network anatomy that does
not exist. Mirroring is only safe for anatomy and labels that are symmetric under it.

Conventions: a positive rotation turns the image content counter-clockwise when it is shown with
``imshow(origin="lower")`` (row index up), clockwise with the default ``origin="upper"``;
``shift`` is in pixels along (rows, columns); zoom factors above 1 enlarge the content.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cmrlab.checks import check_int, check_number
from cmrlab.errors import ArgumentError

__all__ = ["AugmentParams", "RandomAugment", "affine_resample"]


@dataclass(frozen=True)
class AugmentParams:
    """The random draws of one call of :class:`RandomAugment`, one entry per sample.

    ``rotation`` and ``shear`` in degrees, ``zoom`` (factor, > 1 enlarges), ``shift`` (N, 2) in
    pixels along (rows, columns), ``flip`` (bool, left–right mirror), ``gamma`` (exponent).
    """

    rotation: torch.Tensor
    shear: torch.Tensor
    zoom: torch.Tensor
    shift: torch.Tensor
    flip: torch.Tensor
    gamma: torch.Tensor

    def matrices(self) -> torch.Tensor:
        """(N, 2, 2) in-plane matrices :math:`A = R\\,H\\,S\\,F` acting on (column, row) coordinates.

        :math:`R` rotates by ``rotation``, :math:`H` shears the column coordinate along the row
        coordinate by ``tan(shear)``, :math:`S` zooms, :math:`F` negates the column coordinate
        where ``flip`` is set.
        """
        theta = torch.deg2rad(self.rotation.double())
        cos, sin = torch.cos(theta), torch.sin(theta)
        rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
        shear = torch.zeros_like(rot)
        shear[:, 0, 0] = shear[:, 1, 1] = 1.0
        shear[:, 0, 1] = torch.tan(torch.deg2rad(self.shear.double()))
        scale = torch.diag_embed(torch.stack([self.zoom.double()] * 2, -1))
        mirror = torch.diag_embed(torch.stack(
            [1.0 - 2.0 * self.flip.double(), torch.ones_like(self.zoom, dtype=torch.float64)], -1))
        return rot @ shear @ scale @ mirror


def affine_resample(x: torch.Tensor, matrix: torch.Tensor, shift: torch.Tensor, *,
                    mode: str = "bilinear", padding_mode: str = "border") -> torch.Tensor:
    """Resample the last two axes of ``x`` (N, C, H, W) with one affine map per sample.

    ``matrix`` (N, 2, 2) acts on (column, row) pixel coordinates about the image centre
    :math:`c = ((W-1)/2, (H-1)/2)`; ``shift`` (N, 2) is in pixels along (rows, columns). The
    output at pixel :math:`p` is the input at :math:`c + A^{-1}(p - c - t)` (``grid_sample`` with
    ``align_corners=True``, so pixel centres map to pixel centres: a 90° rotation of a square
    image or an integer shift is exact). ``mode`` and ``padding_mode`` are ``grid_sample``'s.
    """
    if x.ndim != 4:
        raise ArgumentError(f"x must be (N, C, H, W), got shape {tuple(x.shape)}")
    n, _, h, w = x.shape
    if matrix.shape != (n, 2, 2) or shift.shape != (n, 2):
        raise ArgumentError(f"matrix must be ({n}, 2, 2) and shift ({n}, 2), got "
                            f"{tuple(matrix.shape)} and {tuple(shift.shape)}")
    inverse = torch.linalg.inv(matrix.double())
    rows = torch.arange(h, dtype=torch.float64) - (h - 1) / 2
    cols = torch.arange(w, dtype=torch.float64) - (w - 1) / 2
    grid_r, grid_c = torch.meshgrid(rows, cols, indexing="ij")
    out_xy = torch.stack([grid_c, grid_r], -1).reshape(1, -1, 2)        # (1, H·W, [col, row])
    t_xy = shift.double().flip(-1)[:, None, :]                           # (N, 1, [col, row])
    in_xy = (out_xy - t_xy) @ inverse.transpose(1, 2)                    # A⁻¹(p − c − t)
    # pixel offsets from the centre → grid_sample's [-1, 1] (align_corners=True)
    half = torch.tensor([(w - 1) / 2 if w > 1 else 1.0, (h - 1) / 2 if h > 1 else 1.0],
                        dtype=torch.float64)
    grid = (in_xy / half).reshape(n, h, w, 2)
    dtype = x.dtype if x.is_floating_point() else torch.float32
    out = F.grid_sample(x.to(dtype), grid.to(device=x.device, dtype=dtype), mode=mode,
                        padding_mode=padding_mode, align_corners=True)
    return out.to(x.dtype) if not x.is_floating_point() else out


class RandomAugment:
    """Random rotation, shear, zoom, shift, gamma and noise, identical for an image and its labels.

    Args:
        rotation: angles are drawn uniformly in ``[-rotation, rotation]`` degrees (thesis: 30).
        shift: shifts in pixels, uniform in ``[-shift, shift]`` along rows and columns.
        scale: zoom factors uniform in ``[1 - scale, 1 + scale]`` (the thesis's "zoom 0–0.1").
        shear: shear angles uniform in ``[-shear, shear]`` degrees (thesis: 20 or 10).
        gamma: ``log γ`` uniform in ``[-gamma, gamma]`` (``gamma=0.3``: γ ∈ [0.74, 1.35]); 0 is off.
        noise_std, noise_mean: additive Gaussian noise per pixel (thesis ch. 6: 0.01 and 0.035).
        flip: mirror left–right with probability ½. **Off by default**: mirroring a short-axis
            slice swaps the sides of the LV and RV (see the module docstring).
        spatial_dims: 2 for images (N, C, H, W), 3 for volumes (N, C, D, H, W), transformed
            slice by slice with one in-plane transform per sample.

    Call with ``images`` (N, C, *spatial) floating point and optionally ``labels`` (N, *spatial)
    integers; returns ``(images, labels)`` (``labels`` None when not given) on the images'
    device. ``generator`` (a CPU ``torch.Generator``) makes the draws reproducible;
    :meth:`sample` gives the draws themselves.
    """

    def __init__(self, *, rotation: float = 0.0, shift: float = 0.0, scale: float = 0.0,
                 shear: float = 0.0, gamma: float = 0.0, noise_std: float = 0.0,
                 noise_mean: float = 0.0, flip: bool = False, spatial_dims: int = 2) -> None:
        self.rotation = check_number("rotation", rotation, 0.0)
        self.shift = check_number("shift", shift, 0.0)
        self.scale = check_number("scale", scale, 0.0)
        if self.scale >= 1:
            raise ArgumentError(f"scale must be < 1 (zoom factors 1 ± scale must stay positive), got {scale!r}")
        self.shear = check_number("shear", shear, 0.0)
        if self.shear >= 90:
            raise ArgumentError(f"shear must be < 90 degrees, got {shear!r}")
        self.gamma = check_number("gamma", gamma, 0.0)
        self.noise_std = check_number("noise_std", noise_std, 0.0)
        self.noise_mean = check_number("noise_mean", noise_mean)
        if not isinstance(flip, bool):
            raise ArgumentError(f"flip must be True or False, got {flip!r}")
        self.flip = flip
        self.spatial_dims = check_int("spatial_dims", spatial_dims, 2)
        if self.spatial_dims not in (2, 3):
            raise ArgumentError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")

    def __repr__(self) -> str:
        fields = ("rotation", "shift", "scale", "shear", "gamma", "noise_std", "noise_mean", "flip",
                  "spatial_dims")
        return f"RandomAugment({', '.join(f'{f}={getattr(self, f)!r}' for f in fields)})"

    def sample(self, n: int, generator: torch.Generator | None = None) -> AugmentParams:
        """Draw the random parameters of ``n`` samples (on the CPU, in float64)."""
        n = check_int("n", n, 1)

        def uniform(half_width: float, *shape: int) -> torch.Tensor:
            u = torch.rand(n, *shape, generator=generator, dtype=torch.float64)
            return (2.0 * u - 1.0) * half_width

        return AugmentParams(
            rotation=uniform(self.rotation),
            shear=uniform(self.shear),
            zoom=1.0 + uniform(self.scale),
            shift=uniform(self.shift, 2),
            flip=(torch.rand(n, generator=generator) < 0.5) & self.flip,
            gamma=torch.exp(uniform(self.gamma)),
        )

    def __call__(self, images: torch.Tensor, labels: torch.Tensor | None = None, *,
                 generator: torch.Generator | None = None,
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        images, labels = self._check(images, labels)
        return self.apply(images, labels, self.sample(images.shape[0], generator), generator=generator)

    def apply(self, images: torch.Tensor, labels: torch.Tensor | None, params: AugmentParams, *,
              generator: torch.Generator | None = None,
              ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Apply given draws ``params`` (from :meth:`sample`); the noise is drawn here."""
        images, labels = self._check(images, labels)
        n, c = images.shape[:2]
        spatial = images.shape[2:]
        if params.rotation.shape != (n,):
            raise ArgumentError(f"params are for {params.rotation.shape[0]} samples, images have {n}")
        matrix, shift = params.matrices(), params.shift
        # a 3D sample is a stack of slices: fold the depth into the channels, same transform for all
        flat = images.reshape(n, -1, *spatial[-2:])
        out = affine_resample(flat, matrix, shift, mode="bilinear", padding_mode="border")
        out = out.reshape(n, c, *spatial)
        if labels is not None:
            lab = labels.reshape(n, -1, *spatial[-2:])
            labels = affine_resample(lab, matrix, shift, mode="nearest", padding_mode="zeros")
            labels = labels.reshape(n, *spatial)
        if self.gamma > 0:
            axes = tuple(range(1, out.ndim))
            low = out.amin(dim=axes, keepdim=True)
            span = (out.amax(dim=axes, keepdim=True) - low).clamp_min(torch.finfo(out.dtype).tiny)
            gamma = params.gamma.to(device=out.device, dtype=out.dtype).reshape(-1, *[1] * (out.ndim - 1))
            out = low + span * ((out - low) / span).clamp(0, 1) ** gamma
        if self.noise_std > 0 or self.noise_mean != 0:
            noise_device = generator.device if generator is not None else out.device
            noise = torch.randn(out.shape, generator=generator, device=noise_device, dtype=out.dtype)
            out = out + (self.noise_mean + self.noise_std * noise).to(out.device)
        return out, labels

    def _check(self, images: object, labels: object) -> tuple[torch.Tensor, torch.Tensor | None]:
        d = self.spatial_dims
        layout = "(N, C, H, W)" if d == 2 else "(N, C, D, H, W)"
        if not isinstance(images, torch.Tensor) or not images.is_floating_point():
            raise ArgumentError(f"images must be a floating-point torch tensor {layout}, got "
                                f"{type(images).__name__}"
                                + (f" of {images.dtype}" if isinstance(images, torch.Tensor) else ""))
        if images.ndim != d + 2 or images.numel() == 0:
            raise ArgumentError(f"images must be {layout} for spatial_dims={d}, got shape {tuple(images.shape)}")
        if labels is None:
            return images, None
        if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or labels.is_complex():
            raise ArgumentError("labels must be an integer torch tensor (N, *spatial), got "
                                f"{type(labels).__name__}"
                                + (f" of {labels.dtype}" if isinstance(labels, torch.Tensor) else ""))
        expected = (images.shape[0], *images.shape[2:])
        if tuple(labels.shape) != expected:
            raise ArgumentError(f"labels must have shape {expected} to match images {tuple(images.shape)}, "
                                f"got {tuple(labels.shape)}")
        if labels.device != images.device:
            raise ArgumentError(f"labels are on {labels.device}, images on {images.device}")
        return images, labels
