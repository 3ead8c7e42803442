"""FrameDetector: end-systole / end-diastole detection with temporal dilated convolutions (cardiac ch. 7).

The cardiac thesis (``cardiacthesis``, chapter 7, L5678-5760, Fig 7.3) labels every
frame of a cine sequence as ES, ED or "background" with a fully convolutional network that
replaces recurrent layers by dilated convolutions along time (after WaveNet). Frame
classification becomes a 1D segmentation of the time axis, so the per-frame probabilities can be
trained with the weighted CE of Eq. 7.1 or the weighted Dice loss of Eq. 7.2
(:mod:`cmrlab.nn.losses`), and a single ES and ED frame is then picked by the naïve or central
method (:mod:`cmrlab.nn.metrics`).

Tensor layout: ``(N, C, T, H, W)`` with **T = frames** on torch's depth axis (any number ≥ 1;
35 in most thesis cases), H = W = 176 pixels of 1×1 mm. Each frame is one 2D image: the thesis
reduces the 4D cine to 3D by a median projection over the slices (2nd to penultimate), so the
model accepts any number of slices, a single slice included; that projection is preprocessing
and is not part of this module.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cmrlab.checks import check_int, check_int_tuple, check_number
from cmrlab.errors import ArgumentError
from cmrlab.nn.blocks import ConvBNAct, check_model_input

__all__ = ["FrameDetector"]

# Keras BatchNormalization defaults (momentum 0.99 on the running mean, epsilon 1e-3) in torch
# terms, and the Keras layer order Conv3D(activation="relu") → BatchNormalization.
BN_MOMENTUM = 0.01
BN_EPS = 1e-3
_KERAS_CONV = {"bn_momentum": BN_MOMENTUM, "bn_eps": BN_EPS, "order": "conv-act-bn"}


class FrameDetector(nn.Module):
    """Per-frame ES / ED / background classifier of the cardiac thesis (ch. 7, L5678-5760).

    Input ``x``: (N, in_channels, T, H, W) with **T = frames** (any number ≥ 1) and
    ``H = W = image_size`` (176). Output: (N, 3, T) per-frame probabilities in the order
    :attr:`classes` = ``("ES", "ED", "background")``, summing to 1 over the class axis (or the
    logits before the softmax with ``return_logits=True``, for losses that take logits).

    >>> model = FrameDetector(base_filters=4)  # the thesis build is base_filters=64
    >>> probs = model(torch.rand(1, 1, 35, 176, 176))  # 35 frames
    >>> tuple(probs.shape), bool(torch.allclose(probs.sum(dim=1), torch.ones(1, 35)))
    ((1, 3, 35), True)

    1. **Spatial block**, every frame on its own: ``levels`` (4) levels of two 2D convolutions
       (3×3×1 in the thesis's Keras terms = ``Conv3d`` kernel (1, 3, 3) here), each followed by
       ReLU and batch norm, then 2×2 max pooling; channels 64 → 128 → 256 → 512, size
       176 → 88 → 44 → 22 → 11. A 1×1×1 convolution collapses the channels to one 11×11 map per
       frame.
    2. **Spatio-temporal dilated block**: 9 parallel paths, kernels 3×3×{3, 5, 7} (time last in
       the thesis; (k, 3, 3) here) × temporal dilations {1, 2, 4}, each one convolution → ReLU →
       batch norm with **one** output channel. The temporal receptive field of a path is
       ``RF = 1 + (k − 1)·d`` frames: 3, 5, 9, 5, 9, 17, 7, 13, 25 (:attr:`temporal_receptive_fields`).
    3. The 9 path outputs are concatenated with the block's input (skip connection, 10 channels)
       and an 11×11×1 convolution (kernel (1, 11, 11), no padding) maps each frame's 11×11×10
       features to 3 scores, followed by a softmax over the classes.

    Parameter count: **4 692 642** at the default width, the thesis's "4.7 million" (L5751-5753;
    the 64-channel start is inferred from that count: 32 would give 1 177 922).

    Design choices the thesis leaves open ([choice]):

    - [choice] conv → ReLU → batch norm order, as written ("each convolution is always followed
      by a batch normalization layer", L5694); batch norm with Keras's defaults (torch
      ``momentum=0.01``, ``eps=1e-3``); every convolution keeps its bias.
    - [choice] the 1×1×1 collapse is linear (no activation, no batch norm): the text names none,
      and a ReLU on a single channel could silence the whole temporal block.
    - [choice] "same" zero padding along time and space in the dilated paths (Keras's usual
      padding) by default; ``temporal_padding="circular"`` pads time with the other end of the
      sequence instead: a cine is one cardiac cycle that repeats (the premise of the thesis's
      circular temporal-shift augmentation), so frame 0 follows frame T − 1. With a random
      trigger delay (ED on any frame) an event near either end then sees its whole neighbourhood
      instead of zeros.
    - ``head="frames"`` is the thesis's own future-work idea (L6842-6849) in its simplest form
      (without the extra 1D convolution it mentions): the ES and ED scores
      become two distributions *across the frames* (a softmax over time, output (N, 2, T)), so
      there is exactly one ES and one ED frame per sequence and no background class; train it
      with :func:`cmrlab.nn.losses.frame_cross_entropy`. ``head="classes"`` (the thesis) is the
      per-frame softmax over (ES, ED, background).
    - [choice] the final 11×11×1 convolution has no padding ("valid"), so it collapses the 11×11
      map to one vector per frame; its kernel is ``image_size / 2**levels`` for other sizes.
    - [choice] the skip concatenation order is [9 paths, block input]; it changes no count.
    - [choice] torch's default weight initialisation (Keras would use Glorot-uniform).

    Args:
        in_channels: channels per frame (1: the median projection).
        base_filters: channels of the first level, doubled at each level (64 in the thesis
            build; e.g. 4-8 for the ``fast`` profile).
        levels: number of conv-conv-pool levels (4).
        image_size: in-plane size H = W of the input (176); must be divisible by ``2**levels``.
        kernel_sizes: temporal kernel sizes of the dilated paths (3, 5, 7), odd.
        dilations: temporal dilation rates of the dilated paths (1, 2, 4).
        temporal_padding: ``"zeros"`` (the thesis's Keras "same") or ``"circular"``.
        head: ``"classes"`` (per-frame softmax over ES, ED, background; the thesis) or
            ``"frames"`` (softmax over the frames for ES and for ED; its future work).
        bn_momentum: torch's batch-norm momentum (Keras's 0.99 is 0.01, the default; short
            CPU runs need e.g. 0.1 for the running statistics to settle).
    """

    classes: tuple[str, ...] = ("ES", "ED", "background")

    def __init__(
        self,
        in_channels: int = 1,
        base_filters: int = 64,
        levels: int = 4,
        image_size: int = 176,
        kernel_sizes: Sequence[int] = (3, 5, 7),
        dilations: Sequence[int] = (1, 2, 4),
        temporal_padding: str = "zeros",
        head: str = "classes",
        bn_momentum: float = BN_MOMENTUM,
    ) -> None:
        super().__init__()
        if temporal_padding not in ("zeros", "circular"):
            raise ArgumentError(f"temporal_padding must be 'zeros' or 'circular', got {temporal_padding!r}")
        if head not in ("classes", "frames"):
            raise ArgumentError(f"head must be 'classes' or 'frames', got {head!r}")
        self.temporal_padding, self.head = temporal_padding, head
        if head == "frames":
            self.classes = ("ES", "ED")
        conv = {**_KERAS_CONV, "bn_momentum": check_number("bn_momentum", bn_momentum, 0.0, 1.0)}
        self.in_channels = check_int("in_channels", in_channels)
        self.base_filters = check_int("base_filters", base_filters)
        self.levels = check_int("levels", levels)
        self.image_size = check_int("image_size", image_size)
        factor = 2**self.levels
        if self.image_size % factor:
            raise ArgumentError(
                f"image_size must be divisible by 2**levels = {factor} (levels {self.levels}), "
                f"got {self.image_size}"
            )
        self.feature_size = self.image_size // factor
        self.kernel_sizes = check_int_tuple("kernel_sizes", kernel_sizes, odd=True)
        self.dilations = check_int_tuple("dilations", dilations)

        layers: list[nn.Module] = []
        channels = self.in_channels
        for level in range(self.levels):
            width = self.base_filters * 2**level
            layers.append(ConvBNAct(3, channels, width, (1, 3, 3), **conv))
            layers.append(ConvBNAct(3, width, width, (1, 3, 3), **conv))
            layers.append(nn.MaxPool3d(kernel_size=(1, 2, 2)))
            channels = width
        self.encoder = nn.Sequential(*layers)
        self.collapse = nn.Conv3d(channels, 1, kernel_size=1)
        # "same" padding: (k − 1)·d / 2 frames on each side (zeros, or done in forward when
        # circular), one pixel in plane
        circular = temporal_padding == "circular"
        self.temporal_paths = nn.ModuleList(
            ConvBNAct(3, 1, 1, (k, 3, 3), dilation=(d, 1, 1),
                      padding=(0 if circular else (k - 1) * d // 2, 1, 1), **conv)
            for k in self.kernel_sizes
            for d in self.dilations
        )
        self.classifier = nn.Conv3d(
            len(self.temporal_paths) + 1,
            len(self.classes),
            kernel_size=(1, self.feature_size, self.feature_size),
        )

    @property
    def path_settings(self) -> tuple[tuple[int, int], ...]:
        """``(kernel, dilation)`` along time of each dilated path, in :attr:`temporal_paths` order."""
        return tuple((k, d) for k in self.kernel_sizes for d in self.dilations)

    @property
    def temporal_receptive_fields(self) -> tuple[int, ...]:
        """Frames seen by each dilated path: ``1 + (k − 1)·d`` (3 … 25 for the thesis build)."""
        return tuple(1 + (k - 1) * d for k, d in self.path_settings)

    def extra_repr(self) -> str:
        return (
            f"image_size={self.image_size}, levels={self.levels}, base_filters={self.base_filters}, "
            f"paths={self.path_settings}, temporal_padding={self.temporal_padding!r}, head={self.head!r}"
        )

    def _check_input(self, x: torch.Tensor) -> None:
        check_model_input(x, in_channels=self.in_channels,
                          layout="(N, C, T, H, W) with T = frames")
        if tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            raise ArgumentError(
                f"x's frames must be {self.image_size}×{self.image_size} (image_size), got "
                f"{x.shape[-2]}×{x.shape[-1]}; resample and crop/pad first"
            )

    def _path(self, path: nn.Module, k: int, d: int, features: torch.Tensor) -> torch.Tensor:
        if self.temporal_padding == "circular":
            pad, n = (k - 1) * d // 2, features.shape[2]
            index = torch.arange(-pad, n + pad, device=features.device) % n   # any T, even T < pad
            features = features.index_select(2, index)
        return path(features)

    def forward(self, x: torch.Tensor, return_logits: bool = False) -> torch.Tensor:
        """Per-frame class probabilities (N, 3, T) of ``x`` (N, C, T, H, W) — with
        ``head="frames"``, the ES and ED distributions over the frames (N, 2, T) — or the logits."""
        self._check_input(x)
        features = self.collapse(self.encoder(x))  # (N, 1, T, s, s), s = image_size / 2**levels
        paths = [self._path(path, k, d, features) for (k, d), path in zip(self.path_settings, self.temporal_paths)]
        stacked = torch.cat([*paths, features], dim=1)
        logits = self.classifier(stacked)[..., 0, 0]  # (N, classes, T)
        if return_logits:
            return logits
        return logits.softmax(dim=2 if self.head == "frames" else 1)
