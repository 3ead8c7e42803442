"""Activation functions that torch does not ship: the growing cosine unit (GCU).

The chapter "Normalisation, activations and regularisation" compares sigmoid, tanh, ReLU, GELU
and GCU and checks their derivatives; later chapters and labs import the GCU from here, e.g. to
swap it into a block with ``ConvBNAct(2, c_in, c_out, activation=lambda c: GrowingCosineUnit())``.

Growing cosine unit (Noel et al. 2021, arXiv:2108.12943; suggested as a ReLU alternative in the
cardiac thesis, ch. 8)::

    GCU(z)  = z · cos(z)
    GCU'(z) = cos(z) − z · sin(z)

It is oscillatory and not monotonic, so a single neuron ``GCU(w·x + b)`` can separate the XOR
pattern, which no neuron with a monotonic activation can.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from cmrlab.errors import ArgumentError

__all__ = ["GrowingCosineUnit", "gcu"]


def gcu(input: Tensor) -> Tensor:  # noqa: A002 - torch's functional naming
    """Growing cosine unit, element-wise: ``GCU(z) = z · cos(z)``.

    Args:
        input: a floating-point tensor of any shape, on any device.

    Returns:
        A tensor of the same shape, dtype and device. Its derivative is
        ``cos(z) − z · sin(z)`` (autograd computes it).
    """
    if not isinstance(input, Tensor):
        raise ArgumentError(f"input must be a torch.Tensor, got {type(input).__name__}")
    if not (input.is_floating_point() or input.is_complex()):
        raise ArgumentError(f"input must be a floating-point tensor, got dtype {input.dtype}")
    return input * torch.cos(input)


class GrowingCosineUnit(nn.Module):
    """Module form of :func:`gcu`: ``GCU(z) = z · cos(z)``, no parameters.

    Example::

        >>> import torch
        >>> GrowingCosineUnit()(torch.tensor([0.0, torch.pi]))
        tensor([ 0.0000, -3.1416])
    """

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return gcu(input)
