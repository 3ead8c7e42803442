r"""Loss functions for segmentation, ES/ED frame detection and volume regression.

Every loss comes twice, in the MONAI style: a function (``dice_loss``) and a small
:class:`torch.nn.Module` that stores the settings and calls it (``DiceLoss``). The formulas, with
``p`` the predicted probability, ``y`` the (one-hot) target, ``c`` a class and ``i`` a voxel
(or a frame):

* :func:`cross_entropy` (Long et al. FCN; U-Net weight maps) —
  ``CE = −Σ_i m_i Σ_c w_c y_ic log p_ic / Σ_i m_i Σ_c w_c y_ic``
* :func:`dice_loss` (Milletari et al. 2016, V-Net) —
  ``1 − (2 Σ_i p_ic y_ic + s_nr) / (Σ_i p_ic + Σ_i y_ic + s_dr)``
* :func:`generalized_dice_loss` (Sudre et al. 2017) —
  ``1 − (2 Σ_c w_c Σ_i p_ic y_ic + s_nr) / (Σ_c w_c Σ_i (p_ic + y_ic) + s_dr)``, ``w_c = 1/(Σ_i y_ic)²``
  or fixed weights (the thesis's chapter 5)
* :func:`weighted_dice_loss` (thesis Eq 7.2) —
  ``1 − Σ_c w_c (2 Σ_i y_ic p_ic + s_nr) / (Σ_i (y_ic + p_ic) + s_dr)``
* :func:`tversky_loss` (Salehi et al. 2017) — ``1 − (TP + s_nr) / (TP + α FP + β FN + s_dr)``
* :func:`focal_loss` (Lin et al. 2017) — ``−Σ_c α_c (1 − p_ic)^γ y_ic log p_ic``, averaged
* :func:`dice_ce_loss` — ``λ_Dice · Dice + λ_CE · CE`` (BCE + Dice with a sigmoid)
* :func:`frame_weighted_cross_entropy` (thesis Eq 7.1) — ``WCE = −Σ_i w_i Σ_c y_ic log p_ic``,
  ``w_i = 100`` on the ES and ED frames
* :func:`volume_regression_loss` (thesis Eq 6.1) — ``MAE(vol) + 100·MAE(π) + 10⁻³·(L1(bn) + L1(CAM))``
* :func:`border_weight_map` (Ronneberger et al. 2015, U-Net) — the per-pixel weight map
  ``w(x) = w_c(x) + w0·exp(−(d1 + d2)²/(2σ²))`` for :func:`cross_entropy`'s ``weight_map``

BibTeX keys in ``book/references.bib``: ``milletari2016vnet``, ``sudre2017generalised``,
``salehi2017tversky``, ``lin2017focal``. "Thesis" is the cardiac thesis (``cardiacthesis``; line
numbers Lnnnn are those of its text). Its chapter 5 trains both segmentation
networks with a generalised Dice loss whose weights are fixed at 0.1 for the background and 0.3
for each tissue (L3813-3825): that is :func:`generalized_dice_loss` with
``weights=SEGMENTATION_CLASS_WEIGHTS``. Chapter 7 trains the frame detector twice, with the
per-frame weighted cross-entropy of Eq 7.1 and with the weighted Dice loss of Eq 7.2
(L5817-5915).

Conventions shared by all the losses on class maps:

* ``input`` has shape ``(N, C, *spatial)``: batch, classes, then any number of spatial (or time)
  axes — ``(N, C, H, W)`` for 2D, ``(N, C, D, H, W)`` for 3D, ``(N, C, T)`` for one value per
  frame. It holds raw scores (logits) turned into probabilities by ``activation``:

  - ``"softmax"`` (default): the classes are exclusive; needs ``C ≥ 2``.
  - ``"sigmoid"``: every channel is its own yes/no question (multi-label); the binary case is
    ``C = 1``.
  - ``"none"``: ``input`` already holds probabilities in [0, 1] (for a model that ends with its
    own softmax or sigmoid, like the thesis's frame detector and regression U-Net).

* ``target`` is either integer labels, shape ``(N, *spatial)`` or ``(N, 1, *spatial)``, values
  ``0 … C−1`` (``0``/``1`` when ``C = 1``), or one-hot (or soft) targets with the shape of
  ``input`` and values in [0, 1]. Float tensors holding whole numbers are accepted as labels.
* ``reduction``: ``"mean"`` (default), ``"sum"`` or ``"none"`` (the unreduced values; each
  function says their shape).
* ``include_background=False`` drops channel 0 *after* the softmax, as MONAI does.
* Half-precision inputs are computed in float32 (sums over a whole volume overflow float16).
* Bad input raises :class:`~cmrlab.errors.ArgumentError` naming the argument. Two kinds of check:

  - **always**: the type, shape, dtype and device of every tensor, and every option (an unknown
    activation, a negative smooth term or weight given as numbers, a weight list of the wrong
    length). These look at no tensor value, so they cost nothing on a GPU.
  - **debug mode only**: the checks of tensor *values* — NaN or infinite input or targets,
    probabilities outside [0, 1] with ``activation="none"``, labels that are not whole or lie
    outside ``0 … C−1``, one-hot targets outside [0, 1], negative weight maps, and class weights
    or volumes passed as tensors. Each needs a value back on the CPU, which on a GPU stalls the
    queue of kernels (a device sync) at *every* call. Switch them on with
    ``CMRLAB_DEBUG_CHECKS=1`` in the environment, :func:`set_debug_checks` ``(True)``, or
    ``with debug_checks(): …``. The loss **modules** (``DiceLoss()`` …) run them on their
    first call anyway (one sync, once), so a data set whose labels do not fit the model fails
    at the first batch. Labels out of range for ``C ≥ 2`` channels still raise on the CPU without debug mode (torch's
    ``one_hot`` checks them there for free); on a GPU they trigger a device-side assert instead.

Differences from MONAI (``monai.losses``); ``tests/test_losses.py`` compares every loss with its
MONAI (or torch) counterpart where they define the same thing:

* MONAI applies no activation unless told (``softmax=True``/``sigmoid=True``); here
  ``activation="softmax"`` is the default, and label targets need no ``to_onehot_y`` flag.
* ``reduction="none"`` gives ``(N, C)`` for Dice and Tversky where MONAI keeps broadcastable
  singleton axes ``(N, C, 1, …)``.
* :func:`focal_loss` with a softmax sums over classes before averaging over voxels, so
  ``gamma=0`` gives exactly :func:`cross_entropy`; MONAI's ``FocalLoss(use_softmax=True)``
  averages over classes as well and is smaller by a factor ``C``. MONAI's ``reduction="sum"``
  of the focal loss averages over the spatial axes first; ours is a plain sum.
* :func:`dice_ce_loss` with a sigmoid uses the per-channel BCE for any ``C`` (MONAI's
  ``DiceCELoss`` uses BCE only for ``C = 1``); its ``class_weights`` weight the CE term only
  (MONAI also multiplies the per-class Dice by them and uses them as BCE ``pos_weight``).
* The smooth terms ``s_nr = s_dr = 1e-5`` are MONAI's defaults. The thesis prints none (Eq 7.2)
  and the brain thesis's alpha code (MedicalZooPytorch) clamps the denominator at 1e-5 instead
  of adding to it, with a sigmoid and the background included; ``smooth_nr=0, smooth_dr=0``
  gives the printed formulas exactly (a class absent from both prediction and target then makes
  0/0).

Example::

    >>> import torch
    >>> from cmrlab.nn.losses import DiceLoss
    >>> logits = torch.zeros(1, 2, 4, 4)          # 50 % / 50 % everywhere
    >>> labels = torch.zeros(1, 4, 4, dtype=torch.long)
    >>> round(DiceLoss(smooth_nr=0, smooth_dr=0)(logits, labels).item(), 4)
    0.6667
"""
from __future__ import annotations

import contextlib
import inspect
import math
import numbers
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Literal, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cmrlab.checks import check_bool, check_choice, check_int, check_number
from cmrlab.errors import ArgumentError

__all__ = [
    "BORDER_SIGMA",
    "BORDER_W0",
    "EVENT_FRAME_WEIGHT",
    "FRAME_CLASSES",
    "FRAME_CLASS_WEIGHTS",
    "SEGMENTATION_CLASS_WEIGHTS",
    "CrossEntropyLoss",
    "DiceCELoss",
    "DiceLoss",
    "FocalLoss",
    "FrameCrossEntropyLoss",
    "FrameWeightedCrossEntropyLoss",
    "GeneralizedDiceLoss",
    "TverskyLoss",
    "VolumeRegressionLoss",
    "WeightedDiceLoss",
    "cross_entropy",
    "border_weight_map",
    "debug_checks",
    "debug_checks_enabled",
    "dice_ce_loss",
    "dice_loss",
    "focal_loss",
    "frame_cross_entropy",
    "frame_weighted_cross_entropy",
    "generalized_dice_loss",
    "l1_activity",
    "set_debug_checks",
    "tversky_loss",
    "volume_regression_loss",
    "weighted_dice_loss",
]

Activation = Literal["softmax", "sigmoid", "none"]
Reduction = Literal["mean", "sum", "none"]
Weights = Union[Sequence[float], Tensor]

#: Fixed class weights of the chapter-5 generalised Dice loss, in label order
#: (background, LV cavity, LV myocardium, RV cavity): 0.1 background, 0.3 each tissue (L3813-3825).
SEGMENTATION_CLASS_WEIGHTS: tuple[float, ...] = (0.1, 0.3, 0.3, 0.3)

#: The three per-frame classes of the chapter-7 frame detector, in its output order (L5745-5747, L5847).
FRAME_CLASSES: tuple[str, ...] = ("ES", "ED", "background")

#: Class weights of the weighted Dice loss, Eq 7.2, in :data:`FRAME_CLASSES` order (L5902-5915).
FRAME_CLASS_WEIGHTS: tuple[float, ...] = (0.45, 0.45, 0.1)

#: Weight of the ES and ED frames in the weighted cross-entropy, Eq 7.1 (other frames: 1; L5835-5841).
EVENT_FRAME_WEIGHT: float = 100.0

_KERAS_EPSILON = 1e-7  # Keras clips probabilities to [eps, 1 − eps] before the log

_ACTIVATIONS = ("softmax", "sigmoid", "none")
_REDUCTIONS = ("mean", "sum", "none")
_FLAGS = ("include_background", "squared", "batch")


# --------------------------------------------------------------------------------------------
# Checks shared by every loss
# --------------------------------------------------------------------------------------------
def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


_DEBUG_CHECKS = _env_flag("CMRLAB_DEBUG_CHECKS")
_FORCED = threading.local()  # set while a loss module checks its first call


def set_debug_checks(enabled: bool) -> bool:
    """Switch the value checks of every loss on or off; returns the previous setting.

    The checks that look at tensor *values* (NaN or infinite input, probabilities outside
    [0, 1], labels outside ``0 … C−1`` or not whole, one-hot targets outside [0, 1], negative
    weight maps, class weights or volumes given as tensors) each need the value back on the CPU,
    which on a GPU waits for all queued work: a sync per call. They are off by default and on
    when the environment variable ``CMRLAB_DEBUG_CHECKS`` is ``1`` at import, after
    ``set_debug_checks(True)``, or inside ``with debug_checks():``. Checks of shapes, dtypes,
    devices and of the options themselves always run.
    """
    global _DEBUG_CHECKS
    previous = _DEBUG_CHECKS
    _DEBUG_CHECKS = check_bool("enabled", enabled)
    return previous


def debug_checks_enabled() -> bool:
    """Whether the value checks run now (see :func:`set_debug_checks`)."""
    return _DEBUG_CHECKS or getattr(_FORCED, "on", False)


@contextlib.contextmanager
def debug_checks(enabled: bool = True) -> Iterator[None]:
    """``with debug_checks(): …`` runs the value checks inside the block (see :func:`set_debug_checks`)."""
    previous = set_debug_checks(enabled)
    try:
        yield
    finally:
        set_debug_checks(previous)


@contextlib.contextmanager
def _checked_call() -> Iterator[None]:
    """Value checks on for this thread only (a loss module's first call)."""
    previous = getattr(_FORCED, "on", False)
    _FORCED.on = True
    try:
        yield
    finally:
        _FORCED.on = previous


def _nonnegative(name: str, value: object, maximum: float | None = None) -> float:
    return check_number(name, value, 0.0, maximum)


def _require_finite(t: Tensor, name: str) -> None:
    """NaN/inf check of a tensor's values, in debug mode only (it syncs a GPU)."""
    if debug_checks_enabled() and t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise ArgumentError(f"{name} contains NaN or infinite values")


def _value_range(t: Tensor) -> tuple[float, float]:
    lo, hi = torch.aminmax(t)
    return lo.item(), hi.item()


def _check_input(input: object, *, min_ndim: int, name: str = "input") -> Tensor:
    """The prediction as a floating tensor of at least ``min_ndim`` axes, not empty (finite in
    debug mode)."""
    if not isinstance(input, Tensor):
        raise ArgumentError(f"{name} must be a torch.Tensor, got {type(input).__name__}")
    if not input.is_floating_point():
        raise ArgumentError(f"{name} must be a floating-point tensor (logits or probabilities), got {input.dtype}")
    if input.ndim < min_ndim:
        layout = "(N, C)" if min_ndim == 2 else "(N, C, *spatial) with at least one spatial axis"
        raise ArgumentError(f"{name} must have shape {layout}, got shape {tuple(input.shape)}")
    if input.numel() == 0:
        raise ArgumentError(f"{name} is empty (shape {tuple(input.shape)})")
    _require_finite(input, name)
    if input.dtype in (torch.float16, torch.bfloat16):
        input = input.float()
    return input


def _check_probabilities(x: Tensor, name: str = "input") -> None:
    if not debug_checks_enabled():
        return
    lo, hi = _value_range(x)
    if lo < 0.0 or hi > 1.0:
        raise ArgumentError(
            f"{name} must hold probabilities in [0, 1] with activation='none', got values in [{lo:.4g}, {hi:.4g}]"
        )


def _label_range_error(name: str, labels: Tensor, n_labels: int, c: int) -> ArgumentError:
    lo, hi = _value_range(labels)
    return ArgumentError(
        f"{name} labels must lie in 0..{n_labels - 1} for an input with {c} channel(s), got values in {lo:g}..{hi:g}"
    )


def _as_target(target: object, x: Tensor, name: str = "target") -> Tensor:
    """``target`` as a float tensor of the shape of ``x`` (one-hot for label targets)."""
    if not isinstance(target, Tensor):
        raise ArgumentError(f"{name} must be a torch.Tensor, got {type(target).__name__}")
    if target.device != x.device:
        raise ArgumentError(f"{name} is on {target.device} but input is on {x.device}; move them to one device")
    n, c, spatial = x.shape[0], x.shape[1], tuple(x.shape[2:])
    shape = tuple(target.shape)
    if target.dtype == torch.bool:
        target = target.to(torch.uint8)
    if target.is_complex():
        raise ArgumentError(f"{name} must be real, got {target.dtype}")

    if shape == tuple(x.shape):  # one-hot or soft targets (for C = 1: the binary mask)
        _require_finite(target, name)
        if debug_checks_enabled():
            lo, hi = _value_range(target)
            if lo < 0 or hi > 1:
                raise ArgumentError(
                    f"{name} has the shape of input, so it is read as one-hot (or soft) targets, which must lie in "
                    f"[0, 1]; got values in [{lo:.4g}, {hi:.4g}] (pass integer labels as (N, *spatial))"
                )
        return target.to(x.dtype)

    if shape == (n, *spatial) or (c > 1 and shape == (n, 1, *spatial)):  # integer labels
        labels = target.reshape((n, *spatial))
        n_labels = 2 if c == 1 else c
        if debug_checks_enabled():
            _require_finite(labels, name)
            if labels.is_floating_point() and not bool((labels == labels.round()).all()):
                raise ArgumentError(f"{name} holds labels, which must be whole numbers")
            lo, hi = _value_range(labels)
            if lo < 0 or hi >= n_labels:
                raise _label_range_error(name, labels, n_labels, c)
        if c == 1:
            return labels.to(x.dtype).unsqueeze(1)
        try:  # on the CPU one_hot checks the range itself (no sync there); on a GPU it asserts
            one_hot = F.one_hot(labels.long(), c)
        except RuntimeError as exc:
            raise _label_range_error(name, labels, n_labels, c) from exc
        return one_hot.movedim(-1, 1).to(x.dtype)

    raise ArgumentError(
        f"{name} shape {shape} does not fit input shape {tuple(x.shape)}: expected labels of shape "
        f"{(n, *spatial)} or one-hot targets of shape {tuple(x.shape)}"
    )


def _prepare(
    input: object,
    target: object,
    activation: str,
    *,
    min_ndim: int = 3,
    activations: Sequence[str] = _ACTIVATIONS,
) -> tuple[Tensor, Tensor]:
    """Checked ``(input, one-hot target)`` pair, both float and of the same shape."""
    activation = check_choice("activation", activation, activations)
    x = _check_input(input, min_ndim=min_ndim)
    if activation == "softmax" and x.shape[1] < 2:
        raise ArgumentError(
            f"activation='softmax' needs at least 2 channels, input has {x.shape[1]}; "
            "use activation='sigmoid' for a single-channel binary output"
        )
    if activation == "none":
        _check_probabilities(x)
    return x, _as_target(target, x)


def _probabilities(x: Tensor, activation: str) -> Tensor:
    if activation == "softmax":
        return torch.softmax(x, dim=1)
    if activation == "sigmoid":
        return torch.sigmoid(x)
    return x


def _log_probabilities(x: Tensor, activation: str) -> Tensor:
    """``log p`` for exclusive classes: log-softmax of logits, or the log of given probabilities
    clipped to ``[1e-7, 1 − 1e-7]`` as Keras does."""
    if activation == "softmax":
        return torch.log_softmax(x, dim=1)
    return torch.log(x.clamp(_KERAS_EPSILON, 1.0 - _KERAS_EPSILON))


def _drop_background(p: Tensor, y: Tensor, include_background: bool) -> tuple[Tensor, Tensor]:
    if include_background:
        return p, y
    if p.shape[1] < 2:
        raise ArgumentError("include_background=False needs at least 2 channels (channel 0 is the background)")
    return p[:, 1:], y[:, 1:]


def _weight_values(name: str, weights: object) -> tuple[float, ...]:
    """Weights given as Python numbers (or a tensor, read once): a non-empty tuple of floats >= 0."""
    if isinstance(weights, Tensor) and weights.ndim != 1:
        raise ArgumentError(f"{name} must be a sequence of numbers, got a tensor of shape {tuple(weights.shape)}")
    try:
        values = weights.tolist() if isinstance(weights, Tensor) else list(weights)  # type: ignore[call-overload]
    except TypeError as exc:
        raise ArgumentError(f"{name} must be a sequence of numbers, got {weights!r}") from exc
    if not values:
        raise ArgumentError(f"{name} must be a non-empty sequence of finite numbers >= 0, got {weights!r}")
    return tuple(_nonnegative(f"{name}[{i}]", v) for i, v in enumerate(values))


def _class_weights(name: str, weights: Weights | None, n_classes: int, like: Tensor) -> Tensor | None:
    """Per-class weights as a tensor on ``like``'s device (``None`` stays ``None``).

    Numbers are checked in Python (no device sync); a tensor's values only in debug mode."""
    if weights is None:
        return None
    if isinstance(weights, Tensor):
        w = weights.to(dtype=like.dtype, device=like.device)
    else:
        w = torch.tensor(_weight_values(name, weights), dtype=like.dtype, device=like.device)
    if w.ndim != 1 or w.numel() != n_classes:
        raise ArgumentError(f"{name} must hold one weight per class ({n_classes}), got shape {tuple(w.shape)}")
    if isinstance(weights, Tensor) and debug_checks_enabled() and not bool((torch.isfinite(w) & (w >= 0)).all()):
        raise ArgumentError(f"{name} must be finite and >= 0, got {w.tolist()}")
    return w


def _channel_view(w: Tensor, ndim: int) -> Tensor:
    """Reshape per-class weights ``(C,)`` to broadcast against ``(N, C, *spatial)``."""
    return w.view(1, -1, *([1] * (ndim - 2)))


def _sum_axes(x: Tensor, batch: bool) -> list[int]:
    axes = list(range(2, x.ndim))
    return [0, *axes] if batch else axes


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _check_smooth(smooth_nr: float, smooth_dr: float) -> tuple[float, float]:
    return _nonnegative("smooth_nr", smooth_nr), _nonnegative("smooth_dr", smooth_dr)


# --------------------------------------------------------------------------------------------
# Cross-entropy
# --------------------------------------------------------------------------------------------
def _cross_entropy(
    x: Tensor, y: Tensor, activation: str, w: Tensor | None, m: Tensor | None, reduction: str
) -> Tensor:
    """Cross-entropy of checked tensors (see :func:`cross_entropy`)."""
    if activation == "sigmoid":
        loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")  # (N, C, *spatial)
        weight = None if w is None else _channel_view(w, x.ndim)
        if m is not None:
            weight = m.unsqueeze(1) if weight is None else weight * m.unsqueeze(1)
        if weight is not None:
            weight = weight.expand_as(loss)
            loss = loss * weight
    else:
        yw = y if w is None else y * _channel_view(w, x.ndim)
        loss = -(yw * _log_probabilities(x, activation)).sum(dim=1)  # (N, *spatial)
        weight = None if w is None else yw.sum(dim=1)  # the weight of every voxel's true class
        if m is not None:
            loss = loss * m
            weight = m if weight is None else weight * m
    if reduction == "mean" and weight is not None:
        return loss.sum() / weight.sum().clamp_min(torch.finfo(loss.dtype).tiny)
    return _reduce(loss, reduction)


def cross_entropy(
    input: Tensor,
    target: Tensor,
    *,
    activation: Activation = "softmax",
    class_weights: Weights | None = None,
    weight_map: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Pixel-wise cross-entropy, optionally class-weighted and/or weighted per voxel.

    With a softmax (exclusive classes), for voxel ``i`` with one-hot target ``y_i``, class
    weights ``w_c`` and a voxel weight map ``m_i`` (both default to 1)::

        l_i = −m_i Σ_c w_c y_ic log p_ic
        CE  = Σ_i l_i / Σ_i m_i Σ_c w_c y_ic          (reduction="mean": a weighted mean)

    With a sigmoid (each channel its own binary problem; ``C = 1`` is plain binary CE) the terms
    are per voxel *and* channel::

        l_ic = −m_i w_c [y_ic log p_ic + (1 − y_ic) log(1 − p_ic)],   CE = Σ l_ic / Σ m_i w_c

    Class weights counter class imbalance (FCN, brain thesis L1801-1827); a weight map gives
    extra weight to chosen voxels, e.g. the U-Net border weights ``w(x)``. Without weights the
    mean is the plain average, identical to ``torch.nn.CrossEntropyLoss`` (softmax) and
    ``torch.nn.BCEWithLogitsLoss`` (sigmoid); with class weights the softmax version equals
    ``torch.nn.CrossEntropyLoss(weight=w)``, whose mean also divides by the summed weights.
    (``BCEWithLogitsLoss(weight=w)`` divides by the element count instead.)

    Args:
        input: logits ``(N, C, *spatial)``, or ``(N, C)`` for one label per sample; with
            ``activation="none"``, class probabilities.
        target: labels ``(N, *spatial)`` or one-hot/soft targets ``(N, C, *spatial)``.
        activation: ``"softmax"``, ``"sigmoid"`` or ``"none"`` (input holds probabilities,
            clipped to [1e-7, 1 − 1e-7] before the log, as Keras does).
        class_weights: ``C`` non-negative weights, or ``None``.
        weight_map: non-negative per-voxel weights ``(N, *spatial)``, or ``None``.
        reduction: ``"mean"``, ``"sum"``, or ``"none"`` (shape ``(N, *spatial)`` with a softmax,
            ``(N, C, *spatial)`` with a sigmoid).
    """
    reduction = check_choice("reduction", reduction, _REDUCTIONS)
    x, y = _prepare(input, target, activation, min_ndim=2)
    w = _class_weights("class_weights", class_weights, x.shape[1], x)
    m = None
    if weight_map is not None:
        if not isinstance(weight_map, Tensor) or tuple(weight_map.shape) != (x.shape[0], *x.shape[2:]):
            shape = tuple(weight_map.shape) if isinstance(weight_map, Tensor) else type(weight_map).__name__
            raise ArgumentError(f"weight_map must be a tensor of shape {(x.shape[0], *x.shape[2:])}, got {shape}")
        m = weight_map.to(device=x.device, dtype=x.dtype)
        if debug_checks_enabled() and (not bool(torch.isfinite(m).all()) or bool((m < 0).any())):
            raise ArgumentError("weight_map must be finite and >= 0")
    return _cross_entropy(x, y, activation, w, m, reduction)


# --------------------------------------------------------------------------------------------
# Overlap (Dice-type) losses
# --------------------------------------------------------------------------------------------
def _dice(
    p: Tensor, y: Tensor, *, squared: bool, smooth_nr: float, smooth_dr: float, batch: bool, reduction: str
) -> Tensor:
    """Soft Dice loss of probabilities ``p`` and targets ``y`` (see :func:`dice_loss`)."""
    axes = _sum_axes(p, batch)
    intersection = (p * y).sum(dim=axes)
    if squared:
        denominator = (p * p).sum(dim=axes) + (y * y).sum(dim=axes)
    else:
        denominator = p.sum(dim=axes) + y.sum(dim=axes)
    loss = 1.0 - (2.0 * intersection + smooth_nr) / (denominator + smooth_dr)
    return _reduce(loss, reduction)


def dice_loss(
    input: Tensor,
    target: Tensor,
    *,
    activation: Activation = "softmax",
    include_background: bool = True,
    squared: bool = False,
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    batch: bool = False,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Soft Dice loss, one value per sample and class, then reduced.

    For sample ``n`` and class ``c``, summing over the voxels ``i``::

        D_nc = (2 Σ_i p_ic y_ic + s_nr) / (Σ_i p_ic + Σ_i y_ic + s_dr)
        loss_nc = 1 − D_nc

    ``squared=True`` uses the V-Net form of Milletari et al. (2016), ``Σ p² + Σ y²`` in the
    denominator. The smooth terms keep a class that is absent from both prediction and target at
    ``D = 1`` instead of 0/0. Binary Dice: ``activation="sigmoid"`` with one channel, or a
    two-channel softmax with ``include_background=False``. Equal to ``monai.losses.DiceLoss``
    with the same settings.

    Args:
        input: logits ``(N, C, *spatial)`` (probabilities with ``activation="none"``).
        target: labels ``(N, *spatial)`` or one-hot/soft targets of the shape of ``input``.
        activation: ``"softmax"``, ``"sigmoid"`` or ``"none"``.
        include_background: ``False`` leaves channel 0 out (after the softmax).
        squared: square the terms of the denominator (V-Net).
        smooth_nr, smooth_dr: added to the numerator and the denominator.
        batch: sum over the batch as well, giving one Dice per class for the whole batch.
        reduction: ``"mean"``, ``"sum"``, or ``"none"`` (shape ``(N, C)``, or ``(C,)`` with
            ``batch=True``; ``C`` without the background if it is excluded).
    """
    reduction = check_choice("reduction", reduction, _REDUCTIONS)
    smooth_nr, smooth_dr = _check_smooth(smooth_nr, smooth_dr)
    check_bool("include_background", include_background)
    x, y = _prepare(input, target, activation)
    p, y = _drop_background(_probabilities(x, activation), y, include_background)
    return _dice(p, y, squared=check_bool("squared", squared), smooth_nr=smooth_nr, smooth_dr=smooth_dr,
                 batch=check_bool("batch", batch), reduction=reduction)


_GDL_WEIGHT_TYPES = ("square", "simple", "uniform")


def generalized_dice_loss(
    input: Tensor,
    target: Tensor,
    *,
    weights: Literal["square", "simple", "uniform"] | Weights = "square",
    activation: Activation = "softmax",
    include_background: bool = True,
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    batch: bool = False,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Generalised Dice loss (Sudre et al. 2017): one overlap ratio pooled over the classes.

    For sample ``n``, with ``r_c = Σ_i y_ic`` the size of class ``c`` in the target::

        GDL_n = 1 − (2 Σ_c w_c Σ_i p_ic y_ic + s_nr) / (Σ_c w_c Σ_i (p_ic + y_ic) + s_dr)

    ``weights`` chooses ``w_c``:

    * ``"square"`` (Sudre's choice): ``w_c = 1 / r_c²``, so every class counts about equally
      whatever its size; ``"simple"``: ``1 / r_c``; ``"uniform"``: 1. A class absent from the
      target (``r_c = 0``) gets the largest finite weight of the sample (MONAI's rule). These
      three equal ``monai.losses.GeneralizedDiceLoss(w_type=...)``.
    * a sequence of fixed weights, one per class kept: the cardiac thesis's chapter-5 variant,
      ``weights=SEGMENTATION_CLASS_WEIGHTS`` = (0.1, 0.3, 0.3, 0.3) for background, LV cavity,
      LV myocardium, RV cavity (L3813-3825). The thesis prints no formula for it; it says it
      used the GDL with "specific values" for the weights, so we keep Sudre's pooled ratio and
      replace ``w_c`` ([choice]; the other reading, a weighted mean of per-class Dice, is
      :func:`weighted_dice_loss`, the thesis's Eq 7.2). The fixed weights are *not* squared or
      normalised by class size. Note that in this pooled form a weight is not a share of the
      loss: the class's size multiplies it, so with 0.1/0.3/0.3/0.3 on a 160 mm cardiac crop the
      background still carries about 63 % of the loss (chapter *Losses and metrics*, section 3);
      only the per-class form (:func:`weighted_dice_loss`) gives each tissue its weight's share.

    Args:
        input: logits ``(N, C, *spatial)`` (probabilities with ``activation="none"``).
        target: labels ``(N, *spatial)`` or one-hot/soft targets of the shape of ``input``.
        weights: ``"square"``, ``"simple"``, ``"uniform"`` or fixed per-class weights.
        activation: ``"softmax"``, ``"sigmoid"`` or ``"none"``.
        include_background: ``False`` leaves channel 0 out (after the softmax).
        smooth_nr, smooth_dr: added to the numerator and the denominator.
        batch: pool the sums over the whole batch (one loss for the batch).
        reduction: ``"mean"``, ``"sum"``, or ``"none"`` (shape ``(N,)``; a 0-d tensor with
            ``batch=True``).
    """
    reduction = check_choice("reduction", reduction, _REDUCTIONS)
    smooth_nr, smooth_dr = _check_smooth(smooth_nr, smooth_dr)
    check_bool("include_background", include_background)
    batch = check_bool("batch", batch)
    if isinstance(weights, str):
        check_choice("weights", weights, _GDL_WEIGHT_TYPES)
    x, y = _prepare(input, target, activation)
    p, y = _drop_background(_probabilities(x, activation), y, include_background)
    axes = _sum_axes(p, batch)
    intersection = (p * y).sum(dim=axes)  # (N, C) or (C,)
    denominator = p.sum(dim=axes) + y.sum(dim=axes)
    if isinstance(weights, str):
        size = y.sum(dim=axes)
        if weights == "square":
            w = torch.reciprocal(size * size)
        elif weights == "simple":
            w = torch.reciprocal(size)
        else:
            w = torch.ones_like(size)
        absent = torch.isinf(w)
        w = torch.where(absent, torch.zeros_like(w), w)
        largest = w.max() if batch else w.max(dim=1, keepdim=True).values
        w = torch.where(absent, largest.expand_as(w), w)
    else:
        w = _class_weights("weights", weights, p.shape[1], p)
    numerator = 2.0 * (w * intersection).sum(dim=-1) + smooth_nr
    loss = 1.0 - numerator / ((w * denominator).sum(dim=-1) + smooth_dr)
    return _reduce(loss, reduction)


def weighted_dice_loss(
    input: Tensor,
    target: Tensor,
    class_weights: Weights = FRAME_CLASS_WEIGHTS,
    *,
    activation: Activation = "softmax",
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    batch: bool = False,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Weighted Dice loss of the cardiac thesis, Eq 7.2: a weighted sum of per-class Dice.

    For one sequence of ``NF`` frames and ``NC`` classes (L5902-5915)::

        WDL = 1 − 2 Σ_{c=1}^{NC} w_c (Σ_{i=1}^{NF} y_ic p_ic) / (Σ_{i=1}^{NF} (y_ic + p_ic))

    computed here as ``1 − Σ_c w_c (2 Σ_i y_ic p_ic + s_nr) / (Σ_i (y_ic + p_ic) + s_dr)``; the
    smooth terms are ours (``smooth_nr=smooth_dr=0`` is the printed formula). The thesis uses it
    for ES/ED detection with ``w = (0.45, 0.45, 0.1)`` for (ES, ED, background)
    (:data:`FRAME_CLASS_WEIGHTS`, the default), input ``(N, 3, T)``. With weights that sum to 1
    the loss lies in [0, 1] and is 0 for a perfect prediction. It works for any number of
    spatial axes (the sums then run over all voxels). The weights cover every channel, the
    background included (give a class weight 0 to leave it out).

    Unlike :func:`generalized_dice_loss` with fixed weights, which pools intersections and sums
    over the classes before dividing, this divides per class first: a small class's Dice counts
    with its full weight whatever its size.

    Args:
        input: logits ``(N, C, *spatial)`` (probabilities with ``activation="none"``).
        target: labels ``(N, *spatial)`` or one-hot/soft targets of the shape of ``input``.
        class_weights: ``C`` non-negative weights.
        activation: ``"softmax"``, ``"sigmoid"`` or ``"none"``.
        smooth_nr, smooth_dr: added to the numerator and the denominator of every class.
        batch: pool the sums over the whole batch ([choice] default ``False``: Eq 7.2 is one
            value per sequence, then averaged over the batch).
        reduction: ``"mean"``, ``"sum"``, or ``"none"`` (shape ``(N,)``; 0-d with ``batch=True``).
    """
    reduction = check_choice("reduction", reduction, _REDUCTIONS)
    smooth_nr, smooth_dr = _check_smooth(smooth_nr, smooth_dr)
    batch = check_bool("batch", batch)
    x, y = _prepare(input, target, activation)
    w = _class_weights("class_weights", class_weights, x.shape[1], x)
    p = _probabilities(x, activation)
    per_class = 1.0 - _dice(p, y, squared=False, smooth_nr=smooth_nr, smooth_dr=smooth_dr, batch=batch,
                            reduction="none")  # Dice, (N, C) or (C,)
    loss = 1.0 - (w * per_class).sum(dim=-1)
    return _reduce(loss, reduction)


def tversky_loss(
    input: Tensor,
    target: Tensor,
    *,
    alpha: float = 0.5,
    beta: float = 0.5,
    activation: Activation = "softmax",
    include_background: bool = True,
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    batch: bool = False,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Tversky loss (Salehi et al. 2017): a Dice loss that weighs false positives and negatives.

    For sample ``n`` and class ``c``, with soft counts over the voxels ``i``::

        TP = Σ_i p_i y_i,   FP = Σ_i p_i (1 − y_i),   FN = Σ_i (1 − p_i) y_i
        loss_nc = 1 − (TP + s_nr) / (TP + α FP + β FN + s_dr)

    ``α = β = 0.5`` is the Dice loss; ``β > α`` punishes missed voxels more (higher recall),
    useful for small structures. Equal to ``monai.losses.TverskyLoss`` with the same settings.

    Args:
        input: logits ``(N, C, *spatial)`` (probabilities with ``activation="none"``).
        target: labels ``(N, *spatial)`` or one-hot/soft targets of the shape of ``input``.
        alpha: weight of the false positives (>= 0).
        beta: weight of the false negatives (>= 0).
        activation, include_background, smooth_nr, smooth_dr, batch: as in :func:`dice_loss`.
        reduction: ``"mean"``, ``"sum"``, or ``"none"`` (shape ``(N, C)``; ``(C,)`` with
            ``batch=True``).
    """
    reduction = check_choice("reduction", reduction, _REDUCTIONS)
    alpha, beta = _nonnegative("alpha", alpha), _nonnegative("beta", beta)
    smooth_nr, smooth_dr = _check_smooth(smooth_nr, smooth_dr)
    check_bool("include_background", include_background)
    x, y = _prepare(input, target, activation)
    p, y = _drop_background(_probabilities(x, activation), y, include_background)
    axes = _sum_axes(p, check_bool("batch", batch))
    tp = (p * y).sum(dim=axes)
    fp = (p * (1.0 - y)).sum(dim=axes)
    fn = ((1.0 - p) * y).sum(dim=axes)
    loss = 1.0 - (tp + smooth_nr) / (tp + alpha * fp + beta * fn + smooth_dr)
    return _reduce(loss, reduction)


# --------------------------------------------------------------------------------------------
# Focal loss
# --------------------------------------------------------------------------------------------
def focal_loss(
    input: Tensor,
    target: Tensor,
    *,
    gamma: float = 2.0,
    alpha: float | Weights | None = None,
    activation: Literal["softmax", "sigmoid"] = "softmax",
    include_background: bool = True,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Focal loss (Lin et al. 2017): cross-entropy that fades out the easy, confident voxels.

    With a softmax, for voxel ``i`` with (one-hot) target ``y_i``::

        FL_i = −Σ_c α_c (1 − p_ic)^γ y_ic log p_ic

    and the mean is over voxels; ``α`` is ``None`` (all 1) or a sequence of per-class weights
    (one per class kept: without the background if ``include_background=False``).
    ``γ = 0`` and ``α = None`` give exactly :func:`cross_entropy`.

    With a sigmoid (binary, or multi-label per channel), for every voxel and channel, with
    ``p_t = p`` where ``y = 1`` and ``1 − p`` where ``y = 0``::

        FL_ic = −α_t (1 − p_t)^γ log p_t,   α_t = α where y = 1, 1 − α where y = 0

    averaged over voxels and channels; ``α`` is ``None`` (no weighting) or one number in
    [0, 1] (Lin et al. use 0.25). This equals ``monai.losses.FocalLoss(use_softmax=False)``;
    with a softmax MONAI's value is ours divided by the number of classes kept (it averages
    over the class axis too).

    Args:
        input: logits ``(N, C, *spatial)``.
        target: labels ``(N, *spatial)`` or one-hot targets of the shape of ``input``.
        gamma: focusing exponent ``γ >= 0`` (2 in the paper).
        alpha: class balance, see above.
        activation: ``"softmax"`` or ``"sigmoid"``.
        include_background: ``False`` leaves channel 0 out (after the softmax).
        reduction: ``"mean"``, ``"sum"``, or ``"none"`` (shape ``(N, *spatial)`` with a softmax,
            ``(N, C, *spatial)`` with a sigmoid, ``C`` without the background if excluded).
    """
    reduction = check_choice("reduction", reduction, _REDUCTIONS)
    gamma = _nonnegative("gamma", gamma)
    check_bool("include_background", include_background)
    x, y = _prepare(input, target, activation, min_ndim=2, activations=("softmax", "sigmoid"))
    n_kept = x.shape[1] - (0 if include_background else 1)
    if activation == "softmax":
        if alpha is not None and isinstance(alpha, numbers.Real):
            raise ArgumentError(
                "alpha must be a sequence of per-class weights with activation='softmax' "
                f"(a single number is only meaningful with a sigmoid), got {alpha!r}"
            )
        log_p = torch.log_softmax(x, dim=1)
        log_p, y = _drop_background(log_p, y, include_background)
        # 1 − p as −expm1(log p) (accurate near p = 1), kept above 0 so that (1 − p)^γ has a
        # finite gradient for γ < 1 when a logit saturates
        one_minus_p = (-torch.expm1(log_p)).clamp_min(torch.finfo(log_p.dtype).tiny)
        loss = -(one_minus_p.pow(gamma) * y * log_p)
        w = _class_weights("alpha", alpha, n_kept, x)  # type: ignore[arg-type]
        if w is not None:
            loss = loss * _channel_view(w, loss.ndim)
        loss = loss.sum(dim=1)  # (N, *spatial)
    else:
        if alpha is not None:
            if not isinstance(alpha, numbers.Real):
                raise ArgumentError(f"alpha must be one number in [0, 1] with activation='sigmoid', got {alpha!r}")
            alpha = _nonnegative("alpha", alpha, 1.0)
        x, y = _drop_background(x, y, include_background)
        bce = F.binary_cross_entropy_with_logits(x, y, reduction="none")  # −log p_t
        # (1 − p_t)^γ = exp(γ · log σ(−x·(2y − 1))): the stable form MONAI also uses
        loss = torch.exp(gamma * F.logsigmoid(-x * (2.0 * y - 1.0))) * bce
        if alpha is not None:
            loss = loss * (alpha * y + (1.0 - alpha) * (1.0 - y))
    return _reduce(loss, reduction)


# --------------------------------------------------------------------------------------------
# Dice + cross-entropy
# --------------------------------------------------------------------------------------------
def dice_ce_loss(
    input: Tensor,
    target: Tensor,
    *,
    activation: Literal["softmax", "sigmoid"] = "softmax",
    lambda_dice: float = 1.0,
    lambda_ce: float = 1.0,
    class_weights: Weights | None = None,
    include_background: bool = True,
    squared: bool = False,
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    batch: bool = False,
    reduction: Literal["mean", "sum"] = "mean",
) -> Tensor:
    r"""Dice loss plus cross-entropy: ``λ_Dice · Dice + λ_CE · CE``.

    With ``activation="sigmoid"`` this is the popular **BCE + Dice** loss (the CE term is the
    per-channel binary cross-entropy); with a softmax, Dice + categorical CE as in nnU-Net.
    The Dice term is :func:`dice_loss` (``include_background``, ``squared``, smooth terms and
    ``batch`` apply to it only); the CE term is :func:`cross_entropy` over all channels, with
    ``class_weights`` if given. Both are reduced with ``reduction`` and then added. Equal to
    ``monai.losses.DiceCELoss`` without weights (for a sigmoid: with one channel; MONAI switches
    to softmax CE when a sigmoid output has several channels, we keep BCE).

    Args:
        input: logits ``(N, C, *spatial)``.
        target: labels ``(N, *spatial)`` or one-hot/soft targets of the shape of ``input``.
        activation: ``"softmax"`` or ``"sigmoid"``.
        lambda_dice, lambda_ce: the weights of the two terms (>= 0).
        class_weights: per-class weights of the CE term, or ``None``.
        include_background, squared, smooth_nr, smooth_dr, batch: of the Dice term.
        reduction: ``"mean"`` or ``"sum"``.
    """
    reduction = check_choice("reduction", reduction, ("mean", "sum"))
    lambda_dice, lambda_ce = _nonnegative("lambda_dice", lambda_dice), _nonnegative("lambda_ce", lambda_ce)
    smooth_nr, smooth_dr = _check_smooth(smooth_nr, smooth_dr)
    check_bool("include_background", include_background)
    x, y = _prepare(input, target, activation, activations=("softmax", "sigmoid"))
    w = _class_weights("class_weights", class_weights, x.shape[1], x)
    ce = _cross_entropy(x, y, activation, w, None, reduction)
    p, yd = _drop_background(_probabilities(x, activation), y, include_background)
    dice = _dice(p, yd, squared=check_bool("squared", squared), smooth_nr=smooth_nr, smooth_dr=smooth_dr,
                 batch=check_bool("batch", batch), reduction=reduction)
    return lambda_dice * dice + lambda_ce * ce


# --------------------------------------------------------------------------------------------
# The cardiac thesis's frame-detection and regression losses
# --------------------------------------------------------------------------------------------
def frame_weighted_cross_entropy(
    input: Tensor,
    target: Tensor,
    *,
    event_weight: float = EVENT_FRAME_WEIGHT,
    background_index: int = 2,
    activation: Literal["softmax", "none"] = "softmax",
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Per-frame weighted cross-entropy of the cardiac thesis, Eq 7.1 (ES/ED frame detection).

    For one sequence of ``NF`` frames, ``NC = 3`` classes (ES, ED, background), one-hot target
    ``y_ic`` and predicted probability ``p_ic`` (L5835-5862)::

        WCE = − Σ_{i=1}^{NF} w_i Σ_{c=1}^{NC} y_ic log p_ic,   w_i = 100 for the ES and ED frames, 1 otherwise

    A sum over the frames, not a mean, as printed. The frame weight is read from the target:
    ``w_i = 1 + (event_weight − 1)(1 − y_i,background)`` (exactly 100 or 1 for one-hot targets).
    The "extremely big" weight 100 balances the 2 event frames against the ~33 background frames
    of a 35-frame cine.

    Args:
        input: logits ``(N, C, T)`` with the frames on the last axis (the thesis's class order
            :data:`FRAME_CLASSES` = ES, ED, background); with ``activation="none"``, the
            per-frame probabilities of a model that ends with a softmax (clipped to
            [1e-7, 1 − 1e-7] before the log, as Keras does). Extra trailing axes are summed over
            like frames.
        target: frame labels ``(N, T)`` or one-hot targets ``(N, C, T)``.
        event_weight: the weight of the ES and ED frames (100 in the thesis).
        background_index: the channel of the background class (2 in the thesis's order).
        activation: ``"softmax"`` or ``"none"``.
        reduction: over the batch: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(N,)``).
    """
    reduction = check_choice("reduction", reduction, _REDUCTIONS)
    event_weight = _nonnegative("event_weight", event_weight)
    x, y = _prepare(input, target, activation, activations=("softmax", "none"))
    n_classes = x.shape[1]
    if isinstance(background_index, bool) or not isinstance(background_index, numbers.Integral) or not (
        0 <= background_index < n_classes
    ):
        raise ArgumentError(f"background_index must be an integer in 0..{n_classes - 1}, got {background_index!r}")
    per_frame = -(y * _log_probabilities(x, activation)).sum(dim=1)  # (N, T, ...)
    frame_weight = 1.0 + (event_weight - 1.0) * (1.0 - y[:, int(background_index)])
    loss = (frame_weight * per_frame).flatten(1).sum(dim=1)  # (N,)
    return _reduce(loss, reduction)


def frame_cross_entropy(
    input: Tensor,
    target: Tensor,
    *,
    activation: Literal["softmax", "none"] = "softmax",
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Cross-entropy *across the frames*: the loss of the thesis's future-work head (L6842-6849).

    Each event channel ``e`` (ES, ED) of ``input`` is one distribution over the ``T`` frames
    (a softmax along time, :class:`~cmrlab.nn.models.frame_detector.FrameDetector` with
    ``head="frames"``), and the loss of a sequence is ``− Σ_e log p_e(t_e)``, with ``t_e`` the true
    frame of the event: one ES and one ED frame per sequence by construction.

    Args:
        input: ``(N, E, T)`` scores, logits (``activation="softmax"``, taken along T) or
            probabilities that sum to 1 along T (``"none"``; clipped to [1e-7, 1] before the log).
        target: frame indices ``(N, E)``, or one-hot frame labels ``(N, C, T)`` with the events on
            the first ``E`` channels (the thesis's order ES, ED, background); each event channel
            must mark exactly one frame.
        reduction: over the batch: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(N,)``).
    """
    reduction = check_choice("reduction", reduction, _REDUCTIONS)
    activation = check_choice("activation", activation, ("softmax", "none"))
    if not isinstance(input, Tensor) or not isinstance(target, Tensor):
        raise ArgumentError("frame_cross_entropy takes tensors: input (N, E, T) and target (N, E) or (N, C, T)")
    if input.ndim != 3 or not input.is_floating_point():
        raise ArgumentError(f"input must be floating-point scores (N, E, T), got {tuple(input.shape)} {input.dtype}")
    n, events, frames = input.shape
    if target.ndim == 3:
        if target.shape[0] != n or target.shape[2] != frames or target.shape[1] < events:
            raise ArgumentError(f"one-hot target must be (N, C >= {events}, T) = ({n}, ≥{events}, {frames}), "
                                f"got {tuple(target.shape)}")
        marked = target[:, :events]
        if debug_checks_enabled() and not bool(((marked == 0) | (marked == 1)).all() and (marked.sum(dim=2) == 1).all()):
            raise ArgumentError("target: each event channel must mark exactly one frame with 1 (one-hot over frames)")
        target = marked.argmax(dim=2)
    elif target.shape != (n, events) or target.is_floating_point():
        raise ArgumentError(f"target must be frame indices (N, E) = ({n}, {events}) or one-hot (N, C, T), "
                            f"got {tuple(target.shape)} {target.dtype}")
    elif debug_checks_enabled() and not bool(((target >= 0) & (target < frames)).all()):
        raise ArgumentError(f"target frame indices must lie in 0..{frames - 1}")
    if activation == "softmax":
        log_p = input.log_softmax(dim=2)
    else:
        log_p = input.clamp(1e-7, 1.0).log()
    picked = log_p.gather(2, target.long().unsqueeze(2)).squeeze(2)          # (N, E)
    return _reduce(-picked.sum(dim=1), reduction)


#: Ronneberger et al. (2015)'s constants of the U-Net border weight map: w0 = 10, σ ≈ 5 pixels.
BORDER_W0: float = 10.0
BORDER_SIGMA: float = 5.0


def border_weight_map(
    labels: object,
    *,
    w0: float = BORDER_W0,
    sigma: float = BORDER_SIGMA,
    class_weights: str | Sequence[float] | None = None,
    background_only: bool = True,
    objects: Sequence[Sequence[int]] | None = None,
) -> np.ndarray:
    r"""The U-Net weight map (Ronneberger et al. 2015, ``ronneberger2015unet``) of one label map.

    ::

        w(x) = w_c(x) + w0 · exp(−(d1(x) + d2(x))² / (2σ²))

    ``d1`` and ``d2`` are the distances (pixels, Euclidean) from ``x`` to the nearest and the
    second-nearest **object**; the objects are the connected components of every non-zero label
    (8-connected in 2D, 26-connected in 3D: pixels that touch at a corner are one object), so two
    touching structures of different labels are two objects. ``objects`` groups label values into
    one object, e.g. ``((1,), (2, 3))`` makes the LV myocardium (2) and the cavity it encloses (3)
    one object beside the RV (1), as the cells of the U-Net paper are one object each; without it a
    nested structure (a cavity inside its wall) is an object of its own and the border term rings
    every thin wall. ``w_c`` is
    the class-balancing term: 1 everywhere (``class_weights=None``), ``N / (C·n_c)`` for the
    label ``c`` at ``x`` (``"balanced"``, scikit-learn's rule: ``n_c`` pixels of label ``c``, C
    labels present, N pixels), or one given weight per label value ``0 … max``. The border term
    is added where the label is background (``background_only=True``: "the separating
    background labels between touching cells obtain a large weight", brain thesis L2396-2398), or
    everywhere (``False``, the formula as printed). With fewer than two objects there is no
    second border and the term is 0. Pass the result to :func:`cross_entropy` as ``weight_map``
    (``torch.from_numpy(w)[None]`` for a batch of one).

    Args:
        labels: integer label map, 2D (H, W) or 3D (D, H, W), values >= 0.
        w0: weight of the border term (>= 0).
        sigma: its width in pixels (> 0).
        class_weights: ``None``, ``"balanced"`` or a sequence with one weight per label value.
        background_only: add the border term on background pixels only.
        objects: groups of label values that form one object (default: every label on its own).

    Returns:
        float32 array of the shape of ``labels``.
    """
    from scipy import ndimage  # noqa: PLC0415 — the map is computed on the CPU, once per label map

    y = labels.detach().cpu().numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    if y.ndim not in (2, 3) or 0 in y.shape:
        raise ArgumentError(f"labels must be a non-empty 2D or 3D label map, got shape {y.shape}")
    if not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        raise ArgumentError(f"labels must hold integers, got dtype {y.dtype}")
    if y.min() < 0:
        raise ArgumentError(f"labels must be >= 0, got a minimum of {int(y.min())}")
    y = y.astype(np.int64)
    w0 = check_number("w0", w0, 0.0)
    sigma = check_number("sigma", sigma, 0.0, low_open=True)
    background_only = check_bool("background_only", background_only)

    present = np.unique(y)
    if class_weights is None:
        weights = np.ones(y.shape)
    elif isinstance(class_weights, str):
        check_choice("class_weights", class_weights, ("balanced",))
        counts = np.bincount(y.ravel())
        table = np.zeros(counts.size)
        table[present] = y.size / (present.size * counts[present])
        weights = table[y]
    else:
        values = _weight_values("class_weights", class_weights)
        if len(values) <= int(present.max()):
            raise ArgumentError(f"class_weights must hold one weight per label value 0 … {int(present.max())}, "
                                f"got {len(values)}")
        weights = np.asarray(values, dtype=np.float64)[y]

    if objects is None:
        groups = [(int(v),) for v in present[present > 0]]
    else:
        if isinstance(objects, (str, bytes)) or not isinstance(objects, Sequence):
            raise ArgumentError(f"objects must be a sequence of label groups, e.g. ((1,), (2, 3)), got {objects!r}")
        groups = [tuple(check_int(f"objects[{i}]", v, 1) for v in group) for i, group in enumerate(objects)]
        flat = [v for group in groups for v in group]
        if len(flat) != len(set(flat)):
            raise ArgumentError(f"objects must not list a label twice, got {objects!r}")
    distances = []
    connectivity = ndimage.generate_binary_structure(y.ndim, y.ndim)
    for group in groups:
        components, n = ndimage.label(np.isin(y, group), structure=connectivity)
        for k in range(1, n + 1):
            distances.append(ndimage.distance_transform_edt(components != k))
    if len(distances) >= 2:
        nearest_two = np.partition(np.stack(distances), 1, axis=0)[:2]
        border = w0 * np.exp(-((nearest_two[0] + nearest_two[1]) ** 2) / (2.0 * sigma**2))
        if background_only:
            border = np.where(y == 0, border, 0.0)
        weights = weights + border
    return weights.astype(np.float32)


def l1_activity(activations: Tensor) -> Tensor:
    r"""Keras's L1 activity term of a layer output: ``(1/N) Σ_n Σ_j |a_nj|``.

    The summed absolute activations of each sample, averaged over the batch — Keras (TF 2.x,
    ``Layer._handle_activity_regularization``) divides an activity regulariser by the batch size
    "to make activity regularization strength batch-agnostic". The
    factor (``10⁻³`` in Eq 6.1) is applied by the caller.

    Args:
        activations: ``(N, …)``, any number of axes after the batch.
    """
    a = _check_input(activations, min_ndim=1, name="activations")
    return a.abs().reshape(a.shape[0], -1).sum(dim=1).mean()


def _as_batch_vector(name: str, value: object, n: int | None = None) -> Tensor:
    t = _check_input(value, min_ndim=1, name=name)
    if t.ndim > 1 and t.numel() != t.shape[0]:
        raise ArgumentError(f"{name} must hold one value per sample, shape (N,) or (N, 1), got {tuple(t.shape)}")
    t = t.reshape(-1)
    if n is not None and t.numel() != n:
        raise ArgumentError(f"{name} has {t.numel()} values but the batch has {n} samples")
    return t


def volume_regression_loss(
    volume_pred: Tensor,
    volume_true: Tensor,
    pi_pred: Tensor,
    bottleneck: Tensor,
    cam: Tensor,
    *,
    pi_true: float = math.pi,
    pi_weight: float = 100.0,
    activity_weight: float = 1e-3,
    return_terms: bool = False,
) -> Tensor | dict[str, Tensor]:
    r"""Composite loss of the volume-regression U-Net, the cardiac thesis's Eq 6.1 (L4891-4930)::

        Loss = MAE(vol) + 100 · MAE(π) + 10⁻³ · [L1(bn) + L1(CAM)]

    * ``MAE(vol) = mean_n |V̂_n − V_n|``, volumes in ml;
    * ``MAE(π) = mean_n |π̂_n − π|``, with ``π̂`` the circularity estimate ``4A/d²`` of the
      scanning module averaged over the slices, and the target π itself;
    * ``L1(x)`` = :func:`l1_activity`, the summed absolute activations of the bottleneck output
      and of the sigmoid CAM per sample, averaged over the batch (Keras's activity regulariser).

    The scales differ by design: volume errors reach hundreds of ml, π errors are units, the L1
    sums are thousands or more (L4897-4912). Takes the tensors, not a model, so it works with any
    network that outputs them.

    Args:
        volume_pred, volume_true: ``(N,)`` or ``(N, 1)``, ml.
        pi_pred: ``(N,)`` or ``(N, 1)``, the π estimate of each sample.
        bottleneck: the bottleneck output ``(N, …)``.
        cam: the CAM output ``(N, …)``.
        pi_true: the π target (``math.pi``).
        pi_weight, activity_weight: the weights 100 and 10⁻³.
        return_terms: also return the unweighted parts: a dict with keys ``"loss"``,
            ``"mae_volume"``, ``"mae_pi"``, ``"l1_bottleneck"``, ``"l1_cam"``.
    """
    pi_true = _nonnegative("pi_true", pi_true)
    pi_weight = _nonnegative("pi_weight", pi_weight)
    activity_weight = _nonnegative("activity_weight", activity_weight)
    v_hat = _as_batch_vector("volume_pred", volume_pred)
    n = v_hat.numel()
    v = _as_batch_vector("volume_true", volume_true, n)
    if debug_checks_enabled() and bool((v < 0).any()):
        raise ArgumentError("volume_true must be >= 0 (volumes in ml)")
    pi_hat = _as_batch_vector("pi_pred", pi_pred, n)
    for name, t in (("bottleneck", bottleneck), ("cam", cam)):
        if isinstance(t, Tensor) and t.ndim >= 1 and t.shape[0] != n:
            raise ArgumentError(f"{name} has batch size {t.shape[0]} but volume_pred has {n} samples")
    if v.device != v_hat.device or pi_hat.device != v_hat.device:
        raise ArgumentError("volume_pred, volume_true and pi_pred must be on one device")
    terms = {
        "mae_volume": (v_hat - v).abs().mean(),
        "mae_pi": (pi_hat - pi_true).abs().mean(),
        "l1_bottleneck": l1_activity(bottleneck),
        "l1_cam": l1_activity(cam),
    }
    loss = terms["mae_volume"] + pi_weight * terms["mae_pi"] + activity_weight * (
        terms["l1_bottleneck"] + terms["l1_cam"]
    )
    if return_terms:
        return {"loss": loss, **terms}
    return loss


# --------------------------------------------------------------------------------------------
# Modules: store the settings, call the functions above
# --------------------------------------------------------------------------------------------
class _LossModule(nn.Module):
    """Common parts of the loss modules: settings checked once, kept as attributes, shown by ``repr``.

    A module stores its options (checked by the same rules as its function) as attributes and calls
    ``_function`` with them. Class weights are kept as a tuple of Python floats and turned into a
    tensor on the input's device and dtype at every call (exact in float64, and no float64 buffer
    that some devices, e.g. MPS, cannot hold).

    **The first call of each module runs the value checks** (see :func:`set_debug_checks`): one
    device sync, once, which catches a data set whose labels do not fit the model at the start of
    training; later calls check values only in debug mode.
    """

    _function: staticmethod
    _activations: tuple[str, ...] = _ACTIVATIONS
    _reductions: tuple[str, ...] = _REDUCTIONS

    def __init_subclass__(cls, function: Callable[..., object] | None = None, tensors: int = 2,
                          call_only: tuple[str, ...] = (), **kwargs: object) -> None:
        """``class DiceLoss(_LossModule, function=dice_loss)``: the constructor takes the
        function's options (its parameters after the first ``tensors``, less the ``call_only``
        ones that ``forward`` takes), with the function's defaults: one signature for both."""
        super().__init_subclass__(**kwargs)
        if function is None:
            return
        cls._function = staticmethod(function)
        options = [p for p in list(inspect.signature(function).parameters.values())[tensors:]
                   if p.name not in call_only]
        self_parameter = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
        signature = inspect.Signature([self_parameter, *options], return_annotation=None)

        def __init__(self: _LossModule, *args: object, **kwargs: object) -> None:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            _LossModule.__init__(self, {k: v for k, v in bound.arguments.items() if k != "self"})

        __init__.__signature__ = signature  # type: ignore[attr-defined]
        __init__.__qualname__ = f"{cls.__qualname__}.__init__"
        __init__.__doc__ = f"The options of :func:`{function.__name__}`, with its defaults, checked here once."
        cls.__init__ = __init__  # type: ignore[method-assign]

    def __init__(self, options: dict[str, object]) -> None:
        super().__init__()
        self._options = tuple(options)
        for name, value in options.items():
            setattr(self, name, self._check(name, value, options))
        self._first_call_checked = False
        self._setup()

    def _setup(self) -> None:
        """Called at the end of ``__init__`` (subclasses add their own state)."""

    def _check(self, name: str, value: object, options: dict[str, object]) -> object:
        """One option by the rule for its name (subclasses add their own names)."""
        if name == "activation":
            return check_choice(name, value, self._activations)
        if name == "reduction":
            return check_choice(name, value, self._reductions)
        if name in _FLAGS:
            return check_bool(name, value)
        if name == "class_weights":
            return None if value is None else _weight_values(name, value)
        return _nonnegative(name, value)

    def _call(self, *tensors: Tensor, **extra: object) -> Tensor:
        settings = {name: getattr(self, name) for name in self._options}
        if self._first_call_checked:
            return type(self)._function(*tensors, **settings, **extra)
        with _checked_call():
            result = type(self)._function(*tensors, **settings, **extra)
        self._first_call_checked = True
        return result

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return self._call(input, target)

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={getattr(self, name)!r}" for name in self._options)


class CrossEntropyLoss(_LossModule, function=cross_entropy, call_only=("weight_map",)):
    """Module form of :func:`cross_entropy` (class-weighted and/or weight-map CE).

    ``forward(input, target, weight_map=None)``.
    """

    def forward(self, input: Tensor, target: Tensor, weight_map: Tensor | None = None) -> Tensor:
        return self._call(input, target, weight_map=weight_map)


class DiceLoss(_LossModule, function=dice_loss):
    """Module form of :func:`dice_loss` (soft Dice; V-Net form with ``squared=True``)."""


class GeneralizedDiceLoss(_LossModule, function=generalized_dice_loss):
    """Module form of :func:`generalized_dice_loss` (Sudre; or fixed weights, e.g.
    ``GeneralizedDiceLoss(weights=SEGMENTATION_CLASS_WEIGHTS)`` for the thesis's chapter 5).

    ``weights`` is kept as given by name (``"square"``, ``"simple"``, ``"uniform"``) or as a tuple
    of floats; ``weight_type`` is the name, or ``"fixed"``."""

    def _check(self, name: str, value: object, options: dict[str, object]) -> object:
        if name == "weights":
            return check_choice(name, value, _GDL_WEIGHT_TYPES) if isinstance(value, str) else _weight_values(name, value)
        return super()._check(name, value, options)

    @property
    def weight_type(self) -> str:
        return self.weights if isinstance(self.weights, str) else "fixed"


class WeightedDiceLoss(_LossModule, function=weighted_dice_loss):
    """Module form of :func:`weighted_dice_loss`, the thesis's Eq 7.2 (default weights
    :data:`FRAME_CLASS_WEIGHTS` = 0.45 ES, 0.45 ED, 0.1 background)."""

    def _check(self, name: str, value: object, options: dict[str, object]) -> object:
        if name == "class_weights":  # required here
            return _weight_values(name, value)
        return super()._check(name, value, options)


class TverskyLoss(_LossModule, function=tversky_loss):
    """Module form of :func:`tversky_loss`."""


class FocalLoss(_LossModule, function=focal_loss):
    """Module form of :func:`focal_loss`."""

    _activations = ("softmax", "sigmoid")

    def _check(self, name: str, value: object, options: dict[str, object]) -> object:
        if name != "alpha":
            return super()._check(name, value, options)
        activation = check_choice("activation", options["activation"], self._activations)
        if value is None:
            return None
        if isinstance(value, numbers.Real):
            if activation == "softmax":
                raise ArgumentError(f"alpha must be a sequence of per-class weights with activation='softmax', got {value!r}")
            return _nonnegative("alpha", value, 1.0)
        if activation == "sigmoid":
            raise ArgumentError(f"alpha must be one number in [0, 1] with activation='sigmoid', got {value!r}")
        return _weight_values("alpha", value)


class DiceCELoss(_LossModule, function=dice_ce_loss):
    """Module form of :func:`dice_ce_loss`; ``DiceCELoss(activation="sigmoid")`` is BCE + Dice."""

    _activations = ("softmax", "sigmoid")
    _reductions = ("mean", "sum")


class FrameWeightedCrossEntropyLoss(_LossModule, function=frame_weighted_cross_entropy):
    """Module form of :func:`frame_weighted_cross_entropy`, the thesis's Eq 7.1 (weight 100 on
    the ES and ED frames)."""

    _activations = ("softmax", "none")

    def _check(self, name: str, value: object, options: dict[str, object]) -> object:
        if name == "background_index":
            return check_int(name, value, 0)
        return super()._check(name, value, options)


class FrameCrossEntropyLoss(_LossModule, function=frame_cross_entropy):
    """Module form of :func:`frame_cross_entropy` (softmax across the frames; the thesis's future work)."""

    _activations = ("softmax", "none")


class VolumeRegressionLoss(_LossModule, function=volume_regression_loss, tensors=5, call_only=("return_terms",)):
    """Module form of :func:`volume_regression_loss`, the thesis's Eq 6.1.

    ``forward(volume_pred, volume_true, pi_pred, bottleneck, cam)`` returns the scalar loss;
    after each call :attr:`last_terms` holds its detached parts (for logging).
    """

    def _setup(self) -> None:
        self.last_terms: dict[str, Tensor] = {}

    def forward(self, volume_pred: Tensor, volume_true: Tensor, pi_pred: Tensor, bottleneck: Tensor,
                cam: Tensor) -> Tensor:
        terms = self._call(volume_pred, volume_true, pi_pred, bottleneck, cam, return_terms=True)
        assert isinstance(terms, dict)
        self.last_terms = {k: v.detach() for k, v in terms.items()}
        return terms["loss"]
