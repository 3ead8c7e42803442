"""Regularisation the Keras way: L1/L2 weight penalties, the max-norm constraint, early stopping.

The chapter "Normalisation, activations and regularisation" builds and checks these ideas; the
training chapters and labs import them from here. The cardiac thesis trained in Keras
(TF 2.1), so the conventions follow Keras where Keras and PyTorch differ:

* **Weight penalty** (Keras ``kernel_regularizer=L1L2(l1, l2)``), added to the loss::

      penalty = l1 · Σ |w| + l2 · Σ w²                  (no factor 1/2 on the L2 term)

  over the kernels (weights) of the linear and convolutional layers, not their biases and not
  the scale/shift of normalisation layers. Its gradient for plain SGD is ``2·l2·w``, so
  ``torch.optim.SGD(weight_decay=2 * l2)`` gives the same updates as this L2 penalty. For Adam
  it does not: ``torch.optim.AdamW``'s decoupled decay is a different method.
* **Max-norm** (Keras ``kernel_constraint=MaxNorm(c)``), applied after each optimiser step::

      w_u ← w_u · min(‖w_u‖₂, c) / (ε + ‖w_u‖₂)          ε = 10⁻⁷

  for every output unit ``u`` (a row of a ``Linear`` weight, one filter of a convolution).
* **Early stopping** (Keras ``EarlyStopping``): stop when the monitored validation value has not
  improved by more than ``min_delta`` for ``patience`` epochs, and go back to the best weights.
* **DropBlock** (Ghiasi et al. 2018, ``ghiasi2018dropblock``; named by the cardiac thesis beside
  dropout and spatial dropout, L2598-2606): :class:`DropBlock2d` drops contiguous
  ``block_size × block_size`` squares of a feature map instead of single units.

The L1 *activity* penalty of Keras (summed absolute layer outputs, averaged over the batch) is
:func:`cmrlab.nn.losses.l1_activity`.
"""
from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from cmrlab.checks import check_int, check_number
from cmrlab.errors import ArgumentError

__all__ = ["DropBlock2d", "EarlyStopping", "dropblock_gamma", "max_norm_", "regularized_parameters", "weight_penalty"]

#: Layers whose ``weight`` is a kernel in the Keras sense (what weight penalties and max-norm act on).
_KERNEL_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d,
                  nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def _check_module(model: object) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise ArgumentError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return model


def regularized_parameters(model: nn.Module, *, include_bias: bool = False) -> list[Tensor]:
    """The kernels of every linear and (transposed) convolution layer of ``model``, in order.

    With ``include_bias=True`` their biases are included too. Normalisation layers (γ, β),
    embeddings and other parameters are never included.
    """
    model = _check_module(model)
    params: list[Tensor] = []
    for module in model.modules():
        if isinstance(module, _KERNEL_LAYERS):
            params.append(module.weight)
            if include_bias and module.bias is not None:
                params.append(module.bias)
    return params


def weight_penalty(model: nn.Module, l1: float = 0.0, l2: float = 0.0, *,
                   include_bias: bool = False) -> Tensor:
    """Keras's ``L1L2`` kernel regulariser summed over a model: ``l1·Σ|w| + l2·Σw²``.

    Add the result to the loss before ``backward()``. The sums run over the weights returned by
    :func:`regularized_parameters` (kernels of linear and convolution layers). Note the Keras
    convention: no ``1/2`` in front of the L2 term, so its gradient is ``2·l2·w``.

    Args:
        model: the network.
        l1, l2: the penalty factors (``>= 0``), e.g. Keras's default ``1e-2`` for ``l1()``/``l2()``.
        include_bias: also penalise biases (Keras's ``bias_regularizer``), default ``False``.

    Returns:
        A scalar tensor on the device and in the dtype of the first weight (``0`` if the model
        has no such layer, on the CPU).
    """
    l1 = check_number("l1", l1, 0.0)
    l2 = check_number("l2", l2, 0.0)
    params = regularized_parameters(model, include_bias=include_bias)
    if not params:
        return torch.zeros(())
    total = params[0].new_zeros(())
    for p in params:
        if l1:
            total = total + l1 * p.abs().sum()
        if l2:
            total = total + l2 * p.pow(2).sum()
    return total


@torch.no_grad()
def max_norm_(model: nn.Module, max_value: float = 3.0, *, eps: float = 1e-7) -> int:
    """Apply Keras's ``MaxNorm`` constraint in place to every kernel of ``model``.

    Each output unit's weight vector ``w_u`` (a row of a ``Linear`` weight, one filter of a
    convolution: all input channels and kernel taps) becomes
    ``w_u · min(‖w_u‖₂, c) / (ε + ‖w_u‖₂)``: units with a norm above ``c = max_value`` are
    scaled back to norm ``c``; the others are left as they are (up to the factor
    ``‖w‖/(ε + ‖w‖)``, as in Keras). Call it after every ``optimizer.step()``. For a 2D
    convolution this is Keras's ``MaxNorm(c, axis=[0, 1, 2])``; for a transposed
    convolution the output units are torch's weight dimension 1.

    Returns:
        The number of output units whose norm exceeded ``max_value`` and was clipped.
    """
    model = _check_module(model)
    max_value = check_number("max_value", max_value, 0.0)
    if max_value == 0:
        raise ArgumentError("max_value must be > 0, got 0")
    eps = check_number("eps", eps, 0.0)
    clipped = 0
    for module in model.modules():
        if not isinstance(module, _KERNEL_LAYERS):
            continue
        w = module.weight
        unit_dim = 1 if isinstance(module, _TRANSPOSED) else 0
        other = [d for d in range(w.ndim) if d != unit_dim]
        norms = w.pow(2).sum(dim=other, keepdim=True).sqrt()
        clipped += int((norms > max_value).sum())
        w.mul_(norms.clamp(max=max_value) / (eps + norms))
    return clipped


class EarlyStopping:
    """Stop training when a validation value stops improving; keep the best weights.

    Keras's ``EarlyStopping(monitor, min_delta, patience, mode, restore_best_weights)``. Call
    :meth:`step` once per epoch with the validation value (and the model, to remember its best
    weights); it returns ``True`` when training should stop: ``patience`` epochs in a row without
    an improvement. An improvement is ``value < best − min_delta`` (``mode="min"``, for losses)
    or ``value > best + min_delta`` (``mode="max"``, for Dice or accuracy). A NaN value is never
    an improvement, so a run of NaN losses stops after ``patience`` epochs.

    Example::

        stopper = EarlyStopping(patience=5)
        for epoch in range(1, max_epochs + 1):
            train_one_epoch(model)
            if stopper.step(validation_loss(model), model):
                break
        stopper.restore(model)          # weights of stopper.best_epoch

    Attributes:
        best_value: the best value so far (``inf`` / ``-inf`` before the first step).
        best_epoch: the epoch of ``best_value`` (``None`` before the first improvement).
        wait: epochs since the last improvement.
        stopped_epoch: the epoch at which :meth:`step` first returned ``True`` (else ``None``).
        best_state: a copy of the model's ``state_dict`` at ``best_epoch`` (when a model was given).
    """

    def __init__(self, patience: int = 10, *, min_delta: float = 0.0,
                 mode: Literal["min", "max"] = "min") -> None:
        self.patience = check_int("patience", patience, minimum=0)
        self.min_delta = check_number("min_delta", min_delta, 0.0)
        if mode not in ("min", "max"):
            raise ArgumentError(f"mode must be 'min' or 'max', got {mode!r}")
        self.mode = mode
        self.best_value = math.inf if mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.best_state: dict[str, Tensor] | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None
        self._epoch = 0

    def improved(self, value: float) -> bool:
        """Whether ``value`` would count as an improvement over :attr:`best_value`."""
        if math.isnan(value):
            return False
        if self.mode == "min":
            return value < self.best_value - self.min_delta
        return value > self.best_value + self.min_delta

    def step(self, value: float | Tensor, model: nn.Module | None = None,
             epoch: int | None = None) -> bool:
        """Record this epoch's validation ``value``; return ``True`` if training should stop.

        Args:
            value: the monitored number (a float or a one-element tensor).
            model: if given, its weights are copied when ``value`` is the best so far.
            epoch: the epoch number (default: the previous one + 1, starting at 1).
        """
        if isinstance(value, Tensor):
            value = value.detach()
        try:
            value = float(value)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ArgumentError(f"value must be a number, got {value!r}") from exc
        if model is not None:
            _check_module(model)
        self._epoch = self._epoch + 1 if epoch is None else check_int("epoch", epoch, minimum=0)
        if self.improved(value):
            self.best_value = value
            self.best_epoch = self._epoch
            self.wait = 0
            if model is not None:
                self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            self.wait += 1
        stop = self.wait > 0 and self.wait >= self.patience
        if stop and self.stopped_epoch is None:
            self.stopped_epoch = self._epoch
        return stop

    def restore(self, model: nn.Module) -> None:
        """Load the weights saved at :attr:`best_epoch` into ``model``."""
        model = _check_module(model)
        if self.best_state is None:
            raise ArgumentError("no weights saved yet: pass the model to step() to keep the best ones")
        model.load_state_dict(self.best_state)

    def __repr__(self) -> str:
        return (f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta}, "
                f"mode={self.mode!r}, best_epoch={self.best_epoch}, best_value={self.best_value:.4g})")


def dropblock_gamma(drop_prob: float, block_size: int, height: int, width: int) -> float:
    """The rate γ at which DropBlock seeds blocks (Ghiasi et al. 2018, Eq. 1, for an H×W map)::

        γ = p / b² · (H·W) / ((H − b + 1)(W − b + 1))

    Seeds are drawn only where a whole b×b block fits, (H − b + 1)(W − b + 1) places; each seed
    drops b² units, so without overlaps a fraction p of the map is dropped. Overlapping blocks
    make the real fraction a little lower (the tests compute it exactly).
    """
    p = check_number("drop_prob", drop_prob, 0.0, 1.0, high_open=True)
    b = check_int("block_size", block_size)
    h, w = check_int("height", height), check_int("width", width)
    if b > min(h, w):
        raise ArgumentError(f"block_size {b} does not fit a {h}×{w} feature map")
    return p / b**2 * (h * w) / ((h - b + 1) * (w - b + 1))


class DropBlock2d(nn.Module):
    """DropBlock for ``(N, C, H, W)`` feature maps (Ghiasi et al. 2018, Algorithm 1).

    In training mode, for every sample and channel: seeds ~ Bernoulli(γ) (:func:`dropblock_gamma`)
    at the positions where a whole block fits, every seed zeroes the ``block_size × block_size``
    square it is the top-left corner of, and the kept units are scaled by
    ``count(all) / count(kept)`` over the batch so the mean activation is kept (the paper's
    normalisation; inverted dropout scales by 1/(1 − p) instead). In evaluation mode, or with
    ``drop_prob = 0``, it is the identity. ``block_size = 1`` is ordinary dropout (up to the
    rescaling); a block as large as the map drops whole channels, like spatial dropout. A block
    larger than a feature map is shrunk to the map's smaller side. The paper raises ``drop_prob``
    linearly from 0 during training; set the attribute ``drop_prob`` between epochs to do so.
    """

    def __init__(self, drop_prob: float = 0.1, block_size: int = 7) -> None:
        super().__init__()
        self.drop_prob = check_number("drop_prob", drop_prob, 0.0, 1.0, high_open=True)
        self.block_size = check_int("block_size", block_size)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}, block_size={self.block_size}"

    def block_mask(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The 0/1 mask of dropped units (1 = dropped) for ``x``, of shape ``(N, C, H, W)``."""
        n, c, h, w = x.shape
        b = min(self.block_size, h, w)
        gamma = dropblock_gamma(self.drop_prob, b, h, w)
        seeds = torch.rand((n, c, h - b + 1, w - b + 1), generator=generator, device=x.device) < gamma
        seeds = nn.functional.pad(seeds.to(x.dtype), (b - 1, b - 1, b - 1, b - 1))
        return nn.functional.max_pool2d(seeds, kernel_size=b, stride=1)   # unit (i, j) ← seeds above-left

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if not isinstance(x, Tensor) or x.ndim != 4:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ArgumentError(f"DropBlock2d takes (N, C, H, W) tensors, got {shape}")
        if not self.training or self.drop_prob == 0.0:
            return x
        keep = 1.0 - self.block_mask(x, generator)
        return x * keep * (keep.numel() / keep.sum().clamp_min(1.0))
