"""What an explanation explains: one number per sample, taken from a model's output.

Every method of :mod:`cmrlab.explain` explains a **score**, a tensor ``(N,)`` with one value per
sample, computed from the model's output by :func:`explained_score`:

* a **classifier** ``(N, K)`` logits: the logit of class ``target`` (an int for every sample, or
  one int per sample; ``None`` takes each sample's most probable class);
* a **segmentation network** ``(N, C, *spatial)``: the logits of class ``target`` summed over a
  **region** (a mask broadcastable to ``(N, *spatial)``; default the whole image), so "why is
  this region LV?" has an answer (the same reduction MONAI's Grad-CAM applies to dense outputs);
* a **regressor** ``(N,)`` or ``(N, 1)``: the output itself (``target`` must be ``None``);
* anything else (a model returning a tuple, such as the regression U-Net): ``target`` a function
  ``output → (N,)`` tensor, e.g. ``lambda out: out.volume``.

Scores are logits (before softmax or sigmoid), as in the Grad-CAM paper: a softmax score also
rises when the *other* classes fall, which mixes their evidence into the map.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Union

import torch
from torch import nn

from cmrlab.errors import ArgumentError

__all__ = ["Target", "check_explain_input", "eval_mode", "explained_score", "fixed_target", "model_device",
           "select_samples"]

#: What :func:`explained_score` accepts as ``target``.
Target = Union[None, int, Sequence[int], torch.Tensor, Callable[[Any], torch.Tensor]]


def check_explain_input(x: object, name: str = "x") -> torch.Tensor:
    """``x`` as a floating-point tensor ``(N, C, *spatial)`` (at least one spatial axis), N ≥ 1, finite."""
    if not isinstance(x, torch.Tensor):
        raise ArgumentError(f"{name} must be a torch.Tensor (N, C, ...), got {type(x).__name__}")
    if x.ndim < 3 or x.shape[0] < 1:
        raise ArgumentError(f"{name} must be a batch of images (N, C, *spatial) with N >= 1, got shape "
                            f"{tuple(x.shape)}")
    if not x.is_floating_point():
        raise ArgumentError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ArgumentError(f"{name} holds NaN or infinite values")
    return x


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a model without any)."""
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model`` in eval mode inside the block and put its training flag back afterwards.

    Explanations need eval mode: batch normalisation in training mode mixes the samples of a
    batch (one sample's map would depend on the others) and dropout makes every call different.
    """
    if not isinstance(model, nn.Module):
        raise ArgumentError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    flags = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for m, flag in flags.items():
            m.training = flag


def _region(region: object, output: torch.Tensor) -> torch.Tensor:
    spatial = tuple(output.shape[2:])
    r = torch.as_tensor(region, device=output.device)
    if r.dtype == torch.bool:
        r = r.to(output.dtype)
    if not r.is_floating_point():
        r = r.to(output.dtype)
    if r.ndim == len(spatial):
        r = r.unsqueeze(0)
    if r.ndim != len(spatial) + 1 or tuple(r.shape[1:]) != spatial or r.shape[0] not in (1, output.shape[0]):
        raise ArgumentError(f"region must have the output's spatial shape {spatial} (or (N, *spatial) with "
                            f"N = {output.shape[0]}), got {tuple(r.shape)}")
    if not bool(torch.isfinite(r).all()):
        raise ArgumentError("region holds NaN or infinite values")
    return r


def _class_index(target: object, n: int, k: int, output: torch.Tensor) -> torch.Tensor:
    if target is None:
        flat = output.reshape(n, k, -1).sum(-1) if output.ndim > 2 else output
        return flat.detach().argmax(1)
    if isinstance(target, bool):
        raise ArgumentError(f"target must be a class number, got {target!r}")
    if isinstance(target, int):
        idx = torch.full((n,), target, dtype=torch.long, device=output.device)
    else:
        idx = torch.as_tensor(target, device=output.device)
        if idx.dtype.is_floating_point or idx.dtype == torch.bool or idx.ndim != 1 or idx.numel() != n:
            raise ArgumentError(f"target must be one class number, or {n} of them (one per sample), got {target!r}")
        idx = idx.long()
    if bool(((idx < 0) | (idx >= k)).any()):
        raise ArgumentError(f"target class must be in 0..{k - 1} (the output has {k} classes), got {target!r}")
    return idx


def explained_score(output: Any, target: Target = None, region: object = None) -> torch.Tensor:
    """The score ``(N,)`` that an explanation of ``output`` explains (see the module docstring)."""
    if callable(target) and not isinstance(target, torch.Tensor):
        score = target(output)
        if not isinstance(score, torch.Tensor) or score.ndim != 1:
            raise ArgumentError("target(output) must return a tensor (N,) with one score per sample, got "
                                f"{type(score).__name__} {tuple(getattr(score, 'shape', ()))}")
        return score
    if not isinstance(output, torch.Tensor):
        raise ArgumentError(f"the model returned a {type(output).__name__}, not a tensor; give target as a "
                            "function that picks the score, e.g. target=lambda out: out.volume")
    if output.ndim == 0:
        raise ArgumentError("the model returned a single number; it must return one value per sample (N, ...)")
    n = output.shape[0]
    if output.ndim == 1 or (output.ndim == 2 and output.shape[1] == 1):
        if target is not None and not (isinstance(target, int) and not isinstance(target, bool) and target == 0):
            raise ArgumentError(f"the model has one output per sample (a regressor): target must be None, got {target!r}")
        if region is not None:
            raise ArgumentError("region applies to a segmentation output (N, C, *spatial), not to a regressor's")
        return output.reshape(n)
    k = output.shape[1]
    idx = _class_index(target, n, k, output)
    picked = output[torch.arange(n, device=output.device), idx]            # (N,) or (N, *spatial)
    if output.ndim == 2:
        if region is not None:
            raise ArgumentError("region applies to a segmentation output (N, C, *spatial), not to a classifier's (N, K)")
        return picked
    if region is not None:
        picked = picked * _region(region, output)
    return picked.reshape(n, -1).sum(1)


def fixed_target(model: nn.Module, x: torch.Tensor, target: Target) -> Target:
    """The target every perturbed copy of ``x`` is scored on.

    Methods that run the model on changed inputs (noisy copies, points of an integration path,
    occluded or partly deleted images) must keep explaining the input's own class. ``None`` is
    therefore turned into each sample's most probable class of ``model(x)`` (for classifiers and
    segmentation outputs; a regressor keeps ``None``); other targets are returned unchanged.
    Call it with the model in eval mode.
    """
    if target is not None:
        return target
    with torch.no_grad():
        output = model(x)
    if isinstance(output, torch.Tensor) and output.ndim >= 2 and not (output.ndim == 2 and output.shape[1] == 1):
        return _class_index(None, output.shape[0], output.shape[1], output)
    return None


def select_samples(target: Target, region: object, index: torch.Tensor, x: torch.Tensor) -> tuple[Target, object]:
    """``target`` and ``region`` for a stacked batch whose item ``k`` is a copy of sample ``index[k]`` of ``x``.

    Per-sample targets (one class per sample) and per-sample regions (``(N, *spatial)``, one axis
    more than a shared ``(*spatial)`` region) are picked by ``index``; anything shared is returned
    as it is.
    """
    n = x.shape[0]
    if isinstance(target, (list, tuple)):
        target = torch.as_tensor(target)
    if isinstance(target, torch.Tensor) and target.ndim == 1 and target.numel() == n:
        target = target.to(index.device)[index]
    if region is not None:
        r = torch.as_tensor(region)
        if r.ndim == x.ndim - 1 and r.shape[0] == n:
            region = r.to(index.device)[index]
    return target, region
