"""Grad-CAM and Grad-CAM++: which parts of a layer's feature maps the score depends on.

For a layer with activations ``A`` (N, K, *s) and the gradient ``G = ∂S/∂A`` of the score
(:mod:`cmrlab.explain.targets`):

* **Grad-CAM** (Selvaraju et al. 2017): channel weights ``w_k = mean_s G_k``; map
  ``ReLU(Σ_k w_k A_k)``;
* **Grad-CAM++** (Chattopadhay et al. 2018): weights ``w_k = Σ_s α_k(s) ReLU(G_k(s))`` with
  ``α = G² / (2 G² + Σ_s A G³)`` (``α`` = 0 where the denominator is 0). The paper's closed form
  assumes the score is ``exp(S)``, which multiplies every weight of a sample by the positive
  number ``exp(S)``: it changes the scale of the map, not its shape, and overflows for the summed
  scores of a segmentation region, so it is left out (MONAI keeps it; after the min–max scaling
  both are the same map, as the tests check).

Both work for 2D and 3D networks (any number of spatial axes) and for segmentation outputs by
region. ``upsample=True`` brings the map to the input's size with (bi/tri)linear interpolation
(``align_corners=False``, as MONAI); ``normalise=True`` scales each sample's map to [0, 1]
(a constant map becomes 0). The result is ``(N, 1, *spatial)``. A network that folds the slices of
its 3D input into the batch (the PSPU-net reads 3-slice windows as 3 images) gets one 2D map per
slice, stacked back into the input's shape.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cmrlab.checks import check_bool, check_number
from cmrlab.errors import ArgumentError
from cmrlab.explain.features import FeatureRecorder, Layer, find_layer
from cmrlab.explain.targets import Target, check_explain_input, eval_mode, explained_score, model_device

__all__ = ["grad_cam", "grad_cam_pp", "normalise_map", "upsample_map"]

_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


def normalise_map(cam: torch.Tensor) -> torch.Tensor:
    """Each sample's map scaled to [0, 1] by its own minimum and maximum (a flat map gives 0)."""
    n = cam.shape[0]
    flat = cam.reshape(n, -1)
    low = flat.min(1).values.view(n, *([1] * (cam.ndim - 1)))
    high = flat.max(1).values.view(n, *([1] * (cam.ndim - 1)))
    span = high - low
    return torch.where(span > 0, (cam - low) / torch.where(span > 0, span, torch.ones_like(span)),
                       torch.zeros_like(cam))


def upsample_map(cam: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """``cam`` (N, 1, *s) interpolated to ``size`` (linear in every spatial axis, align_corners=False)."""
    if tuple(cam.shape[2:]) == tuple(size):
        return cam
    mode = _MODES.get(len(size))
    if mode is None:
        raise ArgumentError(f"can upsample maps with 1 to 3 spatial axes, got {len(size)}")
    return F.interpolate(cam, size=tuple(size), mode=mode, align_corners=False)


def _activations_and_gradients(model: nn.Module, x: torch.Tensor, target: Target, layer: Layer,
                               region: object) -> tuple[torch.Tensor, torch.Tensor]:
    name, _ = find_layer(model, layer)
    x = check_explain_input(x).detach().to(model_device(model))
    recorder = FeatureRecorder(model, [name], keep_graph=True)
    with recorder, eval_mode(model), torch.enable_grad():
        x = x.requires_grad_(True)              # so the graph reaches layers behind frozen weights
        score = explained_score(model(x), target, region)
        if name not in recorder.outputs:
            raise ArgumentError(f"layer {name!r} was not called in the forward pass")
        acts = recorder.outputs[name]
        if acts.ndim < 3:
            raise ArgumentError(f"layer {name!r} gives {tuple(acts.shape)}: Grad-CAM needs feature maps "
                                "(N, K, *spatial); choose a convolutional layer")
        if not acts.requires_grad:
            raise ArgumentError(f"the score does not depend on layer {name!r}")
        (grads,) = torch.autograd.grad(score.sum(), acts)
    return acts.detach(), grads.detach()


def _finish(cam: torch.Tensor, x: torch.Tensor, upsample: bool, normalise: bool) -> torch.Tensor:
    n = x.shape[0]
    if cam.shape[0] != n:
        # a network that folds the slices of a 3D window into the batch (the PSPU-net: N·D 2D images)
        if cam.shape[0] % n or x.ndim != cam.ndim + 1 or cam.shape[0] // n != x.shape[2]:
            raise ArgumentError(f"the layer's batch ({cam.shape[0]}) does not match the input's ({n}), and it is "
                                f"not the input's {x.shape[2] if x.ndim > 2 else 0} slices folded into the batch")
        cam = cam.reshape(n, cam.shape[0] // n, 1, *cam.shape[2:]).transpose(1, 2)
    if check_bool("upsample", upsample):
        cam = upsample_map(cam, tuple(x.shape[2:]))
    if check_bool("normalise", normalise):
        cam = normalise_map(cam)
    return cam


def grad_cam(model: nn.Module, x: torch.Tensor, target: Target = None, *, layer: Layer,
             region: object = None, upsample: bool = True, normalise: bool = False) -> torch.Tensor:
    """Grad-CAM of ``layer`` for the score of ``target`` (and ``region``); ``(N, 1, *spatial)``."""
    acts, grads = _activations_and_gradients(model, x, target, layer, region)
    axes = tuple(range(2, acts.ndim))
    weights = grads.mean(axes, keepdim=True)
    cam = F.relu((weights * acts).sum(1, keepdim=True))
    return _finish(cam, x, upsample, normalise)


def grad_cam_pp(model: nn.Module, x: torch.Tensor, target: Target = None, *, layer: Layer,
                region: object = None, upsample: bool = True, normalise: bool = False,
                eps: float = 0.0) -> torch.Tensor:
    """Grad-CAM++ of ``layer`` (module docstring: the ``exp(S)`` factor is left out).

    ``eps`` is added to the denominator of ``α``. The paper has none; MONAI adds ``1e-7``, which
    matters where the gradients are small (``G²`` of order 1e-6): ``eps=1e-7`` reproduces MONAI.
    """
    eps = check_number("eps", eps, 0.0)
    acts, grads = _activations_and_gradients(model, x, target, layer, region)
    axes = tuple(range(2, acts.ndim))
    g2, g3 = grads.pow(2), grads.pow(3)
    denominator = 2 * g2 + (acts * g3).sum(axes, keepdim=True)
    safe = torch.where(denominator != 0, denominator, torch.ones_like(denominator))
    alpha = torch.where(denominator != 0, g2 / (safe + eps), torch.zeros_like(g2))
    weights = (alpha * F.relu(grads)).sum(axes, keepdim=True)
    cam = F.relu((weights * acts).sum(1, keepdim=True))
    return _finish(cam, x, upsample, normalise)
