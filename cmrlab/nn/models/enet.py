"""ENet, the small real-time segmentation network of Paszke et al. (2016).

Source: DLMI 2021 lecture (bibliography key ``dlmi2021fundamentals``,
L525–555): the ENet block (projection, convolution, expansion, regularisation), an asymmetric
encoder–decoder, "# parameters: 0.37 M", "network size < 6 MB", 640×360 px in 7 ms on a TitanX.
(The brain thesis does not mention ENet.) The architecture is that of Paszke, Chaurasia, Kim & Culurciello, "ENet: a deep neural
network architecture for real-time semantic segmentation", arXiv:1606.02147 (bibliography key
``paszke2016enet``), Table 1, with the details the paper leaves out taken from the authors'
Torch7 code (GitHub ``e-lab/ENet-training``, ``train/models/encoder.lua`` and ``decoder.lua``).

Input ``(N, C, H, W)``, one 2D slice per sample, ``H`` and ``W`` multiples of 8; output
``(N, num_classes, H, W)`` logits. With the paper's sizes (a 512 × 512 input):

=====================  =================================  ================
stage                  blocks                             output
=====================  =================================  ================
initial                3×3 conv stride 2 ∥ 2×2 max-pool   16 × 256 × 256
1 (encoder)            downsampling, 4 × regular          64 × 128 × 128
2 (encoder)            downsampling, regular, dilated 2,  128 × 64 × 64
                       asymmetric 5, dilated 4, regular,
                       dilated 8, asymmetric 5, dilated 16
3 (encoder)            stage 2 without the downsampling   128 × 64 × 64
4 (decoder)            upsampling, 2 × regular            64 × 128 × 128
5 (decoder)            upsampling, 1 × regular            16 × 256 × 256
full convolution       2×2 transposed conv, stride 2      C × 512 × 512
=====================  =================================  ================

* **Initial block**: a 3×3 stride-2 convolution with ``16 − in_channels`` filters, concatenated
  with a 2×2 max-pool of the input (16 maps), then batch norm and PReLU.
* **Bottleneck** (a residual block): main branch = 1×1 projection to ``out/4`` channels → BN →
  PReLU → the block's convolution → BN → PReLU → 1×1 expansion to ``out`` channels → BN →
  spatial dropout; added to the shortcut, then PReLU. The block's convolution is a 3×3
  (*regular*), a 3×3 with dilation 2/4/8/16 (*dilated*), or a 1×5 followed by a 5×1
  (*asymmetric*).
* **Downsampling** bottleneck: the projection is a 2×2 convolution of stride 2; the shortcut
  is a 2×2 max-pool (its indices are kept) padded with zero channels up to ``out``.
* **Upsampling** bottleneck (decoder): the block's convolution is a 3×3 transposed convolution
  of stride 2; the shortcut is a 1×1 convolution + BN followed by max-unpooling with the indices
  of the matching downsampling block (stage 4 uses stage 2's, stage 5 stage 1's).
* Spatial dropout ``p = 0.01`` in stage 1 (before bottleneck 2.0), ``p = 0.1`` in stages 2–3.
* The decoder uses ReLU, the encoder PReLU (one slope per channel).
* The last module is a bare 2×2 transposed convolution of stride 2 (no pooling indices: the
  initial block's pool acted on the input channels, not on the classes).

Parameter count: 0.37 M in the lecture and the paper. Ours with the paper's 3 input channels and
20 classes: **364 376** (−1.5 %). With 1 input channel and 2 classes (the course's default, a
binary MRI segmentation): 362 992. Each class adds 65 (a 2×2×16 kernel and a bias).

Design choices the paper leaves open, marked [choice] (the first five follow the authors' code):

* [choice] no biases in the 1×1 projections/expansions and the first half of the asymmetric
  pair ("we chose not to use bias terms in any of the projections"); biases in the initial
  convolution, the middle 3×3 / dilated / second asymmetric / transposed convolutions and the
  final full convolution;
* [choice] the internal width of every bottleneck is ``out/4`` (so 16 for bottleneck 1.0 and 4
  for bottleneck 5.0);
* [choice] batch norm with ``eps = 1e-3`` and torch's momentum 0.1 (Torch7's default, same
  convention);
* [choice] no dropout in the decoder;
* [choice] the shortcut's extra channels are zeros appended after the pooled input channels;
* [choice] ``16 − in_channels`` convolution filters in the initial block, so that it gives 16
  maps for any number of input channels (13 for RGB as in the paper, 15 for one MRI contrast);
* [choice] torch's default initialisation; PReLU slopes start at 0.25;
* [choice] ``width`` scales every channel count (16, 64, 128) for the ``fast`` profile.
"""
from __future__ import annotations

import numbers

import torch
from torch import nn

from cmrlab.checks import check_int
from cmrlab.errors import ArgumentError

__all__ = ["ENet"]

_BN_EPS = 1e-3  # the Torch7 code's batch-norm epsilon


def _activation(kind: str, channels: int) -> nn.Module:
    """PReLU with one slope per channel (encoder) or ReLU (decoder)."""
    return nn.PReLU(channels) if kind == "prelu" else nn.ReLU(inplace=True)


class _InitialBlock(nn.Module):
    """3×3 stride-2 convolution ∥ 2×2 max-pool of the input, concatenated, then BN + PReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels - in_channels, 3, stride=2, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.bn = nn.BatchNorm2d(out_channels, eps=_BN_EPS)
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(torch.cat([self.conv(x), self.pool(x)], dim=1)))


class _Bottleneck(nn.Module):
    """One ENet bottleneck (regular, dilated, asymmetric or downsampling; encoder or decoder).

    ``kind`` is ``"regular"``, ``"dilated"`` (with ``dilation``), ``"asymmetric"`` (1×5 then 5×1)
    or ``"down"``; ``activation`` ``"prelu"`` (encoder) or ``"relu"`` (decoder). A ``"down"``
    block returns ``(output, pooling indices)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kind: str = "regular",
        *,
        dilation: int = 1,
        dropout: float = 0.0,
        activation: str = "prelu",
    ) -> None:
        super().__init__()
        internal = max(1, out_channels // 4)
        self.kind = kind
        if kind == "down":
            project = nn.Conv2d(in_channels, internal, 2, stride=2, bias=False)
        else:
            if in_channels != out_channels:
                raise ArgumentError("only a downsampling bottleneck changes the channel count")
            project = nn.Conv2d(in_channels, internal, 1, bias=False)
        if kind in ("regular", "down"):
            middle: list[nn.Module] = [nn.Conv2d(internal, internal, 3, padding=1)]
        elif kind == "dilated":
            middle = [nn.Conv2d(internal, internal, 3, padding=dilation, dilation=dilation)]
        elif kind == "asymmetric":
            middle = [
                nn.Conv2d(internal, internal, (1, 5), padding=(0, 2), bias=False),
                nn.Conv2d(internal, internal, (5, 1), padding=(2, 0)),
            ]
        else:
            raise ArgumentError(f"unknown bottleneck kind {kind!r}")
        layers = [
            project,
            nn.BatchNorm2d(internal, eps=_BN_EPS),
            _activation(activation, internal),
            *middle,
            nn.BatchNorm2d(internal, eps=_BN_EPS),
            _activation(activation, internal),
            nn.Conv2d(internal, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels, eps=_BN_EPS),
        ]
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        self.main = nn.Sequential(*layers)
        self.pool = nn.MaxPool2d(2, return_indices=True) if kind == "down" else None
        self.extra_channels = out_channels - in_channels
        self.act = _activation(activation, out_channels)

    def forward(self, x: torch.Tensor):
        main = self.main(x)
        if self.pool is None:
            return self.act(main + x)
        shortcut, indices = self.pool(x)
        if self.extra_channels:
            n, _, h, w = shortcut.shape
            zeros = shortcut.new_zeros((n, self.extra_channels, h, w))
            shortcut = torch.cat([shortcut, zeros], dim=1)
        return self.act(main + shortcut), indices


class _UpsamplingBottleneck(nn.Module):
    """Decoder bottleneck that doubles the resolution.

    Main branch: 1×1 projection → BN → ReLU → 3×3 transposed convolution of stride 2 → BN → ReLU
    → 1×1 expansion → BN. Shortcut: 1×1 convolution → BN → max-unpooling with the indices of the
    matching downsampling block. Output: ReLU of the sum.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        internal = max(1, out_channels // 4)
        self.main = nn.Sequential(
            nn.Conv2d(in_channels, internal, 1, bias=False),
            nn.BatchNorm2d(internal, eps=_BN_EPS),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(internal, internal, 3, stride=2, padding=1, output_padding=1),
            nn.BatchNorm2d(internal, eps=_BN_EPS),
            nn.ReLU(inplace=True),
            nn.Conv2d(internal, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels, eps=_BN_EPS),
        )
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels, eps=_BN_EPS),
        )
        self.unpool = nn.MaxUnpool2d(2)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        shortcut = self.unpool(self.shortcut(x), indices)
        return self.act(self.main(x) + shortcut)


def _stage23(channels: int, dropout: float) -> nn.Sequential:
    """The eight bottlenecks x.1 … x.8 of stages 2 and 3."""
    blocks = [
        _Bottleneck(channels, channels, "regular", dropout=dropout),
        _Bottleneck(channels, channels, "dilated", dilation=2, dropout=dropout),
        _Bottleneck(channels, channels, "asymmetric", dropout=dropout),
        _Bottleneck(channels, channels, "dilated", dilation=4, dropout=dropout),
        _Bottleneck(channels, channels, "regular", dropout=dropout),
        _Bottleneck(channels, channels, "dilated", dilation=8, dropout=dropout),
        _Bottleneck(channels, channels, "asymmetric", dropout=dropout),
        _Bottleneck(channels, channels, "dilated", dilation=16, dropout=dropout),
    ]
    return nn.Sequential(*blocks)


class ENet(nn.Module):
    """ENet (Paszke et al. 2016); see the module docstring for the architecture and choices.

    Args:
        in_channels: channels of the input slice (1 for one MRI contrast, 3 in the paper).
        num_classes: output channels (logits), background included.
        width: multiplier of the channel counts 16 / 64 / 128 (1.0: the paper; e.g. 0.5 for
            the ``fast`` profile). The initial block needs ``round(16·width) > in_channels``.

    Input ``(N, in_channels, H, W)`` with ``H`` and ``W`` multiples of 8; output
    ``(N, num_classes, H, W)``.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2, width: float = 1.0) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, 1)
        self.num_classes = check_int("num_classes", num_classes, 1)
        if isinstance(width, bool) or not isinstance(width, numbers.Real) or width <= 0:
            raise ArgumentError(f"width must be a positive number, got {width!r}")
        c0, c1, c2 = (max(1, round(c * width)) for c in (16, 64, 128))
        if c0 <= self.in_channels:
            raise ArgumentError(
                f"width {width} gives the initial block {c0} maps, not more than the "
                f"{self.in_channels} input channels it must keep; use a larger width"
            )
        self.channels = (c0, c1, c2)

        self.initial = _InitialBlock(self.in_channels, c0)
        self.down1 = _Bottleneck(c0, c1, "down", dropout=0.01)
        self.stage1 = nn.Sequential(*[_Bottleneck(c1, c1, dropout=0.01) for _ in range(4)])
        self.down2 = _Bottleneck(c1, c2, "down", dropout=0.1)
        self.stage2 = _stage23(c2, 0.1)
        self.stage3 = _stage23(c2, 0.1)
        self.up4 = _UpsamplingBottleneck(c2, c1)
        self.stage4 = nn.Sequential(*[_Bottleneck(c1, c1, activation="relu") for _ in range(2)])
        self.up5 = _UpsamplingBottleneck(c1, c0)
        self.stage5 = _Bottleneck(c0, c0, activation="relu")
        self.fullconv = nn.ConvTranspose2d(c0, self.num_classes, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes, H, W)`` of a batch ``(N, in_channels, H, W)``."""
        if x.dim() != 4:
            raise ArgumentError(f"ENet expects a (N, C, H, W) tensor, got shape {tuple(x.shape)}")
        if x.shape[1] != self.in_channels:
            raise ArgumentError(
                f"ENet was built for {self.in_channels} input channel(s), got {x.shape[1]}"
            )
        if x.shape[-2] % 8 or x.shape[-1] % 8:
            raise ArgumentError(
                f"ENet needs H and W divisible by 8 (three halvings), got {tuple(x.shape[-2:])}"
            )
        x = self.initial(x)
        x, indices1 = self.down1(x)
        x = self.stage1(x)
        x, indices2 = self.down2(x)
        x = self.stage3(self.stage2(x))
        x = self.stage4(self.up4(x, indices2))
        x = self.stage5(self.up5(x, indices1))
        return self.fullconv(x)
