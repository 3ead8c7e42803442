"""Occlusion: how much the score drops when a patch of the input is hidden (Zeiler & Fergus 2014).

A window of ``window`` voxels (every channel at once) slides over the spatial axes with
``stride``; inside it the input is replaced by ``baseline``. Each voxel's attribution is the
mean, over the windows that cover it, of ``S(x) − S(x with the window hidden)``: positive where
hiding the voxel lowers the score. The last window of an axis is cut at the border when the
stride does not land on it, so every voxel is covered (``stride ≤ window``). These are captum's
``Occlusion`` conventions; MONAI's ``OcclusionSensitivity`` reports the occluded *outputs*
instead, whose mean over the covering windows is ``S(x)`` minus this map (the tests check both).

The cost is one forward pass per window position (``batch_size`` of them at once): for a
176×176 image with an 11×11 window and stride 4, 1 764 passes.
"""
from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from cmrlab.checks import check_int, check_int_tuple, check_number
from cmrlab.errors import ArgumentError
from cmrlab.explain.targets import (
    Target,
    check_explain_input,
    eval_mode,
    explained_score,
    fixed_target,
    model_device,
    select_samples,
)

__all__ = ["occlusion", "window_starts"]


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """Start indices of the windows along one axis of ``size`` voxels (the last one may be cut)."""
    if window > size:
        raise ArgumentError(f"the window ({window}) is larger than the image ({size}) along an axis")
    if stride > window and size > window:
        raise ArgumentError(f"stride ({stride}) must not exceed the window ({window}), or voxels are skipped")
    count = math.ceil((size - window) / stride) + 1
    return [i * stride for i in range(count)]


def _per_axis(name: str, value: object, ndim: int) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,) * ndim
    return check_int_tuple(name, value, ndim, 1)


def occlusion(model: nn.Module, x: torch.Tensor, target: Target = None, *, window: int | tuple[int, ...],
              stride: int | tuple[int, ...] = 1, baseline: float = 0.0, region: object = None,
              batch_size: int = 32) -> torch.Tensor:
    """The occlusion map of the score, shaped like ``x`` (the same value in every channel)."""
    if not isinstance(model, nn.Module):
        raise ArgumentError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    x = check_explain_input(x).detach().to(model_device(model))
    spatial = tuple(x.shape[2:])
    if not spatial:
        raise ArgumentError(f"x must have spatial axes (N, C, *spatial), got {tuple(x.shape)}")
    window = _per_axis("window", window, len(spatial))
    stride = _per_axis("stride", stride, len(spatial))
    baseline = check_number("baseline", baseline)
    batch_size = check_int("batch_size", batch_size, 1)
    starts = [window_starts(s, w, st) for s, w, st in zip(spatial, window, stride)]
    positions = list(itertools.product(*starts))
    n = x.shape[0]
    total = torch.zeros((n, *spatial), dtype=x.dtype, device=x.device)
    count = torch.zeros(spatial, dtype=x.dtype, device=x.device)
    with eval_mode(model), torch.no_grad():
        target = fixed_target(model, x, target)
        s0 = explained_score(model(x), target, region)
        for begin in range(0, len(positions), batch_size):
            chunk = positions[begin:begin + batch_size]
            hidden = x.repeat(len(chunk), *([1] * (x.ndim - 1)))             # (m·N, C, *spatial), position-major
            slices = []
            for j, pos in enumerate(chunk):
                sl = tuple(slice(p, min(p + w, s)) for p, w, s in zip(pos, window, spatial))
                hidden[(slice(j * n, (j + 1) * n), slice(None), *sl)] = baseline
                slices.append(sl)
            t, r = select_samples(target, region, torch.arange(n, device=x.device).repeat(len(chunk)), x)
            drop = s0.repeat(len(chunk)) - explained_score(model(hidden), t, r)
            for j, sl in enumerate(slices):
                total[(slice(None), *sl)] += drop[j * n:(j + 1) * n].view(n, *([1] * len(spatial)))
                count[sl] += 1
    attribution = total / count
    return attribution.unsqueeze(1).expand(n, x.shape[1], *spatial).clone()
