"""The 3D DenseNet family of the brain thesis, after HyperDenseNet (Dolz et al. 2019).

Four models, all fully convolutional on small patches (28³ in the thesis), with no pooling:

- :class:`DenseNet3D`, "3D-Densenet": one densely connected path on all modalities stacked as
  channels (1-3 inputs);
- :class:`DenseNet3DLateFusion`, "2stream-3D-Densenet (late fusion)": one path per modality,
  features concatenated just before the classifier;
- :class:`DenseNet3DEarlyFusion`, "2stream/3stream-3D-Densenet (early fusion)": one first
  convolution per modality, concatenated, then a single path.

Source: brain thesis (``brainthesis``) §3.8-3.9, L2514-2599 (words
only: dense connectivity, late fusion "before the final classification layer … fed to the 1x1x1
classifier", early fusion of "simpler features of the first 3D convolutional networks"), Table 1
L3298-3355 (~2.7M / ~5.2M / ~2.9M / ~3.4M). Growth rates and the 1×1×1 stack are those of
HyperDenseNet and of the thesis-era code.

Input ``(N, C, D, H, W)`` with ``D`` the slice axis and one channel per modality (iSeg: T1, T2;
MRBrainS: T1, T1-IR, FLAIR). Every convolution is "same"-padded, so any patch size works and the
output ``(N, num_classes, D, H, W)`` (logits) has the input's size.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cmrlab.checks import check_int, check_number
from cmrlab.nn.blocks import check_dropout, check_model_input

__all__ = [
    "DenseNet3D",
    "DenseNet3DEarlyFusion",
    "DenseNet3DLateFusion",
    "GROWTH_RATES",
    "HEAD_CHANNELS",
    "THESIS_PARAMETERS",
    "densenet3d_single_path",
    "densenet3d_three_stream_early_fusion",
    "densenet3d_two_stream_early_fusion",
    "densenet3d_two_stream_late_fusion",
]

#: New channels of each of the 9 dense layers of a path (HyperDenseNet; thesis-era code).
GROWTH_RATES = (25, 25, 25, 50, 50, 50, 75, 75, 75)
#: Output channels of the three 1×1×1 convolutions between the dense block and the classifier.
HEAD_CHANNELS = (400, 200, 150)
#: Table 1 of the brain thesis (L3330-3355), by builder name.
THESIS_PARAMETERS = {
    "densenet3d_single_path": 2_700_000,
    "densenet3d_two_stream_late_fusion": 5_200_000,
    "densenet3d_two_stream_early_fusion": 2_900_000,
    "densenet3d_three_stream_early_fusion": 3_400_000,
}


def _scaled(channels: Sequence[int], width: float) -> list[int]:
    """``round(c · width)`` for each channel count, at least 1."""
    return [max(1, round(c * width)) for c in channels]


def _bn_relu_conv(in_channels: int, out_channels: int, kernel_size: int, *, dropout: float = 0.0,
                  bias: bool = False) -> nn.Sequential:
    """Pre-activation unit ``BN → ReLU → [Dropout] → Conv`` ("same" padding)."""
    layers: list[nn.Module] = [nn.BatchNorm3d(in_channels), nn.ReLU(inplace=True)]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Conv3d(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                            bias=bias))
    return nn.Sequential(*layers)


class _DenseLayer(nn.Module):
    """``[x, Conv3³(ReLU(BN(x)))]``: the layer's new channels are appended to its input."""

    def __init__(self, in_channels: int, growth: int) -> None:
        super().__init__()
        self.unit = _bn_relu_conv(in_channels, growth, 3)
        self.out_channels = in_channels + growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.unit(x)], dim=1)


def _dense_block(in_channels: int, growths: Sequence[int]) -> nn.Sequential:
    """Dense layers in a row: layer ``i`` sees the input and every earlier layer's output."""
    layers, c = [], in_channels
    for g in growths:
        layers.append(_DenseLayer(c, g))
        c += g
    block = nn.Sequential(*layers)
    block.out_channels = c
    return block


def _pointwise_stack(in_channels: int, widths: Sequence[int], dropout: float) -> nn.Sequential:
    """The 1×1×1 convolutions after the dense block (400 → 200 → 150), pre-activated; dropout
    on the input of all but the first."""
    units, c = [], in_channels
    for i, w in enumerate(widths):
        units.append(_bn_relu_conv(c, w, 1, dropout=dropout if i else 0.0))
        c = w
    return nn.Sequential(*units)


def _classifier(in_channels: int, num_classes: int, dropout: float) -> nn.Sequential:
    """``BN → ReLU → Dropout → Conv 1×1×1`` with bias, to one channel per class."""
    return _bn_relu_conv(in_channels, num_classes, 1, dropout=dropout, bias=True)


class _DenseNet3DBase(nn.Module):
    """Argument checks, input checks and the shared widths of the family."""

    def __init__(self, in_channels: int, num_classes: int, width: float, dropout: float,
                 min_inputs: int) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, min_inputs)
        self.num_classes = check_int("num_classes", num_classes, 1)
        self.width = check_number("width", width, 0.0, low_open=True)
        self.dropout = check_dropout(dropout)
        self.growths = _scaled(GROWTH_RATES, self.width)
        self.head_channels = _scaled(HEAD_CHANNELS, self.width)

    def _check_input(self, x: torch.Tensor) -> None:
        check_model_input(x, in_channels=self.in_channels)


class DenseNet3D(_DenseNet3DBase):
    """Single-path 3D DenseNet ("3D-Densenet" of the thesis, 1-3 modalities as channels).

    ``x`` (``in_channels``) → dense block of 9 layers ``BN → ReLU → Conv 3³`` adding 25, 25, 25,
    50, 50, 50, 75, 75, 75 channels (``in_channels + 450`` at the end) → three pre-activated
    1×1×1 convolutions to 400, 200, 150 channels → 1×1×1 classifier to ``num_classes``.
    Dropout (``dropout``) acts on the inputs of the last two 1×1×1 convolutions and of the
    classifier. The receptive field is 19³ voxels (nine 3³ convolutions).

    Parameters (1 input, 4 classes): **2 687 649** here, thesis Table 1 "~2.7M" (−0.5 %). The
    thesis-era code counts 2 685 243: it has no BN before the 1×1×1 convolutions (2 402
    parameters here) and no bias in the classifier (4). 2 inputs: 2 700 219; 3 inputs:
    2 712 789.

    Choices the sources leave open, marked [choice]:

    - [choice] growth rates and the 400/200/150 stack from HyperDenseNet and the thesis-era
      code (the thesis gives none).
    - [choice] pre-activation ``BN → ReLU → Conv`` for *every* convolution, as in HyperDenseNet
      and DenseNet; the thesis-era code stacks its three 1×1×1 convolutions with no
      normalisation and no non-linearity, which collapses them into one linear map.
    - [choice] dropout 0.2 (the thesis-era value; later code uses 0.5, and the thesis notes that
      DenseNets "need higher dropout", L3454-3456), element-wise, placed before each
      convolution it protects (after BN, so BN never sees dropout's train/eval shift).
    - [choice] "same" padding (as the thesis-era code) instead of HyperDenseNet's unpadded
      convolutions (27³ → 9³ outputs), so the output has the patch's size.
    - [choice] convolutions without bias (BN follows them); classifier with bias.
    - [choice] torch's BN defaults and default weight initialisation.

    Args:
        in_channels: modalities stacked as channels (1-3 in the thesis).
        num_classes: output channels, background included (4: background, CSF, GM, WM).
        width: multiplies every growth rate and 1×1×1 width (rounded, at least 1); 1.0 is the
            thesis's network, the ``fast`` profile uses e.g. 0.2.
        dropout: dropout probability before the last three 1×1×1 convolutions.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 4, *, width: float = 1.0,
                 dropout: float = 0.2) -> None:
        super().__init__(in_channels, num_classes, width, dropout, min_inputs=1)
        self.block = _dense_block(self.in_channels, self.growths)
        self.head = _pointwise_stack(self.block.out_channels, self.head_channels, self.dropout)
        self.classifier = _classifier(self.head_channels[-1], self.num_classes, self.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self.classifier(self.head(self.block(x)))


class DenseNet3DLateFusion(_DenseNet3DBase):
    """Multi-stream 3D DenseNet with late fusion: one full path per modality.

    Each modality (one input channel) goes through its own path, built like
    :class:`DenseNet3D` up to the 150-channel features (9 dense layers, 1×1×1 convolutions to
    400, 200, 150); the paths' features are concatenated (``150 · in_channels``) and "fed to the
    1x1x1 classifier" (thesis L2552-2570). The paths share no weights.

    Parameters (2 modalities, 4 classes): **5 375 294** here, thesis Table 1 "~5.2M" (+3.4 %).
    The thesis-era code (``DualPathDenseNet``) meant to use the 8-layer block of the early-fusion
    model in each stream, which gives 4 774 582 (−8.2 %) but fails to build there (a hard-coded
    channel count); with 9-layer paths it counts 5 370 486. [choice] full 9-layer paths: the
    late-fusion network is then exactly "one single-path network per modality", and the closer
    count to Table 1.

    Other choices as in :class:`DenseNet3D`.

    Args:
        in_channels: number of modalities, one path each (2 in the thesis; at least 2).
        num_classes: output channels, background included.
        width: multiplies every growth rate and 1×1×1 width (see :class:`DenseNet3D`).
        dropout: dropout probability (see :class:`DenseNet3D`).
    """

    def __init__(self, in_channels: int = 2, num_classes: int = 4, *, width: float = 1.0,
                 dropout: float = 0.2) -> None:
        super().__init__(in_channels, num_classes, width, dropout, min_inputs=2)
        self.paths = nn.ModuleList()
        for _ in range(self.in_channels):
            block = _dense_block(1, self.growths)
            self.paths.append(nn.Sequential(
                block, _pointwise_stack(block.out_channels, self.head_channels, self.dropout)))
        self.classifier = _classifier(self.in_channels * self.head_channels[-1],
                                      self.num_classes, self.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        features = [path(x[:, m:m + 1]) for m, path in enumerate(self.paths)]
        return self.classifier(torch.cat(features, dim=1))


class DenseNet3DEarlyFusion(_DenseNet3DBase):
    """Multi-stream 3D DenseNet with early fusion ("2stream"/"3stream-3D-Densenet").

    Each modality has its own first dense layer (``BN → ReLU → Conv 3³``, 1 → 25 channels,
    appended to the modality: 26 channels); the streams are concatenated (``26 · in_channels``)
    and go through one path: 8 dense layers adding the remaining growth rates 25, 25, 50, 50,
    50, 75, 75, 75, then the 1×1×1 stack 400/200/150 and the classifier. So every modality
    sees the same 9 growth rates as in :class:`DenseNet3D`, and the fusion happens after the
    "first 3D convolutional" layer (thesis L2571-2581).

    Parameters (4 classes): **2 997 544** for 2 modalities, thesis Table 1 "~2.9M" (+3.4 %);
    **3 307 439** for 3 modalities, thesis "~3.4M" (−2.7 %). The thesis-era code
    (``DualSingleDensenet``) counts 2 995 086 and 3 304 929 (no BN in the 1×1×1 stack, no
    classifier bias; see :class:`DenseNet3D`), and its 2-input version reuses the first
    modality's layer for the second (a bug, not copied).

    Other choices as in :class:`DenseNet3D`.

    Args:
        in_channels: number of modalities (2 or 3 in the thesis; at least 2).
        num_classes: output channels, background included.
        width: multiplies every growth rate and 1×1×1 width (see :class:`DenseNet3D`).
        dropout: dropout probability (see :class:`DenseNet3D`).
    """

    def __init__(self, in_channels: int = 2, num_classes: int = 4, *, width: float = 1.0,
                 dropout: float = 0.2) -> None:
        super().__init__(in_channels, num_classes, width, dropout, min_inputs=2)
        first, rest = self.growths[0], self.growths[1:]
        self.streams = nn.ModuleList(_DenseLayer(1, first) for _ in range(self.in_channels))
        self.block = _dense_block(self.in_channels * (1 + first), rest)
        self.head = _pointwise_stack(self.block.out_channels, self.head_channels, self.dropout)
        self.classifier = _classifier(self.head_channels[-1], self.num_classes, self.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        fused = torch.cat([stream(x[:, m:m + 1]) for m, stream in enumerate(self.streams)], dim=1)
        return self.classifier(self.head(self.block(fused)))


def densenet3d_single_path(in_channels: int = 1, num_classes: int = 4, *, width: float = 1.0,
                           dropout: float = 0.2) -> DenseNet3D:
    """"3D-Densenet": :class:`DenseNet3D` (2 687 649 parameters for 1 input; thesis ~2.7M)."""
    return DenseNet3D(in_channels, num_classes, width=width, dropout=dropout)


def densenet3d_two_stream_late_fusion(num_classes: int = 4, *, width: float = 1.0,
                                      dropout: float = 0.2) -> DenseNet3DLateFusion:
    """"2stream-3D-Densenet (late fusion)": :class:`DenseNet3DLateFusion` on 2 modalities
    (5 375 294 parameters; thesis ~5.2M)."""
    return DenseNet3DLateFusion(2, num_classes, width=width, dropout=dropout)


def densenet3d_two_stream_early_fusion(num_classes: int = 4, *, width: float = 1.0,
                                       dropout: float = 0.2) -> DenseNet3DEarlyFusion:
    """"2stream-3D-Densenet (early fusion)": :class:`DenseNet3DEarlyFusion` on 2 modalities
    (2 997 544 parameters; thesis ~2.9M)."""
    return DenseNet3DEarlyFusion(2, num_classes, width=width, dropout=dropout)


def densenet3d_three_stream_early_fusion(num_classes: int = 4, *, width: float = 1.0,
                                         dropout: float = 0.2) -> DenseNet3DEarlyFusion:
    """"3stream-3D-Densenet (early fusion)": :class:`DenseNet3DEarlyFusion` on 3 modalities
    (3 307 439 parameters; thesis ~3.4M)."""
    return DenseNet3DEarlyFusion(3, num_classes, width=width, dropout=dropout)
