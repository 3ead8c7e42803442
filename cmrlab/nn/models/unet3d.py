"""3D U-Net after Çiçek et al. (MICCAI 2016), as described in the brain thesis.

Source: brain thesis (bibliography key ``brainthesis``) §3.7, L2482-2513 (architecture
in words, no channel counts), Table 1 L3298-3355 (``~10M`` parameters, 1-3 input channels);
and the thesis-era MedicalZooPytorch code. Channel counts are the paper's
(Çiçek et al. 2016, Fig. 2), whose parameter count (19 069 955) this build reproduces exactly.

Input ``(N, C, D, H, W)`` with ``D`` the slice axis: the thesis's 128×128×64 iSeg patch with
T1 and T2 is a tensor ``(N, 2, 64, 128, 128)``. Output ``(N, num_classes, D, H, W)`` logits.
"""
from __future__ import annotations

import torch
from torch import nn

from cmrlab.checks import check_bool, check_int
from cmrlab.nn.blocks import check_model_input
from cmrlab.nn.models.unet_trunk import UNetTrunk

__all__ = ["PAPER_PARAMETERS", "THESIS_PARAMETERS", "ShiftBatchNorm3d", "UNet3D"]

#: Table 1 of the brain thesis (L3330): 3D U-Net "~10M" parameters (see :class:`UNet3D`).
THESIS_PARAMETERS = 10_000_000
#: Çiçek et al. 2016, §2: "The architecture has 19069955 parameters in total" (3 inputs, 3 labels).
PAPER_PARAMETERS = 19_069_955


class ShiftBatchNorm3d(nn.BatchNorm3d):
    """Batch normalisation with a learned shift β but no learned scale γ.

    ``y = (x − μ) / √(σ² + ε) + β``, with ``μ, σ²`` the batch statistics in training and the
    running statistics in evaluation, as in :class:`torch.nn.BatchNorm3d`; one parameter per
    channel instead of two.

    Before a ReLU whose output feeds only linear layers (convolutions, up-convolutions, max
    pooling, concatenation), γ adds nothing: ``ReLU(γ·x̂ + β) = γ·ReLU(x̂ + β/γ)`` for γ > 0,
    and the following layer absorbs the factor γ; a negative γ is the same as flipping the sign
    of the preceding convolution's weights, since normalisation is odd (``BN(−z) = −BN(z)``).
    Keras offers the same option (``BatchNormalization(scale=False)``) for this reason.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum, affine=False)
        self.bias = nn.Parameter(torch.zeros(num_features))

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, shift only"


def _conv_bn_relu(in_channels: int, out_channels: int, bn_scale: bool) -> nn.Sequential:
    """``Conv 3³ (no bias) → BN → ReLU`` with "same" padding."""
    norm = nn.BatchNorm3d(out_channels) if bn_scale else ShiftBatchNorm3d(out_channels)
    return nn.Sequential(
        nn.Conv3d(in_channels, out_channels, 3, padding=1, bias=False),
        norm,
        nn.ReLU(inplace=True),
    )


def _two_convs(c_in: int, c_mid: int, c_out: int, bn_scale: bool) -> nn.Sequential:
    """Two :func:`_conv_bn_relu`, ``c_in → c_mid → c_out``: one resolution step."""
    level = nn.Sequential(_conv_bn_relu(c_in, c_mid, bn_scale), _conv_bn_relu(c_mid, c_out, bn_scale))
    level.out_channels = c_out  # what the U-Net trunk reads
    return level


class UNet3D(UNetTrunk):
    """3D U-Net of Çiçek et al. (2016): 4 resolution steps, BN before every ReLU.

    Architecture (thesis §3.7, L2482-2513): "an analysis and a synthesis path each with four
    resolution steps"; analysis: "two 3×3×3 convolutions each followed by a rectified linear
    unit (ReLu), and then a 2×2×2 max pooling with strides of two"; synthesis: "a transpose
    convolution of 2×2×2 by strides of two …, followed by two 3×3×3 convolutions each followed
    by a ReLu"; shortcut connections from the analysis path; "a 1×1×1 convolution reduces the
    number of output channels to the number of labels"; "Bottlenecks are avoided by doubling the
    number of channels already before max pooling"; "3D batch normalization is introduced before
    each ReLU". With ``f = base_filters`` (32 in the paper):

    - analysis level ``l = 0 … 3``: conv ``c_in → f·2^l``, conv ``f·2^l → f·2^(l+1)``
      (32-64, 64-128, 128-256, 256-512), each ``Conv 3³ → BN → ReLU``; max pooling 2³ between
      levels (3 poolings);
    - synthesis level ``l = 2, 1, 0``: up-conv 2³ stride 2 keeping the channels (512, 256,
      128), concatenation with the analysis level's output (``f·2^(l+1)`` channels), two
      ``Conv 3³ → BN → ReLU`` to ``f·2^(l+1)`` (256, 128, 64);
    - head: a 1×1×1 convolution with bias to ``num_classes``.

    The two paths are the shared :class:`~cmrlab.nn.models.unet_trunk.UNetTrunk` (widths
    ``f·2^(l+1)``, analysis blocks ``c_in → f·2^l → f·2^(l+1)``, up-convolutions that keep the
    channels). Each spatial size must be divisible by 8.

    Parameters: **exactly 19 069 955** for the paper's 3 input channels and 3 labels, the
    paper's own count. That count equals the convolution weights plus one learned value per
    normalised channel plus the head's bias; here the per-channel value is the BN shift β, with
    no conv bias in front of BN (BN's mean subtraction would cancel it) and no γ (see
    :class:`ShiftBatchNorm3d`: redundant before a ReLU feeding linear layers), and the
    up-convolutions have no bias, as the paper's count implies. ``bn_scale=True`` gives the
    textbook ``BatchNorm3d`` with γ and β instead: 2 336 more parameters (19 072 291), the same
    family of functions. For the thesis's settings, 4 classes: 19 068 292 (1 input), 19 069 156
    (2 inputs: iSeg T1+T2), 19 070 020 (3 inputs: MRBrainS T1, T1-IR, FLAIR).

    **Documented discrepancy:** Table 1 of the thesis says "~10M". That matches neither the
    Çiçek design the thesis describes (19.07 M) nor the thesis-era code's 3D U-Net, which was an
    Isensee-style network (instance norm, residual context blocks, 1.78 M parameters at its
    default base of 8 filters, in the thesis-era MedicalZooPytorch code). The thesis gives no channel counts; the
    course uses the paper's and reports 19.07 M.

    Choices the sources leave open, marked [choice]:

    - [choice] channel counts 32-64 / 64-128 / 128-256 / 256-512 from the paper's Fig. 2.
    - [choice] "same" padding (1 for 3³), so the output has the input's size and the thesis's
      128×128×64 patches fit; the paper uses unpadded convolutions (132×132×116 → 44×44×28).
    - [choice] no bias before BN, BN with shift only, bias-free up-convolutions (see above).
    - [choice] torch's BN defaults (momentum 0.1, eps 1e-5) and default weight initialisation:
      a PyTorch model, not a port of Caffe.
    - [choice] logits out; the softmax goes with the loss or the inference code.

    Args:
        in_channels: input modalities (1-3 in the thesis: T1; T1+T2; T1, T1-IR, FLAIR).
        num_classes: output channels, background included (4: background, CSF, GM, WM).
        base_filters: channels of the first convolution (32); the ``fast`` profile uses e.g. 4.
        bn_scale: use BN with scale and shift (``nn.BatchNorm3d``) instead of shift only.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 4,
        base_filters: int = 32,
        *,
        bn_scale: bool = False,
    ) -> None:
        num_classes = check_int("num_classes", num_classes, 1)
        f = check_int("base_filters", base_filters, 1)
        scale = check_bool("bn_scale", bn_scale)
        super().__init__(
            3, in_channels, num_classes, [f * 2 ** (level + 1) for level in range(4)],  # 4 resolution steps
            block=lambda c_in, c_out: _two_convs(c_in, c_out // 2, c_out, scale),  # analysis
            decoder_block=lambda c_in, c_out: _two_convs(c_in, c_out, c_out, scale),  # synthesis
            up=lambda c_in, _: nn.ConvTranspose3d(c_in, c_in, 2, stride=2, bias=False),  # keeps c
        )
        self.num_classes = num_classes
        self.base_filters = f

    def _check_input(self, x: torch.Tensor) -> None:
        check_model_input(x, in_channels=self.in_channels, poolings=self.depth,
                          why=f"the 3D U-Net pools {self.depth} times")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self.logits(x)
