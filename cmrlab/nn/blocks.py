"""Small building blocks shared by the model families of :mod:`cmrlab.nn.models`.

Each block works in 2D (``nd=2``: tensors ``(N, C, H, W)``) or 3D (``nd=3``: tensors
``(N, C, D, H, W)``) and uses "same" padding, so a stride-1 block keeps the spatial size:

- :class:`ConvBNAct`: one convolution, batch normalisation and an activation, in either order
  (Keras-era papers often put the activation *before* BN: ``Conv → ReLU → BN``);
- :class:`DoubleConv`: two :class:`ConvBNAct` in a row, the unit of every U-Net level;
- :class:`UpConv`: a transposed ("up-") convolution whose kernel equals its stride, so each input
  voxel paints one non-overlapping ``factor``-sized tile of the output;
- :class:`PyramidPooling`: the pyramid pooling module of PSPNet (Zhao et al. 2017): parallel
  paths that pool the input to coarser grids, convolve, bring the result back to the input size
  and concatenate it with the input.

Parameter counts are exact and simple, e.g. a ``ConvBNAct(3, c_in, c_out, 3)`` has
``27·c_in·c_out + c_out`` convolution parameters plus ``2·c_out`` BN parameters (scale γ and
shift β; the running mean and variance are buffers, not parameters).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Union

import torch
import torch.nn.functional as F
from torch import nn

from cmrlab.checks import check_choice, check_int, check_number
from cmrlab.errors import ArgumentError

__all__ = [
    "ConvBNAct", "DoubleConv", "PyramidPooling", "UpConv", "check_dropout", "check_model_input",
    "make_activation",
]

#: An activation given by name (see :func:`make_activation`) or by a factory ``channels -> module``.
Activation = Union[str, None, Callable[[int], nn.Module]]

_ORDERS = ("conv-bn-act", "conv-act-bn")


def check_model_input(
    x: object,
    *,
    in_channels: int,
    layout: str = "(N, C, D, H, W) with D the slice axis",
    ndims: tuple[int, ...] = (5,),
    divisible_by: int = 1,
    divisor: str | None = None,
    in_plane_only: bool = False,
    why: str = "",
    poolings: int | None = None,
    poolings_name: str | None = None,
) -> None:
    """Check a model's input and raise :class:`ArgumentError` in plain words if it does not fit.

    ``x`` must be a floating-point tensor with ``ndims`` dimensions laid out as ``layout``, with
    ``in_channels`` channels; its spatial sizes (the last two only with ``in_plane_only``) must be
    divisible by ``divisible_by`` (written ``divisor`` in the message, e.g. ``"2**depth = 16"``;
    ``why`` says why, e.g. ``"the 3D U-Net pools 4 times"``). One place for the checks every
    model of the zoo makes.

    ``poolings=n`` is the short form for a network that halves its input ``n`` times:
    ``divisible_by = 2**n``, written ``"2**n = …"`` (or ``"2**depth = …"`` with
    ``poolings_name="depth"``).
    """
    if poolings is not None:
        divisible_by = 2 ** check_int("poolings", poolings, 0)
        divisor = divisor or f"2**{poolings_name or poolings} = {divisible_by}"
    if not isinstance(x, torch.Tensor):
        raise ArgumentError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim not in ndims:
        raise ArgumentError(f"x must have shape {layout}, got {x.ndim} dimensions {tuple(x.shape)}")
    if x.shape[1] != in_channels:
        raise ArgumentError(
            f"x has {x.shape[1]} channels, the model expects in_channels={in_channels}"
        )
    if not x.is_floating_point():
        raise ArgumentError(f"x must be a floating-point tensor, got {x.dtype}")
    if x.numel() == 0:
        raise ArgumentError(f"x is empty: shape {tuple(x.shape)}")
    sizes = tuple(x.shape[-2:]) if in_plane_only else tuple(x.shape[2:])
    if divisible_by > 1 and any(size % divisible_by for size in sizes):
        where = "in-plane size" if in_plane_only else "spatial size"
        raise ArgumentError(
            f"{where} {sizes} must be divisible by {divisor or divisible_by}"
            + (f" ({why})" if why else "")
        )


def check_dropout(value: object, name: str = "dropout") -> float:
    """A dropout probability in ``[0, 1)`` as a float (1 would drop everything), else ArgumentError."""
    return check_number(f"{name} (a dropout probability)", value, 0.0, 1.0, high_open=True)


def _check_nd(nd: object) -> int:
    return check_choice("nd (the number of spatial axes)", nd, (2, 3))


def _as_tuple(name: str, value: object, nd: int, minimum: int = 1) -> tuple[int, ...]:
    """``3`` → ``(3, 3)`` for nd=2; a sequence must have ``nd`` entries (torch's axis order)."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != nd:
            raise ArgumentError(f"{name} must have {nd} entries for nd={nd}, got {tuple(value)!r}")
        return tuple(check_int(name, v, minimum) for v in value)
    return (check_int(name, value, minimum),) * nd


def _conv_cls(nd: int) -> type[nn.Module]:
    return nn.Conv2d if nd == 2 else nn.Conv3d


def _bn_cls(nd: int) -> type[nn.Module]:
    return nn.BatchNorm2d if nd == 2 else nn.BatchNorm3d


def make_activation(activation: Activation, channels: int) -> nn.Module:
    """Build an activation module for a layer with ``channels`` output channels.

    ``activation`` is one of ``"relu"``, ``"leaky_relu"`` (slope 0.01), ``"elu"``, ``"gelu"``,
    ``"prelu"`` (one learnable slope per channel, initialised at 0.25, so ``channels``
    parameters), ``"sigmoid"``, ``"tanh"``, ``None`` or ``"none"`` (identity), or a callable
    that takes ``channels`` and returns a module, e.g. ``lambda c: nn.PReLU(1)``.
    """
    if callable(activation):
        module = activation(channels)
        if not isinstance(module, nn.Module):
            raise ArgumentError(
                f"activation factory must return a torch.nn.Module, got {type(module).__name__}"
            )
        return module
    if activation is None or activation == "none":
        return nn.Identity()
    simple = {
        "relu": nn.ReLU,
        "leaky_relu": nn.LeakyReLU,
        "elu": nn.ELU,
        "gelu": nn.GELU,
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
    }
    if activation in simple:
        return simple[activation]()
    if activation == "prelu":
        return nn.PReLU(channels)
    names = ", ".join(repr(n) for n in [*simple, "prelu", "none"])
    raise ArgumentError(
        f"activation must be one of {names}, None or a callable, got {activation!r}"
    )


class ConvBNAct(nn.Sequential):
    """Convolution + batch normalisation + activation, 2D or 3D, with "same" padding.

    ``order="conv-bn-act"`` (default) gives ``Conv → BN → act`` (the usual PyTorch order, e.g.
    Çiçek's 3D U-Net); ``order="conv-act-bn"`` gives ``Conv → act → BN``, the order of Keras
    models that write ``Conv3D(activation="relu")`` followed by ``BatchNormalization()``, as in
    the cardiac thesis. ``batch_norm=False`` leaves BN out.

    ``kernel_size`` is an int or a tuple in torch's axis order (``(D, H, W)`` for nd=3): a
    Keras 3×3×1 kernel on (H, W, slice) is ``kernel_size=(1, 3, 3)`` here. With stride 1 and an
    odd kernel the padding ``(k − 1)/2`` per axis keeps the size ("same"); pass ``padding`` to
    override it. ``bn_momentum``/``bn_eps`` are torch's: Keras's defaults (momentum 0.99,
    epsilon 1e-3) are ``bn_momentum=0.01, bn_eps=1e-3``.

    Parameters: ``k_1⋯k_nd · c_in · c_out`` weights, ``+ c_out`` if ``bias``, ``+ 2·c_out`` for
    BN, ``+ c_out`` for ``"prelu"``.
    """

    def __init__(
        self,
        nd: int,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int] = 3,
        *,
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] | None = None,
        dilation: int | Sequence[int] = 1,
        bias: bool = True,
        batch_norm: bool = True,
        bn_momentum: float = 0.1,
        bn_eps: float = 1e-5,
        activation: Activation = "relu",
        order: str = "conv-bn-act",
    ) -> None:
        nd = _check_nd(nd)
        in_channels = check_int("in_channels", in_channels, 1)
        out_channels = check_int("out_channels", out_channels, 1)
        kernel = _as_tuple("kernel_size", kernel_size, nd)
        stride_t = _as_tuple("stride", stride, nd)
        dilation_t = _as_tuple("dilation", dilation, nd)
        if padding is None:
            if any(k % 2 == 0 for k in kernel):
                raise ArgumentError(
                    f"kernel_size {kernel} has an even entry: 'same' padding needs odd kernels, "
                    "pass padding explicitly"
                )
            pad = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation_t))
        else:
            pad = _as_tuple("padding", padding, nd, minimum=0)
        if order not in _ORDERS:
            raise ArgumentError(f"order must be one of {_ORDERS}, got {order!r}")
        conv = _conv_cls(nd)(
            in_channels, out_channels, kernel, stride=stride_t, padding=pad,
            dilation=dilation_t, bias=bias,
        )
        act = make_activation(activation, out_channels)
        layers: list[tuple[str, nn.Module]] = [("conv", conv)]
        bn = []
        if batch_norm:
            bn = [("bn", _bn_cls(nd)(out_channels, eps=bn_eps, momentum=bn_momentum))]
        if order == "conv-bn-act":
            layers += [*bn, ("act", act)]
        else:
            layers += [("act", act), *bn]
        super().__init__()
        for name, module in layers:
            self.add_module(name, module)
        self.in_channels = in_channels
        self.out_channels = out_channels


class DoubleConv(nn.Sequential):
    """Two :class:`ConvBNAct` in a row: ``c_in → c_mid → c_out`` (``c_mid`` defaults to
    ``c_out``), the block of every U-Net level. Keyword arguments (kernel, BN settings,
    activation, order, ...) go to both convolutions."""

    def __init__(
        self,
        nd: int,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int] = 3,
        *,
        mid_channels: int | None = None,
        **conv_kwargs,
    ) -> None:
        mid = out_channels if mid_channels is None else mid_channels
        super().__init__(
            ConvBNAct(nd, in_channels, mid, kernel_size, **conv_kwargs),
            ConvBNAct(nd, mid, out_channels, kernel_size, **conv_kwargs),
        )
        self.in_channels = self[0].in_channels
        self.out_channels = self[1].out_channels


class UpConv(nn.Module):
    """Transposed convolution with kernel = stride = ``factor`` (e.g. 2×2 or, for nd=3, the
    in-plane-only ``(1, 2, 2)``): every input voxel paints its own ``factor`` tile, so the
    output is exactly ``factor`` times larger per axis.

    ``y[c_out, f·i + a] = b[c_out] + Σ_{c_in} W[c_in, c_out, a] · x[c_in, i]`` for each offset
    ``a`` inside the tile. Parameters: ``∏factor · c_in · c_out (+ c_out)``. An optional
    activation follows (none by default: in a U-Net the up-convolution is followed by a
    concatenation and convolutions that bring their own non-linearity).
    """

    def __init__(
        self,
        nd: int,
        in_channels: int,
        out_channels: int,
        factor: int | Sequence[int] = 2,
        *,
        bias: bool = True,
        activation: Activation = None,
    ) -> None:
        super().__init__()
        nd = _check_nd(nd)
        in_channels = check_int("in_channels", in_channels, 1)
        out_channels = check_int("out_channels", out_channels, 1)
        self.factor = _as_tuple("factor", factor, nd)
        cls = nn.ConvTranspose2d if nd == 2 else nn.ConvTranspose3d
        self.conv = cls(in_channels, out_channels, self.factor, stride=self.factor, bias=bias)
        self.act = make_activation(activation, out_channels)
        self.in_channels = in_channels
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class PyramidPooling(nn.Module):
    """Pyramid pooling module (PSPNet, Zhao et al. 2017), 2D or 3D.

    Output ``[x, path_1(x), …, path_n(x)]`` concatenated along channels. Path ``i``:

    1. **pool** the input to a coarser grid, either by a ``factors[i]`` (kernel = stride =
       factor: a 176² map with factor 4 becomes 44²) or to a fixed number of ``bins[i]`` per
       axis (adaptive pooling, PSPNet's 1/2/3/6 bins); ``pool`` is ``"avg"`` (PSPNet) or
       ``"max"``;
    2. **convolve**: ``convs_per_path`` :class:`ConvBNAct` of ``kernel_size`` (PSPNet: one 1×1),
       the first ``c_in → path_channels[i]``, the others keep ``path_channels[i]``;
    3. **upsample** back to the input size: ``"bilinear"`` (tri-linear in 3D) or ``"nearest"``
       interpolation (no parameters, any factor or bin), or ``"transposed"``: ``log2(factor)``
       :class:`UpConv` ×2 steps, each halving the channels like a U-Net decoder and followed
       by ``activation`` (needs power-of-two ``factors`` and ``path_channels[i]`` divisible by
       the factor; the path then returns ``path_channels[i] / factor`` channels).

    ``path_channels`` is one int for every path or one per path. With ``keep_input=False`` the
    input itself is not part of the output. ``out_channels`` tells the resulting width.
    Remaining keyword arguments (``bn_momentum``, ``bn_eps``, ``activation``, ``order``,
    ``bias``) go to the convolutions.

    Example, the PSPNet head on a ResNet's 2048-channel map: ``PyramidPooling(2048, 512,
    bins=(1, 2, 3, 6), bias=False)`` has ``out_channels`` 2048 + 4·512 = 4096.
    """

    def __init__(
        self,
        in_channels: int,
        path_channels: int | Sequence[int],
        *,
        factors: Sequence[int] | None = None,
        bins: Sequence[int] | None = None,
        nd: int = 2,
        pool: str = "avg",
        kernel_size: int = 1,
        convs_per_path: int = 1,
        upsample: str = "bilinear",
        keep_input: bool = True,
        activation: Activation = "relu",
        **conv_kwargs,
    ) -> None:
        super().__init__()
        self.nd = _check_nd(nd)
        in_channels = check_int("in_channels", in_channels, 1)
        if (factors is None) == (bins is None):
            raise ArgumentError(
                "give exactly one of factors (pool by a factor) or bins (pool to a grid)"
            )
        scales = factors if factors is not None else bins
        label = "factors" if factors is not None else "bins"
        if isinstance(scales, str) or not isinstance(scales, Sequence) or not scales:
            raise ArgumentError(f"{label} must be a non-empty sequence of ints, got {scales!r}")
        scales = [check_int(label, s, 1) for s in scales]
        if isinstance(path_channels, Sequence):
            if len(path_channels) != len(scales):
                raise ArgumentError(
                    f"path_channels has {len(path_channels)} entries for {len(scales)} paths"
                )
            widths = [check_int("path_channels", p, 1) for p in path_channels]
        else:
            widths = [check_int("path_channels", path_channels, 1)] * len(scales)
        if pool not in ("avg", "max"):
            raise ArgumentError(f"pool must be 'avg' or 'max', got {pool!r}")
        if upsample not in ("bilinear", "nearest", "transposed"):
            raise ArgumentError(
                f"upsample must be 'bilinear', 'nearest' or 'transposed', got {upsample!r}"
            )
        convs_per_path = check_int("convs_per_path", convs_per_path, 1)
        if upsample == "transposed":
            if factors is None:
                raise ArgumentError("upsample='transposed' needs factors, not bins")
            for f, p in zip(scales, widths):
                if f & (f - 1):
                    raise ArgumentError(
                        f"upsample='transposed' needs power-of-two factors, got {f}"
                    )
                if p % f:
                    raise ArgumentError(
                        f"upsample='transposed' halves the channels log2({f}) times: "
                        f"path_channels {p} must be divisible by the factor {f}"
                    )
        self.factors = scales if factors is not None else None
        self.bins = scales if bins is not None else None
        self.pool = pool
        self.upsample = upsample
        self.keep_input = bool(keep_input)

        self.paths = nn.ModuleList()
        out = in_channels if self.keep_input else 0
        for scale, width in zip(scales, widths):
            layers: list[nn.Module] = [
                ConvBNAct(nd, in_channels if j == 0 else width, width, kernel_size,
                          activation=activation, **conv_kwargs)
                for j in range(convs_per_path)
            ]
            if upsample == "transposed":
                c = width
                for _ in range(int(math.log2(scale))):
                    layers.append(UpConv(nd, c, c // 2, 2, activation=activation))
                    c //= 2
                out += c
            else:
                out += width
            self.paths.append(nn.Sequential(*layers))
        self.in_channels = in_channels
        self.out_channels = out

    def _pool(self, x: torch.Tensor, scale: int) -> torch.Tensor:
        nd = self.nd
        if self.factors is not None:
            fn = {(2, "avg"): F.avg_pool2d, (2, "max"): F.max_pool2d,
                  (3, "avg"): F.avg_pool3d, (3, "max"): F.max_pool3d}[nd, self.pool]
            return fn(x, scale)
        fn = {(2, "avg"): F.adaptive_avg_pool2d, (2, "max"): F.adaptive_max_pool2d,
              (3, "avg"): F.adaptive_avg_pool3d, (3, "max"): F.adaptive_max_pool3d}[nd, self.pool]
        return fn(x, scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != self.nd + 2 or x.shape[1] != self.in_channels:
            raise ArgumentError(
                f"PyramidPooling expects ({'N, C, H, W' if self.nd == 2 else 'N, C, D, H, W'}) "
                f"with C = {self.in_channels}, got shape {tuple(x.shape)}"
            )
        size = x.shape[2:]
        if self.factors is not None:
            bad = [f for f in self.factors if any(s % f for s in size)]
            if bad:
                raise ArgumentError(
                    f"spatial size {tuple(size)} is not divisible by the pooling factor(s) {bad}"
                )
        outputs = [x] if self.keep_input else []
        for scale, path in zip(self.factors or self.bins, self.paths):
            y = path(self._pool(x, scale))
            if self.upsample != "transposed":
                if self.upsample == "nearest":
                    y = F.interpolate(y, size=size, mode="nearest")
                else:
                    mode = "bilinear" if self.nd == 2 else "trilinear"
                    y = F.interpolate(y, size=size, mode=mode, align_corners=False)
            outputs.append(y)
        return torch.cat(outputs, dim=1)
