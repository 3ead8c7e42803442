"""Inference on whole volumes: sliding windows with overlap blending, and 3-slice window stacks.

::

    from cmrlab.train.inference import sliding_window_inference, predict_volume_windows
    probs = sliding_window_inference(image, (128, 128, 64), model, overlap=0.5, mode="gaussian")
    probs = predict_volume_windows(model, volume)      # (C, X, Y, Z), the thesis's 3-slice windows

**Sliding windows.** A network trained on patches sees a large volume one patch ("region of
interest", ROI) at a time. :func:`sliding_window_inference` checks its arguments the cmrlab way
and hands the work to MONAI's ``monai.inferers.sliding_window_inference``, whose rules are:
along each axis of size :math:`n` the windows of size :math:`r` start every
:math:`\\Delta = \\lfloor r (1 - \\text{overlap}) \\rfloor` voxels (at least 1;
:math:`\\Delta = r` when :math:`r = n`), the last one moved back to end at the border. Each
window's prediction :math:`p_w` is blended into the output with an importance map :math:`g`:

.. math:: P(x) = \\frac{\\sum_w g(x - a_w)\\, p_w(x)}{\\sum_w g(x - a_w)}

with :math:`a_w` the window's first voxel. ``mode="constant"``: :math:`g = 1`, a plain average
of the overlapping predictions. ``mode="gaussian"``: a Gaussian centred on the window with
:math:`\\sigma_d` = ``sigma_scale`` × :math:`r_d`, clipped below so the window corners still
count: predictions near a window's edge, where the network saw the least context, weigh less.
An input smaller than the ROI is zero padded (symmetrically) and the output cropped back.
``tests/test_inference.py`` checks the result against a brute-force average on small cases.

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
from torch import nn

from cmrlab.checks import check_bool, check_choice, check_int, check_number
from cmrlab.data.patches import assemble_windows, slice_windows
from cmrlab.errors import ArgumentError

__all__ = ["predict_volume_windows", "sliding_window_inference"]


def _per_axis(name: str, value: object, n: int) -> list:
    """``value`` repeated ``n`` times when it is one number, else its ``n`` items."""
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return [value] * n
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != n:
        raise ArgumentError(f"{name} must have one value or {n} (one per spatial axis), got {value!r}")
    return list(value)


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

    A thin wrapper of ``monai.inferers.sliding_window_inference`` (module docstring) that checks
    the arguments first and names the one at fault in an :class:`~cmrlab.errors.ArgumentError`.
    ``predictor`` maps a batch of windows (B, C, *roi_size) to (B, C_out, *roi_size) (a model in
    eval mode, or any function); another shape is an error (MONAI would read it as a zoom).
    ``overlap`` in [0, 1) is the fraction of a window shared with its neighbour along each axis
    (one value or one per axis); ``mode`` (``"constant"`` or ``"gaussian"``) and ``sigma_scale``
    (> 0) choose the importance map; ``sw_batch_size`` windows go through ``predictor`` at once;
    ``progress`` shows a bar. A non-positive ``roi_size`` entry means the whole axis. Returns a
    plain tensor (N, C_out, *spatial) on ``inputs``' device, in the predictor's floating dtype.
    """
    from monai.inferers import sliding_window_inference as monai_sliding_window_inference

    if not isinstance(inputs, torch.Tensor) or inputs.ndim < 3:
        raise ArgumentError(f"inputs must be a tensor (N, C, *spatial), got "
                            f"{tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__}")
    if not callable(predictor):
        raise ArgumentError(f"predictor must be callable, got {type(predictor).__name__}")
    nd = inputs.ndim - 2
    roi = [check_int(f"roi_size[{i}]", r, None) for i, r in enumerate(_per_axis("roi_size", roi_size, nd))]
    roi = [s if r <= 0 else r for r, s in zip(roi, inputs.shape[2:])]
    overlaps = [check_number(f"overlap[{i}]", o, 0.0, 1.0, high_open=True)
                for i, o in enumerate(_per_axis("overlap", overlap, nd))]
    mode = check_choice("mode", mode, ("constant", "gaussian"))
    sw_batch_size = check_int("sw_batch_size", sw_batch_size, 1)
    sigmas = [check_number(f"sigma_scale[{i}]", v, 0.0, low_open=True)
              for i, v in enumerate(_per_axis("sigma_scale", sigma_scale, nd))]
    progress = check_bool("progress", progress)

    def checked(windows: torch.Tensor) -> torch.Tensor:
        pred = predictor(windows)
        if (not isinstance(pred, torch.Tensor) or pred.ndim != windows.ndim or pred.shape[0] != windows.shape[0]
                or tuple(pred.shape[2:]) != tuple(windows.shape[2:])):
            raise ArgumentError(f"predictor must return ({windows.shape[0]}, C_out, *{tuple(windows.shape[2:])}) "
                                f"for a batch of windows, got "
                                f"{tuple(pred.shape) if isinstance(pred, torch.Tensor) else type(pred).__name__}")
        return pred if pred.is_floating_point() else pred.float()

    out = monai_sliding_window_inference(inputs, roi, sw_batch_size, checked, overlap=overlaps, mode=mode,
                                         sigma_scale=sigmas, progress=progress)
    return out.as_tensor() if hasattr(out, "as_tensor") else out


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

