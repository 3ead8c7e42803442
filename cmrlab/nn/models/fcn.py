"""The small fully convolutional network of the explainable-LV paper (Liu et al.).

Source: "An explainable convolutional neural network for automatic segmentation of the left
ventricle in cardiac MRI" (bibliography key ``liu2021explainable``), L74–104. The paper turns a
classification network into an FCN by replacing its fully connected layers with a transposed
convolution, and lists the layers
(L89–96):

1. conv1, 5×5, stride 2  2. max-pool 2×2, stride 2  3. conv2, 5×5, stride 2
4. max-pool 2×2, stride 2  5. conv3, 3×3, stride 1  6. conv4, 3×3, stride 1
7. score_classes, 1×1, stride 1  8. upscore (transposed convolution), 31×31, stride 16

on a 256 × 256 × 1 input (Sunnybrook short-axis slices) with a 256 × 256 × 2 output (LV / not
LV). After conv1 + pool1 the side is 1/4 of the input (64), after conv2 + pool2 1/16 (16).
Input layout ``(N, C, H, W)``, one short-axis slice per sample; ``H`` and ``W`` multiples of 16.

**Channel counts** are not in the paper. We use **100, 200, 300, 300**, those of the NVIDIA Deep
Learning Institute lab "Introduction to image segmentation with TensorFlow" (Sunnybrook LV,
2016; bibliography key ``nvidia2016dlisegmentation``), on which the paper's DIGITS-based
workflow appears to build. The lab's code, as published in the GitHub repository
``jnbntz/gpu-edu-workshops`` (``exercises/tf/segmentation/*/neuralnetwork.py``, NVIDIA
copyright header, Apache-2.0), has
exactly the paper's eight layers with 100/200/300/300 filters, a 1×1 score layer to 2 classes
and a 31×31, stride-16 ``upscore`` to 256 × 256 × 2. That the paper's authors kept these counts
is an assumption: the paper neither confirms nor denies it.

Parameter count (1 input channel, 2 classes, 100/200/300/300): **1 857 846** with per-channel
biases (our default), 1 856 944 with ``bias=False`` (the lab's plain version, which has no
biases at all). The paper gives no count.

**Output size.** A 31×31 transposed convolution of stride 16 maps the 16 × 16 score map to
``(16 − 1)·16 + 31 = 271`` pixels; we crop it to 256. [choice] The crop is placed so that the
upsampling kernel of each coarse pixel is centred on that pixel's receptive-field centre, as the
``Crop`` layer of Long et al.'s FCN (``long2015fcn``) does: the receptive field of coarse pixel
``m`` is centred on input pixel ``16·m + 5`` (computed with
:func:`cmrlab.nn.receptive_field.receptive_field_of`), its kernel on output pixel ``16·m + 15``,
so we keep pixels ``10 … 265`` (10 cropped on the top/left, 5 on the bottom/right). The lab's
TensorFlow ``padding="SAME"`` keeps ``7 … 262`` instead; the learned kernel absorbs either
offset, but only the centred crop makes the bilinear start exact.

Design choices the source leaves open, marked [choice]:

* [choice] zero padding 2 for the 5×5 and 1 for the 3×3 convolutions (torch's symmetric version
  of TensorFlow's ``"SAME"``: the same map sizes; our stride-2 windows start one pixel further
  up/left than the lab's, which pads 1 before and 2 after);
* [choice] ReLU after conv1–conv4, none after the score layer (as in the lab); no dropout (the
  lab's dropout keeps everything, ``keep_prob = 1``);
* [choice] per-channel biases in conv1–conv4 and the score layer (``bias=True``), none in the
  upscore layer (as in the lab and in Long et al.);
* [choice] the upscore weights start as bilinear interpolation (class ``c`` → class ``c``,
  Long et al.'s initialisation; for a 31×31 kernel of stride 16 the tent ``1 − |x − 15|/16``
  sums to exactly 1 over overlapping kernels) and are learned; the other layers use torch's
  default initialisation (the lab draws every weight from a truncated normal, std 0.1);
* [choice] ``width`` scales the four channel counts for the ``fast`` profile.

``forward(x, return_features=True)`` also returns the hidden maps the paper visualises
(activations after the ReLU): ``conv1``, ``pool1``, ``conv2``, ``pool2``, ``conv3``, ``conv4``,
``score`` and ``upscore`` (= the logits).
"""
from __future__ import annotations

import numbers
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from cmrlab.errors import ArgumentError
from cmrlab.nn.receptive_field import receptive_field_of

__all__ = ["FEATURE_NAMES", "ExplainableFCN", "bilinear_kernel"]

#: Names of the hidden maps returned by ``ExplainableFCN.forward(x, return_features=True)``.
FEATURE_NAMES = ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "score", "upscore")


def bilinear_kernel(size: int) -> torch.Tensor:
    """A ``size × size`` bilinear-interpolation kernel for a transposed convolution.

    With ``f = ⌈size/2⌉`` and centre ``c = f − 1`` (odd size) or ``f − 1/2`` (even size), the
    kernel is ``w(x, y) = (1 − |x − c|/f)·(1 − |y − c|/f)``; as the weights of a transposed
    convolution of stride ``f`` it interpolates linearly between the input pixels (Long et al.'s
    FCN initialisation). ``bilinear_kernel(31)`` goes with stride 16.
    """
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
        raise ArgumentError(f"size must be a positive integer, got {size!r}")
    factor = (size + 1) // 2
    centre = factor - 1 if size % 2 == 1 else factor - 0.5
    x = torch.arange(size, dtype=torch.float64)
    tent = 1 - (x - centre).abs() / factor
    return torch.outer(tent, tent).float()


class ExplainableFCN(nn.Module):
    """The explainable LV-segmentation FCN of Liu et al.; see the module docstring.

    Args:
        in_channels: channels of the input slice (1 for Sunnybrook cine).
        num_classes: output channels (2 in the paper: not LV, LV).
        channels: filters of conv1–conv4 (default 100, 200, 300, 300, see the module docstring).
        width: multiplier of ``channels`` (e.g. 0.25 for the ``fast`` profile).
        bias: per-channel biases in conv1–conv4 and the score layer.

    Input ``(N, in_channels, H, W)`` with ``H`` and ``W`` multiples of 16 (256 in the paper);
    output ``(N, num_classes, H, W)`` logits.

    Attributes:
        crop: pixels cropped on the top/left of the 271-pixel upscore output (10).
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        channels: Sequence[int] = (100, 200, 300, 300),
        width: float = 1.0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = _positive_int("in_channels", in_channels)
        self.num_classes = _positive_int("num_classes", num_classes)
        is_sequence = isinstance(channels, Sequence) and not isinstance(channels, (str, bytes))
        if not is_sequence or len(channels) != 4:
            raise ArgumentError(f"channels must be four integers (conv1–conv4), got {channels!r}")
        channels = [_positive_int("channels", c) for c in channels]
        if isinstance(width, bool) or not isinstance(width, numbers.Real) or width <= 0:
            raise ArgumentError(f"width must be a positive number, got {width!r}")
        c1, c2, c3, c4 = (max(1, round(c * width)) for c in channels)
        self.channels = (c1, c2, c3, c4)
        bias = bool(bias)

        k = self.num_classes
        self.features = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(self.in_channels, c1, 5, stride=2, padding=2, bias=bias)),
            ("relu1", nn.ReLU(inplace=True)),
            ("pool1", nn.MaxPool2d(2)),
            ("conv2", nn.Conv2d(c1, c2, 5, stride=2, padding=2, bias=bias)),
            ("relu2", nn.ReLU(inplace=True)),
            ("pool2", nn.MaxPool2d(2)),
            ("conv3", nn.Conv2d(c2, c3, 3, padding=1, bias=bias)),
            ("relu3", nn.ReLU(inplace=True)),
            ("conv4", nn.Conv2d(c3, c4, 3, padding=1, bias=bias)),
            ("relu4", nn.ReLU(inplace=True)),
            ("score", nn.Conv2d(c4, k, 1, bias=bias)),
        ]))
        self.upscore = nn.ConvTranspose2d(k, k, 31, stride=16, bias=False)

        # Centre each coarse pixel's kernel (centre at 15) on its receptive-field centre.
        centre = receptive_field_of(self.features)[-1].centre(0)  # 5.0 input pixels
        self.stride = 16
        self.crop = (self.upscore.kernel_size[0] - 1) // 2 - int(centre)
        self.reset_upscore()

    def reset_upscore(self) -> None:
        """Set the upscore weights to bilinear interpolation, class ``c`` to class ``c``."""
        with torch.no_grad():
            self.upscore.weight.zero_()
            kernel = bilinear_kernel(self.upscore.kernel_size[0]).to(self.upscore.weight.device)
            for c in range(self.num_classes):
                self.upscore.weight[c, c] = kernel

    def forward(self, x: torch.Tensor, return_features: bool = False):
        """Logits ``(N, num_classes, H, W)``; with ``return_features=True`` the pair
        ``(logits, features)``, ``features`` a dict ``name → tensor`` over ``FEATURE_NAMES``
        (conv maps after their ReLU)."""
        if x.dim() != 4:
            raise ArgumentError(
                f"ExplainableFCN expects a (N, C, H, W) tensor, got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise ArgumentError(
                f"ExplainableFCN was built for {self.in_channels} input channel(s), "
                f"got {x.shape[1]}"
            )
        height, width = x.shape[-2:]
        if height % self.stride or width % self.stride or height == 0 or width == 0:
            raise ArgumentError(
                f"ExplainableFCN needs H and W that are positive multiples of 16 (two stride-2 "
                f"convolutions and two poolings), got {tuple(x.shape[-2:])}"
            )
        features: dict[str, torch.Tensor] = {}
        names = dict(conv1="relu1", conv2="relu2", conv3="relu3", conv4="relu4")
        wanted = {names.get(n, n): n for n in FEATURE_NAMES[:-1]}  # module → feature name
        for name, module in self.features.named_children():
            x = module(x)
            if return_features and name in wanted:
                features[wanted[name]] = x
        x = self.upscore(x)[..., self.crop : self.crop + height, self.crop : self.crop + width]
        if not return_features:
            return x
        features["upscore"] = x
        return x, features


def _positive_int(name: str, value: object) -> int:
    """``value`` as an int if it is an integer ``>= 1``, else raise ArgumentError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ArgumentError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
