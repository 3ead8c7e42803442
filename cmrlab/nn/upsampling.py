"""Output size and overlap pattern of transposed convolutions (learned upsampling).

The chapter "Transposed convolution" builds these ideas; later chapters import them from here.

Along one axis, a transposed convolution with kernel ``k``, stride ``s``, padding ``p``,
dilation ``d`` and output padding ``a`` lets every input sample ``i`` paint a copy of the kernel,
scaled by its value, starting at output position ``s·i − p``; tap ``t`` of the kernel lands on
``s·i + d·t − p``. Positions outside ``[0, n_out)`` are cropped away. The number of outputs is
(``torch.nn.ConvTranspose1d/2d/3d``)::

    n_out = (n − 1)·s − 2p + d·(k − 1) + a + 1

It is the input size of the convolution with the same ``k, s, p, d`` whose output has ``n``
samples; ``a < max(s, d)`` picks one of the ``s`` input sizes that such a convolution maps to
the same ``n``.

*Overlap.* The number of (input sample, kernel tap) pairs that land on one output sample is the
same everywhere inside the output only when ``k`` is a multiple of ``s`` (``d = 1``); otherwise
it alternates, e.g. 2, 1, 2, 1, … for ``k = 3, s = 2``, and in 2D, where the pattern of each axis
multiplies, 4, 2, 4, 2 / 2, 1, 2, 1: the "uneven overlap" behind checkerboard artifacts
(Odena et al., Distill 2016).

Example::

    >>> from cmrlab.nn.upsampling import conv_transpose_output_size, overlap_count
    >>> conv_transpose_output_size(2, 3), conv_transpose_output_size(16, 31, stride=16)
    (4, 271)
    >>> overlap_count(4, 3, stride=2).tolist()
    [1, 1, 2, 1, 2, 1, 2, 1, 1]
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cmrlab.checks import check_int
from cmrlab.errors import ArgumentError

__all__ = ["conv_transpose_output_size", "overlap_count"]


def conv_transpose_output_size(
    size: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    output_padding: int = 0,
    dilation: int = 1,
) -> int:
    """Number of outputs of a transposed convolution along one axis.

    ``n_out = (n − 1)·s − 2p + d·(k − 1) + a + 1`` with ``a`` the ``output_padding``, the rule of
    ``torch.nn.ConvTranspose1d/2d/3d``. As in torch, ``output_padding`` must be smaller than the
    stride or the dilation (it only chooses among the sizes a strided convolution maps to the same
    output).

    Raises :class:`~cmrlab.errors.ArgumentError` for a size, kernel, stride or dilation below 1, a
    negative padding or output padding, an output padding too large, or a padding that crops the
    whole output away.

    >>> conv_transpose_output_size(64, 2, stride=2), conv_transpose_output_size(2, 3, stride=2)
    (128, 5)
    """
    n = check_int("size", size, 1)
    k = check_int("kernel", kernel, 1)
    s = check_int("stride", stride, 1)
    p = check_int("padding", padding, 0)
    a = check_int("output_padding", output_padding, 0)
    d = check_int("dilation", dilation, 1)
    if a >= s and a >= d:
        raise ArgumentError(
            f"output_padding must be smaller than the stride ({s}) or the dilation ({d}), got {a}"
        )
    out = (n - 1) * s - 2 * p + d * (k - 1) + a + 1
    if out < 1:
        raise ArgumentError(
            f"padding {p} crops the whole output away: (size {n} − 1)·stride {s} − 2·padding "
            f"+ dilation {d}·(kernel {k} − 1) + output_padding {a} + 1 = {out}"
        )
    return out


def _overlap_1d(size: int, kernel: int, stride: int, padding: int, dilation: int) -> np.ndarray:
    """Taps landing on each output sample of a 1D transposed convolution."""
    n_out = conv_transpose_output_size(size, kernel, stride, padding, 0, dilation)
    counts = np.zeros(n_out, dtype=np.int64)
    for tap in range(kernel):
        # input sample i puts tap t on s·i + d·t − p
        positions = stride * np.arange(size) + dilation * tap - padding
        inside = positions[(positions >= 0) & (positions < n_out)]
        np.add.at(counts, inside, 1)
    return counts


def _per_axis(name: str, value: int | Sequence[int], dims: int, minimum: int) -> tuple[int, ...]:
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        values = tuple(value)
        if len(values) != dims:
            raise ArgumentError(f"{name} must have {dims} entries (one per axis), got {values!r}")
    else:
        values = (value,) * dims
    return tuple(check_int(name, v, minimum) for v in values)


def overlap_count(
    size: int | Sequence[int],
    kernel: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
) -> np.ndarray:
    """How many kernel taps land on each output sample of a transposed convolution.

    ``size`` is the input size: an int for 1D, a sequence (one entry per axis) for 2D/3D; the
    other arguments are one int for every axis or one per axis, as in ``torch.nn.ConvTranspose*``.
    Returns an ``int64`` array of the output shape (:func:`conv_transpose_output_size` per axis,
    without output padding). In several dimensions the count is the product of the counts of each
    axis: ``count[i, j] = count_0[i] · count_1[j]``.

    It equals the output of ``conv_transpose`` applied to an input of ones with a kernel of ones.
    Inside the output (away from the borders) it is constant when ``kernel`` is a multiple of
    ``stride`` (and ``dilation`` is 1), and periodic with period ``stride`` otherwise.

    >>> overlap_count((2, 2), 3, stride=2).tolist()
    [[1, 1, 2, 1, 1], [1, 1, 2, 1, 1], [2, 2, 4, 2, 2], [1, 1, 2, 1, 1], [1, 1, 2, 1, 1]]
    """
    if isinstance(size, Sequence) and not isinstance(size, (str, bytes)):
        shape = tuple(size)
        if not 1 <= len(shape) <= 3:
            raise ArgumentError(f"size must have 1 to 3 entries (one per axis), got {shape!r}")
    else:
        shape = (size,)
    dims = len(shape)
    shape = tuple(check_int("size", n, 1) for n in shape)
    kernels = _per_axis("kernel", kernel, dims, 1)
    strides = _per_axis("stride", stride, dims, 1)
    paddings = _per_axis("padding", padding, dims, 0)
    dilations = _per_axis("dilation", dilation, dims, 1)
    result = np.ones((), dtype=np.int64)
    for n, k, s, p, d in zip(shape, kernels, strides, paddings, dilations):
        result = np.multiply.outer(result, _overlap_1d(n, k, s, p, d))
    return result
