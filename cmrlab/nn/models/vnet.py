"""V-Net (Milletari, Navab & Ahmadi 2016) and "V-Net light", as trained in the brain thesis.

Source: brain thesis (``brainthesis``) §3.6, L2438-2481 (architecture in words, no channel
counts or kernel sizes), Table 1 L3298-3355 (``~45M`` and ``~25M`` parameters, 1 input channel),
and the thesis-era MedicalZooPytorch code, which fixes the widths, kernels and stage depths used
here.

Input ``(N, C, D, H, W)`` with ``D`` the slice axis: the thesis's 128×128×64 iSeg patch is a
tensor ``(N, 1, 64, 128, 128)``. Output ``(N, num_classes, D, H, W)`` logits; the voxel-wise
softmax of the paper belongs to the loss (or to inference), not to the model.
"""
from __future__ import annotations

import torch
from torch import nn

from cmrlab.checks import check_int
from cmrlab.errors import ArgumentError
from cmrlab.nn.blocks import ConvBNAct, check_dropout, check_model_input

__all__ = ["THESIS_PARAMETERS", "THESIS_PARAMETERS_LIGHT", "VNet", "vnet_light"]

#: Table 1 of the brain thesis (L3330): V-Net "~45M" parameters.
THESIS_PARAMETERS = 45_000_000
#: Table 1 of the brain thesis (L3330): "Vnet light" "~25M" parameters (see :class:`VNet`).
THESIS_PARAMETERS_LIGHT = 25_000_000

#: Convolutions per stage of the full V-Net, thesis-era MedicalZooPytorch code.
_DOWN_CONVS = (1, 2, 3, 2)   # stages 1-4 (2, 4, 8, 16 × base_filters channels)
_UP_CONVS = (2, 2, 1, 1)     # deepest first
_DOWN_DROPOUT = (False, False, True, True)
_UP_DROPOUT = (True, True, False, False)


class _InputStage(nn.Module):
    """``PReLU(BN(conv5(x)) + x)``: the input, copied over the ``base`` channels, is the residual.

    With ``C`` input channels, output channel ``j`` adds input channel ``j mod C`` (the input
    repeated ``base/C`` times), so ``C`` must divide ``base``. The repeat is done by
    broadcasting, without copying the input.
    """

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.conv = ConvBNAct(3, in_channels, channels, 5, bias=False, activation=None)
        self.act = nn.PReLU(channels)
        self.repeats = channels // in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, *size = x.shape
        out = self.conv(x).reshape(n, self.repeats, c, *size) + x.unsqueeze(1)
        return self.act(out.reshape(n, self.repeats * c, *size))


class _DownStage(nn.Module):
    """``d = PReLU(BN(conv2_s2(x)))``, then ``PReLU(d + convs(dropout(d)))``; doubles channels."""

    def __init__(self, in_channels: int, n_convs: int, dropout: float) -> None:
        super().__init__()
        c = 2 * in_channels
        self.down = ConvBNAct(3, in_channels, c, 2, stride=2, padding=0, bias=False,
                              activation="prelu")
        self.dropout = nn.Dropout3d(dropout) if dropout > 0 else nn.Identity()
        self.convs = nn.Sequential(*[ConvBNAct(3, c, c, 5, bias=False, activation="prelu")
                                     for _ in range(n_convs)])
        self.act = nn.PReLU(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        down = self.down(x)
        return self.act(self.convs(self.dropout(down)) + down)


class _UpStage(nn.Module):
    """``u = cat(PReLU(BN(upconv2_s2(dropout(x)))), dropout(skip))``, then ``PReLU(u + convs(u))``.

    The up-convolution brings ``x`` to the skip's channel count ``s``; the stage returns ``2s``.
    """

    def __init__(self, in_channels: int, skip_channels: int, n_convs: int, dropout_in: float,
                 dropout_skip: float) -> None:
        super().__init__()
        c = 2 * skip_channels
        self.dropout_in = nn.Dropout3d(dropout_in) if dropout_in > 0 else nn.Identity()
        self.dropout_skip = nn.Dropout3d(dropout_skip) if dropout_skip > 0 else nn.Identity()
        self.up = nn.Sequential(
            nn.ConvTranspose3d(in_channels, skip_channels, 2, stride=2, bias=False),
            nn.BatchNorm3d(skip_channels),
            nn.PReLU(skip_channels),
        )
        self.convs = nn.Sequential(*[ConvBNAct(3, c, c, 5, bias=False, activation="prelu")
                                     for _ in range(n_convs)])
        self.act = nn.PReLU(c)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        cat = torch.cat([self.up(self.dropout_in(x)), self.dropout_skip(skip)], dim=1)
        return self.act(self.convs(cat) + cat)


class VNet(nn.Module):
    """V-Net for volumetric segmentation; ``light=True`` gives the thesis's "V-Net light".

    Architecture (thesis §3.6, L2438-2481, and Milletari et al. 2016): volumetric convolutions,
    "2×2×2 voxels wide kernels applied with stride 2, instead of max pooling layers", stages of
    "one to three convolutional layers" each wrapped in a residual connection, a left half that
    halves the resolution and doubles the features at each stage, a right half that expands back
    to an output the size of the input with one channel per class. With ``b = base_filters``:

    - input stage: conv 5³ → BN, plus the input (repeated over the ``b`` channels) → PReLU;
    - down stages 1-4 (``2b, 4b, 8b, 16b`` channels): conv 2³ stride 2 → BN → PReLU, then
      ``n`` = 1, 2, 3, 2 × (conv 5³ → BN → PReLU), plus the stage's down-sampled input → PReLU;
    - up stages 4-1 (deepest first; ``16b, 8b, 4b, 2b`` channels): up-conv 2³ stride 2 → BN →
      PReLU to the skip's width, concatenated with the skip, ``n`` = 2, 2, 1, 1 × (conv 5³ →
      BN → PReLU), plus the concatenation → PReLU;
    - output: conv 5³ → BN → PReLU to ``num_classes`` channels, then a 1×1×1 convolution.

    Dropout3d (``dropout``, 0.5 by default) acts on the input of the convolutions of the two
    deepest down stages, on the input of the two deepest up stages and on every skip. Each
    spatial size must be divisible by ``2**4`` = 16 (``2**3`` = 8 for the light version).

    **V-Net light** (``light=True``, or :func:`vnet_light`): the thesis never defines it (it
    appears only in Tables 1-3, L3330/L3372/L3402); the thesis-era code removes the deepest
    stage on both sides (down 4 and up 4), leaving down convs 1, 2, 3 and up convs 2, 1, 1.

    Parameters (``in_channels=1, num_classes=4``, the thesis's T1-only setting):

    - V-Net: **45 609 296** here, thesis Table 1 "~45M" (+1.4 %). The thesis-era code's count
      is 45 608 336 + 3 620 PReLU slopes = 45 611 956; the 2 660 difference is the convolution
      biases it keeps in front of every BN, which BN cancels exactly (its mean subtraction
      removes any constant per channel) and which are therefore left out here.
    - V-Net light: **12 246 736** here (thesis-era code 12 246 288 + 1 700 = 12 247 988).
      **Documented discrepancy:** Table 1 says "~25M". Removing the 256-channel stage removes
      about 33.4 M of the 45.6 M (its 5³ convolutions on 256 channels dominate), so no V-Net
      with one stage fewer has 25 M parameters; the table's figure cannot be reproduced from the
      text or the code and is treated as an error of the thesis.

    ``monai.networks.nets.VNet(in_channels=1, out_channels=4, act="prelu")`` has the same
    layers in the same order; it keeps the 240 biases of its four up-convolutions (also followed
    by BN), so it counts 45 609 536. Given this model's weights (and zero up-convolution
    biases) it computes the same output: ``benchmarks/bench_models.py`` checks it.

    Choices the sources leave open, marked [choice]:

    - [choice] widths 16-32-64-128-256, 5³ kernels and stage depths 1, 2, 3, 2 / 2, 2, 1, 1:
      the thesis-era MedicalZooPytorch code; the V-Net paper has 1, 2, 3, 3, 3 / 3, 3,
      2, 1. Only the code reproduces Table 1's ~45M.
    - [choice] PReLU with one slope per channel (the thesis-era training used ``elu=False``).
    - [choice] BN after every convolution (not in the V-Net paper; in the thesis-era code),
      torch's defaults (momentum 0.1, eps 1e-5): a PyTorch model.
    - [choice] no bias in convolutions followed by BN (see above).
    - [choice] "same" padding (2 for 5³), so the output has the input's size, as the thesis
      says; the input residual needs ``in_channels`` to divide ``base_filters``.
    - [choice] logits out; the softmax goes with the loss or the inference code.
    - [choice] torch's default weight initialisation.

    Args:
        in_channels: input modalities (1 in the thesis: T1 only); must divide ``base_filters``.
        num_classes: output channels, background included (4: background, CSF, GM, WM).
        base_filters: channels of the input stage (16); the ``fast`` profile uses e.g. 4.
        light: build V-Net light (deepest stage removed).
        dropout: Dropout3d probability (0 leaves dropout out).
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 4,
        base_filters: int = 16,
        *,
        light: bool = False,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, 1)
        self.num_classes = check_int("num_classes", num_classes, 1)
        self.base_filters = check_int("base_filters", base_filters, 1)
        if self.base_filters % self.in_channels:
            raise ArgumentError(
                f"in_channels={self.in_channels} must divide base_filters={self.base_filters}: "
                "the input stage adds the input, repeated base_filters/in_channels times"
            )
        dropout = check_dropout(dropout)
        self.light = bool(light)
        self.depth = 3 if self.light else 4
        p = float(dropout)
        b = self.base_filters

        self.input = _InputStage(self.in_channels, b)
        self.down = nn.ModuleList(
            _DownStage(b * 2**i, _DOWN_CONVS[i], p if _DOWN_DROPOUT[i] else 0.0)
            for i in range(self.depth)
        )
        up_convs = _UP_CONVS[4 - self.depth:]
        up_dropout = _UP_DROPOUT[4 - self.depth:]
        self.up = nn.ModuleList()
        c = b * 2**self.depth
        for k, level in enumerate(reversed(range(self.depth))):  # skip of level: b·2^level
            skip = b * 2**level
            self.up.append(_UpStage(c, skip, up_convs[k], p if up_dropout[k] else 0.0, p))
            c = 2 * skip
        self.output = nn.Sequential(
            ConvBNAct(3, c, self.num_classes, 5, bias=False, activation="prelu"),
            nn.Conv3d(self.num_classes, self.num_classes, 1),
        )

    def _check_input(self, x: torch.Tensor) -> None:
        check_model_input(x, in_channels=self.in_channels, poolings=self.depth,
                          why=f"the {'light ' if self.light else ''}V-Net halves it {self.depth} times")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        x = self.input(x)
        skips = [x]
        for stage in self.down:
            x = stage(x)
            skips.append(x)
        skips.pop()  # the deepest stage's output is not a skip
        for stage in self.up:
            x = stage(x, skips.pop())
        return self.output(x)


def vnet_light(in_channels: int = 1, num_classes: int = 4, base_filters: int = 16, *,
               dropout: float = 0.5) -> VNet:
    """V-Net light: :class:`VNet` with ``light=True`` (the deepest stage removed).

    12 246 736 parameters for 1 input channel and 4 classes; the thesis's Table 1 says ~25M, a
    documented discrepancy (see :class:`VNet`).
    """
    return VNet(in_channels, num_classes, base_filters, light=True, dropout=dropout)
