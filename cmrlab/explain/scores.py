"""Scoring explanation maps: against a mask, against the model, and against themselves.

**Against a mask** (does the map point at the structure?):

* :func:`energy_in_mask` — the share of the map's positive mass inside the mask (1 = all of it);
* :func:`pointing_game` — is the map's maximum inside the mask (Zhang et al. 2018; a
  ``tolerance`` in voxels grows the mask first, the paper's 15 px);
* :func:`map_dice` — Dice of the thresholded map (optionally its largest connected component and a
  dilation) with the mask: the cardiac thesis's CAM score, threshold 0.9, largest object, then a
  5×5×1 dilation (ch. 6, L5070-5101).

**Against the model** (is the map faithful?): :func:`deletion_curve` hides the most important
voxels first and follows the score down; :func:`insertion_curve` starts from the baseline image
and adds them back (Petsiuk et al. 2018). :func:`curve_auc` is the area under either curve, on
fractions 0…1: a faithful map gives a *low* deletion AUC and a *high* insertion AUC.

**Sanity checks** (Adebayo et al. 2018): a map that explains the model must change when the model
changes. :func:`randomise_weights` re-draws the weights of chosen layers (all, or a cascade from
the output down, :func:`cascade_layers`); :func:`rank_correlation` (Spearman, per sample) compares
the maps before and after. The same comparison against a model trained on shuffled labels is the
data randomisation test. High correlation after randomisation means the method fails the check.

Maps are batches, tensors or arrays ``(N, 1, *spatial)`` or ``(N, *spatial)``; a mask is the same
or one ``(*spatial)`` for every sample. Every function returns one value per sample (a float
tensor ``(N,)``).
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from scipy.stats import rankdata
from torch import nn

from cmrlab.checks import check_bool, check_int, check_number
from cmrlab.errors import ArgumentError
from cmrlab.nn.metrics import thresholded_dice
from cmrlab.explain.features import Layer, find_layer
from cmrlab.explain.targets import Target, check_explain_input, eval_mode, explained_score, fixed_target, model_device

__all__ = [
    "cascade_layers", "curve_auc", "deletion_curve", "energy_in_mask", "insertion_curve", "map_dice",
    "pointing_game", "randomise_weights", "rank_correlation",
]


def _as_maps(value: Any, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(value) if not isinstance(value, torch.Tensor) else value).detach()
    if t.dtype == torch.bool:
        t = t.float()
    if t.ndim == 0:
        raise ArgumentError(f"{name} must be an image or a batch of images, got a single number")
    return t.float().cpu()


def _pair(map_: Any, mask: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, *spatial)`` map and mask: the map is a batch ``(N, *spatial)`` or ``(N, 1, *spatial)``,
    the mask the same or one ``(*spatial)`` for every sample."""
    m = _as_maps(map_, "map")
    k = _as_maps(mask, "mask")
    if not bool(torch.isfinite(m).all()):
        raise ArgumentError("map holds NaN or infinite values")
    if m.ndim < 2:
        raise ArgumentError(f"map must be a batch (N, *spatial) or (N, 1, *spatial), got shape {tuple(m.shape)}; "
                            "add the batch axis (map[None]) for one image")
    if m.ndim >= 3 and m.shape[1] == 1 and (k.ndim == m.ndim - 2 or tuple(k.shape) == (m.shape[0], *m.shape[2:])):
        m = m[:, 0]
    elif m.ndim >= 3 and m.shape[1] == 1 and k.ndim == m.ndim and k.shape[1] == 1:
        m, k = m[:, 0], k[:, 0]
    if tuple(k.shape) == tuple(m.shape[1:]):
        k = k.unsqueeze(0).expand_as(m)
    if k.shape != m.shape:
        raise ArgumentError(f"mask {tuple(k.shape)} does not fit the map {tuple(m.shape)}: give one mask "
                            "(*spatial) or one per sample")
    if not bool(((k == 0) | (k == 1)).all()):
        raise ArgumentError("mask must hold only 0 and 1 (or True and False)")
    return m, k.bool()


def energy_in_mask(map_: Any, mask: Any) -> torch.Tensor:
    """Share of the map's positive part inside ``mask`` per sample; NaN for a map with no positive value."""
    m, k = _pair(map_, mask)
    m, k = m.reshape(m.shape[0], -1), k.reshape(k.shape[0], -1)
    positive = m.clamp(min=0)
    total = positive.sum(1)
    inside = (positive * k).sum(1)
    return torch.where(total > 0, inside / torch.where(total > 0, total, torch.ones_like(total)),
                       torch.full_like(total, float("nan")))


def pointing_game(map_: Any, mask: Any, tolerance: int = 0) -> torch.Tensor:
    """1.0 where the map's maximum lies in ``mask`` grown by ``tolerance`` voxels, else 0.0.

    Ties: the first maximum in memory order. A mask that is empty for a sample gives NaN there.
    """
    tolerance = check_int("tolerance", tolerance, 0)
    m, k = _pair(map_, mask)
    n = m.shape[0]
    out = torch.empty(n)
    for i in range(n):
        region = k[i].numpy()
        if not region.any():
            out[i] = float("nan")
            continue
        if tolerance:
            region = ndimage.binary_dilation(region, ndimage.generate_binary_structure(region.ndim, region.ndim),
                                             iterations=tolerance)
        out[i] = float(region.reshape(-1)[int(m[i].reshape(-1).argmax())])
    return out


def map_dice(map_: Any, mask: Any, threshold: float = 0.9, *, largest_component: bool = True,
             dilation: Sequence[int] | None = None) -> torch.Tensor:
    """Dice of ``map > threshold`` with ``mask``, per sample.

    ``threshold`` is absolute: the thesis thresholds its sigmoid CAM (values in [0, 1]) at 0.9;
    scale a post-hoc map to [0, 1] first (:func:`~cmrlab.explain.cam.normalise_map`).
    ``largest_component`` keeps the largest connected object (full connectivity); ``dilation``
    grows it with a box of that many voxels per spatial axis (the thesis's 5×5×1 is
    ``(5, 5, 1)`` for an (X, Y, Z) map). Both empty: Dice 1.
    """
    threshold = check_number("threshold", threshold)
    largest_component = check_bool("largest_component", largest_component)
    m, k = _pair(map_, mask)
    n, spatial = m.shape[0], tuple(m.shape[1:])
    if dilation is not None:
        dilation = tuple(check_int(f"dilation[{i}]", d, 1) for i, d in enumerate(dilation))
        if len(dilation) != len(spatial):
            raise ArgumentError(f"dilation must give one size per spatial axis ({len(spatial)}), got {dilation}")
    out = torch.empty(n)
    for i in range(n):
        out[i] = thresholded_dice(m[i].numpy(), k[i].numpy(), threshold,
                                  largest_component=largest_component, dilation=dilation)
    return out


def rank_correlation(a: Any, b: Any, *, absolute: bool = True) -> torch.Tensor:
    """Spearman rank correlation of two maps per sample (of their magnitudes if ``absolute``).

    NaN for a sample where a map is constant.
    """
    absolute = check_bool("absolute", absolute)
    x, y = _as_maps(a, "a").double(), _as_maps(b, "b").double()
    if x.shape != y.shape:
        raise ArgumentError(f"the maps must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.ndim < 2:
        x, y = x.unsqueeze(0), y.unsqueeze(0)
    x, y = x.reshape(x.shape[0], -1), y.reshape(y.shape[0], -1)
    if absolute:
        x, y = x.abs(), y.abs()
    out = torch.empty(x.shape[0])
    for i in range(x.shape[0]):
        rx, ry = rankdata(x[i].numpy()), rankdata(y[i].numpy())        # ties share their mean rank
        rx, ry = rx - rx.mean(), ry - ry.mean()
        denominator = float(np.linalg.norm(rx) * np.linalg.norm(ry))
        out[i] = float("nan") if denominator == 0 else float(rx @ ry) / denominator
    return out


def _order(map_: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Voxel order (N, V) from most to least important; a channel map is summed over channels."""
    m = map_.detach().to(x.device, x.dtype)
    spatial = tuple(x.shape[2:])
    if m.shape == x.shape:
        m = m.sum(1)
    elif m.ndim == x.ndim and m.shape[1] == 1 and tuple(m.shape[2:]) == spatial:
        m = m[:, 0]
    elif tuple(m.shape) == (x.shape[0], *spatial):
        pass
    elif tuple(m.shape) == spatial:
        m = m.unsqueeze(0).expand(x.shape[0], *spatial)
    else:
        raise ArgumentError(f"map {tuple(map_.shape)} does not fit the input {tuple(x.shape)}")
    if not bool(torch.isfinite(m).all()):
        raise ArgumentError("map holds NaN or infinite values")
    return torch.argsort(m.reshape(m.shape[0], -1), dim=1, descending=True, stable=True)


def _curve(model: nn.Module, x: torch.Tensor, map_: Any, target: Target, region: object, steps: int,
           baseline: float, insert: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(model, nn.Module):
        raise ArgumentError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    steps = check_int("steps", steps, 1)
    baseline = check_number("baseline", baseline)
    x = check_explain_input(x).detach().to(model_device(model))
    order = _order(torch.as_tensor(map_), x)
    n, voxels = order.shape
    fractions = torch.linspace(0.0, 1.0, steps + 1)
    scores = torch.empty(n, steps + 1)
    with eval_mode(model), torch.no_grad():
        target = fixed_target(model, x, target)          # every curve point scores the input's class
        for j, f in enumerate(fractions.tolist()):
            count = int(round(f * voxels))
            keep = torch.zeros(n, voxels, dtype=torch.bool, device=x.device)
            keep.scatter_(1, order[:, :count], True)                     # the `count` most important voxels
            keep = keep.view(n, 1, *x.shape[2:])
            shown = torch.where(keep, x, torch.full_like(x, baseline)) if insert else \
                torch.where(keep, torch.full_like(x, baseline), x)
            scores[:, j] = explained_score(model(shown), target, region).float().cpu()
    return fractions, scores


def deletion_curve(model: nn.Module, x: torch.Tensor, map_: Any, target: Target = None, *,
                   region: object = None, steps: int = 20, baseline: float = 0.0,
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(fractions (steps+1,), scores (N, steps+1))``: the score as the top fraction of voxels
    (by the map) is set to ``baseline``, all channels of a voxel together."""
    return _curve(model, x, map_, target, region, steps, baseline, insert=False)


def insertion_curve(model: nn.Module, x: torch.Tensor, map_: Any, target: Target = None, *,
                    region: object = None, steps: int = 20, baseline: float = 0.0,
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(fractions, scores)``: the score as the top fraction of voxels is put back into an image
    that starts as ``baseline`` everywhere."""
    return _curve(model, x, map_, target, region, steps, baseline, insert=True)


def curve_auc(fractions: Any, scores: Any) -> torch.Tensor:
    """Area under a deletion or insertion curve (trapezoid rule over the fractions), per sample."""
    f = torch.as_tensor(fractions, dtype=torch.float64).reshape(-1)
    s = torch.as_tensor(scores, dtype=torch.float64)
    if s.ndim == 1:
        s = s.unsqueeze(0)
    if s.shape[-1] != f.numel() or f.numel() < 2:
        raise ArgumentError(f"scores {tuple(s.shape)} must have one value per fraction ({f.numel()}, at least 2)")
    if bool((f.diff() <= 0).any()):
        raise ArgumentError("fractions must increase")
    return torch.trapezoid(s, f, dim=-1).float()


def cascade_layers(model: nn.Module) -> list[str]:
    """Names of the layers with weights, from the output back to the input (Adebayo's cascade).

    Order is ``model.named_modules()`` reversed, which is the order of computation for the
    sequential and encoder–decoder networks of the zoo.
    """
    if not isinstance(model, nn.Module):
        raise ArgumentError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    names = [name for name, m in model.named_modules()
             if name and hasattr(m, "reset_parameters") and any(True for _ in m.parameters(recurse=False))]
    return names[::-1]


def randomise_weights(model: nn.Module, layers: Sequence[Layer] | None = None, *, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with the weights of ``layers`` (default: every layer) drawn again.

    Each layer's own ``reset_parameters`` draws them (PyTorch's initialisation: the distribution
    of an untrained model), under ``torch.manual_seed(seed)`` restored afterwards. Running
    statistics of batch norm are reset too. The original model is not changed.
    """
    seed = check_int("seed", seed, 0)
    copied = copy.deepcopy(model)
    names = cascade_layers(copied) if layers is None else [find_layer(model, layer)[0] for layer in layers]
    modules = dict(copied.named_modules())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name in names:
            module = modules[name]
            if not hasattr(module, "reset_parameters"):
                raise ArgumentError(f"layer {name!r} ({type(module).__name__}) has no weights to randomise")
            module.reset_parameters()
            if hasattr(module, "reset_running_stats"):
                module.reset_running_stats()
    return copied
