"""The 3D U-Net of the cardiac thesis, chapter 5 (LV cavity, LV myocardium, RV cavity).

Source: cardiac thesis (bibliography key ``cardiacthesis``) §5.3.2, L3690-3721 (Fig. 5.3), a Keras
model rebuilt in PyTorch (BN momentum and epsilon carried over as Keras defines them).
"""
from __future__ import annotations

import torch

from cmrlab.checks import check_bool, check_int
from cmrlab.nn.blocks import DoubleConv, UpConv, check_model_input
from cmrlab.nn.models.unet_trunk import UNetTrunk, doubling_widths

__all__ = ["THESIS_PARAMETERS", "CardiacUNet3D"]

#: Parameter count printed by the thesis (L3702: "87.51 million parameters").
THESIS_PARAMETERS = 87_510_000


class CardiacUNet3D(UNetTrunk):
    """3D U-Net for 3-slice short-axis windows, pooling only in the image plane.

    Input ``(N, C, D, H, W)``: ``C = in_channels`` (1, the cine magnitude), ``D`` the slice
    axis (3 adjacent slices in the thesis, but any ``D ≥ 1`` works), ``H, W`` in-plane (176×176
    in the thesis; any size divisible by ``2**depth``). Output ``(N, num_classes, D, H, W)``:
    logits by default; ``softmax=True`` applies the softmax over classes that the thesis's last
    layer has (leave it off for training with losses that take logits).

    Architecture (thesis L3690-3702: "3×3×3 convolutions with ReLU activation functions and batch
    normalization (BN) in each layer", 4 max-pool downsamplings and 4 transposed-convolution
    upsamplings, "downsampling only applied in the image plane", 176×176×3 input, softmax over
    4 channels):

    - level ``l = 0 … depth`` has ``base_filters · 2**l`` channels (64, 128, 256, 512, 1024);
      each level is two ``Conv 3×3×3 → ReLU → BN`` (Keras order: activation inside the
      convolution, then BN), "same" padding, so ``D`` never changes;
    - down: max pooling ``(1, 2, 2)`` (= Keras 2×2×1); up: transposed convolution ``(1, 2, 2)``,
      kernel = stride, halving the channels; skip connections concatenate;
    - head: a 1×1×1 convolution to ``num_classes`` (background, LV cavity, LV myocardium, RV
      cavity).

    Choices the source leaves open, marked [choice]:

    - [choice] channel counts 64→1024, two convolutions per level, concatenation skips and a
      1×1×1 head: the textbook U-Net; Fig. 5.3 (which holds the numbers) is not in the text.
      This build has exactly 87 519 364 trainable parameters, the thesis prints "87.51
      million", i.e. 87.519 M cut to two decimals (the thesis's PSPU-net count reads the same
      way, see :mod:`cmrlab.nn.models.pspunet`). Keras's summary would add 11 776
      non-trainable BN moving means/variances (buffers here) for 87 531 140 in total.
    - [choice] the transposed convolutions have a bias and no BN/activation (Keras's
      ``Conv3DTranspose`` default); BN on them would add 1 920 parameters (87.52 M).
    - [choice] BN uses Keras's defaults ported to torch: ``momentum=0.01, eps=1e-3``.
    - [choice] torch's default weight initialisation (Keras uses Glorot-uniform).
    - [choice] the softmax is optional and off by default (logits out).

    ``base_filters`` scales every width (the fast profile uses e.g. 8); ``depth`` the number of
    poolings (4 in the thesis). The encoder and decoder are the shared
    :class:`~cmrlab.nn.models.unet_trunk.UNetTrunk` (``encode``/``decode``/``features``).
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 4,
        base_filters: int = 64,
        depth: int = 4,
        *,
        softmax: bool = False,
        bn_momentum: float = 0.01,
        bn_eps: float = 1e-3,
    ) -> None:
        num_classes = check_int("num_classes", num_classes)
        softmax = check_bool("softmax", softmax)
        widths = doubling_widths(base_filters, depth)
        conv = dict(kernel_size=3, order="conv-act-bn", bn_momentum=bn_momentum, bn_eps=bn_eps)
        super().__init__(
            3, in_channels, num_classes, widths,
            block=lambda c_in, c_out: DoubleConv(3, c_in, c_out, **conv),
            up=lambda c_in, c_out: UpConv(3, c_in, c_out, (1, 2, 2)),
            pool_size=(1, 2, 2),
        )
        self.num_classes = num_classes
        self.base_filters = widths[0]
        self.softmax = softmax

    def _check_input(self, x: torch.Tensor) -> None:
        check_model_input(x, in_channels=self.in_channels, poolings=self.depth, poolings_name="depth",
                          in_plane_only=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        x = self.logits(x)
        return torch.softmax(x, dim=1) if self.softmax else x
