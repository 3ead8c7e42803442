"""Inference on whole volumes: sliding windows with overlap blending, and 3-slice window stacks.

::

    from cmrlab.train.inference import sliding_window_inference, predict_volume_windows
    probs = sliding_window_inference(image, (128, 128, 64), model, overlap=0.5, mode="gaussian")
    probs = predict_volume_windows(model, volume)      # (C, X, Y, Z), the thesis's 3-slice windows

**Sliding windows.** A network trained on patches sees a large volume one patch ("region of
interest", ROI) at a time. Along each axis of size :math:`n` the windows of size :math:`r`
start every :math:`\\Delta = \\lfloor r (1 - \\text{overlap}) \\rfloor` voxels (at least 1;
:math:`\\Delta = r` when :math:`r = n`), the last one moved back to end at the border. Each
window's prediction :math:`p_w` is blended into the output with an importance map :math:`g`:

.. math:: P(x) = \\frac{\\sum_w g(x - a_w)\\, p_w(x)}{\\sum_w g(x - a_w)}

with :math:`a_w` the window's first voxel. ``mode="constant"``: :math:`g = 1`, a plain average
of the overlapping predictions. ``mode="gaussian"``: :math:`g(u) = \\prod_d \\exp(-u_d^2 / 2
\\sigma_d^2)` with :math:`u` measured from the window centre and :math:`\\sigma_d` =
``sigma_scale`` × :math:`r_d`, clipped below at its smallest value (and never below
:math:`10^{-3}`) so the window corners still count: predictions near a window's edge, where the
network saw the least context, weigh less. An input smaller than the ROI is zero padded
(symmetrically) and the output cropped back. These rules are MONAI's
(``monai.inferers.sliding_window_inference``), which ``tests/test_inference.py`` uses as an
oracle.

**Window stacks.** The cardiac thesis's networks read 3 adjacent slices (176×176×3, stride 1)
and the volume is put back together from the stack predictions (Fig 5.7):
:func:`predict_volume_windows` runs the model on every window of a volume in batches and
averages the softmax probabilities of the windows covering each slice
(:func:`cmrlab.data.patches.assemble_windows`).

Computation follows the input: a tensor is processed on its own device (the model must be
there too); a numpy array on the model's device. Outputs are on the device of the input.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cmrlab.data.patches import assemble_windows, slice_windows
from cmrlab.checks import check_int
from cmrlab.errors import ArgumentError

__all__ = ["importance_map", "predict_volume_windows", "sliding_window_inference", "window_starts_nd"]


def importance_map(roi_size: Sequence[int], mode: Literal["constant", "gaussian"] = "constant",
                   sigma_scale: float | Sequence[float] = 0.125, *, device: torch.device | str | None = None,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The blending weight :math:`g` of one window (see the module docstring), shape ``roi_size``."""
    roi = [check_int("roi_size", r, 1) for r in roi_size]
    if mode == "constant":
        return torch.ones(roi, device=device, dtype=dtype)
    if mode != "gaussian":
        raise ArgumentError(f"mode must be 'constant' or 'gaussian', got {mode!r}")
    scales = [float(sigma_scale)] * len(roi) if isinstance(sigma_scale, (int, float)) else [float(s) for s in sigma_scale]
    if len(scales) != len(roi) or not all(s > 0 for s in scales):
        raise ArgumentError(f"sigma_scale must be > 0, one value or one per axis, got {sigma_scale!r}")
    g = torch.ones((), dtype=torch.float32, device=device)
    for r, s in zip(roi, scales):
        u = torch.arange(r, dtype=torch.float32, device=device) - (r - 1) / 2.0
        g = g[..., None] * torch.exp(-(u**2) / (2.0 * (s * r) ** 2))
    return g.clamp(min=max(float(g.min()), 1e-3)).to(dtype)


def window_starts_nd(image_size: Sequence[int], roi_size: Sequence[int], overlap: Sequence[float]) -> list[list[int]]:
    """First voxel of every window along each axis (see the module docstring)."""
    starts = []
    for n, r, o in zip(image_size, roi_size, overlap):
        step = r if r == n else max(int(r * (1 - o)), 1)
        count = 1
        while (count - 1) * step + r < n:
            count += 1
        starts.append([min(k * step, n - r) for k in range(count)])
    return starts


def _tuple(name: str, value: float | Sequence[float], n: int) -> list:
    values = [value] * n if isinstance(value, (int, float)) and not isinstance(value, bool) else list(value)  # type: ignore[arg-type]
    if len(values) != n:
        raise ArgumentError(f"{name} must have one value or {n} (one per spatial axis), got {value!r}")
    return values


@torch.no_grad()
def sliding_window_inference(
    inputs: torch.Tensor,
    roi_size: int | Sequence[int],
    predictor: Callable[[torch.Tensor], torch.Tensor],
    overlap: float | Sequence[float] = 0.25,
    mode: Literal["constant", "gaussian"] = "constant",
    sw_batch_size: int = 1,
    sigma_scale: float | Sequence[float] = 0.125,
    progress: bool = False,
) -> torch.Tensor:
    """Predict a large ``inputs`` (N, C, *spatial) one ``roi_size`` window at a time, blending overlaps.

    ``predictor`` maps a batch of windows (B, C, *roi_size) to (B, C_out, *roi_size) (a model in
    eval mode, or any function). ``overlap`` in [0, 1) is the fraction of a window shared with its
    neighbour along each axis; ``mode`` and ``sigma_scale`` choose the importance map;
    ``sw_batch_size`` windows go through ``predictor`` at once. A non-positive ``roi_size`` entry
    means the whole axis. Returns (N, C_out, *spatial) on ``inputs``' device, float32 (or the
    predictor's floating dtype). Formulas in the module docstring.
    """
    if not isinstance(inputs, torch.Tensor) or inputs.ndim < 3:
        raise ArgumentError(f"inputs must be a tensor (N, C, *spatial), got "
                            f"{tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__}")
    nd = inputs.ndim - 2
    roi = [int(r) for r in _tuple("roi_size", roi_size, nd)]
    roi = [s if r <= 0 else r for r, s in zip(roi, inputs.shape[2:])]
    overlaps = [float(o) for o in _tuple("overlap", overlap, nd)]
    if not all(0 <= o < 1 for o in overlaps):
        raise ArgumentError(f"overlap must be in [0, 1), got {overlap!r}")
    sw_batch_size = check_int("sw_batch_size", sw_batch_size, 1)
    weight = importance_map(roi, mode, sigma_scale, device=inputs.device)

    # pad each axis smaller than the window symmetrically (F.pad lists the last axis first)
    original = list(inputs.shape[2:])
    pads = [(max(r - s, 0) // 2, max(r - s, 0) - max(r - s, 0) // 2) for r, s in zip(roi, original)]
    if any(p for pair in pads for p in pair):
        inputs = F.pad(inputs, [p for pair in reversed(pads) for p in pair])
    size = list(inputs.shape[2:])
    grids = window_starts_nd(size, roi, overlaps)
    corners = [tuple(c) for c in np.stack(np.meshgrid(*grids, indexing="ij"), -1).reshape(-1, nd)]
    windows = [(b, c) for b in range(inputs.shape[0]) for c in corners]

    out = count = None
    iterator = range(0, len(windows), sw_batch_size)
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(iterator, desc="windows")
    for k in iterator:
        chunk = windows[k:k + sw_batch_size]
        slicers = [(b, slice(None), *(slice(a, a + r) for a, r in zip(c, roi))) for b, c in chunk]
        pred = predictor(torch.stack([inputs[sl] for sl in slicers]))
        if not isinstance(pred, torch.Tensor) or tuple(pred.shape[2:]) != tuple(roi) or pred.shape[0] != len(chunk):
            raise ArgumentError(f"predictor must return ({len(chunk)}, C_out, *{tuple(roi)}) for a batch of windows, "
                                f"got {tuple(pred.shape) if isinstance(pred, torch.Tensor) else type(pred).__name__}")
        if out is None:
            dtype = pred.dtype if pred.is_floating_point() else torch.float32
            out = torch.zeros(inputs.shape[0], pred.shape[1], *size, dtype=dtype, device=inputs.device)
            count = torch.zeros(inputs.shape[0], 1, *size, dtype=dtype, device=inputs.device)
        w = weight.to(out.dtype)
        pred = pred.to(device=out.device, dtype=out.dtype) * w
        for j, sl in enumerate(slicers):
            out[sl] += pred[j]
            count[sl] += w
    out = out / count
    crop = tuple(slice(lo, lo + s) for (lo, _), s in zip(pads, original))
    return out[(slice(None), slice(None), *crop)]


def _model_device(model: nn.Module) -> torch.device:
    for tensor in [*model.parameters(), *model.buffers()]:
        return tensor.device
    return torch.device("cpu")


@torch.no_grad()
def predict_volume_windows(model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
                           volume: np.ndarray | torch.Tensor, *, size: int = 3, stride: int = 1,
                           batch_size: int | None = None, softmax: bool = True) -> torch.Tensor:
    """Per-slice class probabilities of ``volume`` (X, Y, Z) from a model that reads slice windows.

    The volume is cut into windows of ``size`` slices (:func:`cmrlab.data.patches.slice_windows`),
    fed as (B, 1, size, X, Y) in batches of ``batch_size`` windows (default: all at once, as the
    thesis did), the logits turned into probabilities with a softmax over classes (``softmax=False``
    if the model outputs probabilities already) and the windows averaged per slice
    (:func:`cmrlab.data.patches.assemble_windows`). Returns (C, X, Y, Z) float probabilities;
    ``.argmax(0)`` gives the label map. A ``torch.nn.Module`` is put in eval mode for the call
    and back in its former mode afterwards.
    """
    if isinstance(volume, np.ndarray):
        volume = torch.from_numpy(np.ascontiguousarray(volume))
        if isinstance(model, nn.Module):
            volume = volume.to(_model_device(model))
    if not isinstance(volume, torch.Tensor):
        raise ArgumentError(f"volume must be a numpy array or torch tensor (X, Y, Z), got {type(volume).__name__}")
    if isinstance(model, nn.Module) and _model_device(model) != volume.device:
        raise ArgumentError(f"the model is on {_model_device(model)} and the volume on {volume.device}; "
                            "move one of them (computation follows the input)")
    windows, index = slice_windows(volume.float(), size, stride)
    windows = windows[:, None]                                           # (N, 1, size, X, Y)
    batch = len(windows) if batch_size is None else check_int("batch_size", batch_size, 1)
    was_training = isinstance(model, nn.Module) and model.training
    if isinstance(model, nn.Module):
        model.eval()
    try:
        outputs = []
        for k in range(0, len(windows), batch):
            pred = model(windows[k:k + batch])
            if not isinstance(pred, torch.Tensor) or pred.ndim != 5 or tuple(pred.shape[2:]) != tuple(windows.shape[2:]):
                raise ArgumentError("the model must map (B, 1, size, X, Y) windows to (B, C, size, X, Y), got "
                                    f"{tuple(pred.shape) if isinstance(pred, torch.Tensor) else type(pred).__name__}")
            outputs.append(pred.float().softmax(1) if softmax else pred.float())
    finally:
        if was_training:
            model.train()
    return assemble_windows(torch.cat(outputs), volume.shape[2], index)

