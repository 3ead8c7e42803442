"""The classic ImageNet classifiers: AlexNet, VGG, GoogLeNet (Inception v1), ResNet, DenseNet.

These are the architectures the DLMI school lecture walks through before segmentation networks
(bibliography key ``dlmi2021fundamentals``, L260-L440). Each is built
as its paper describes it, for ImageNet-size inputs ``(N, 3, 224, 224)`` and 1000 classes, and
returns logits ``(N, num_classes)``. torchvision does not import beside this torch, so they are
written out here; the layer layouts follow torchvision's where torchvision follows the paper,
so the parameter counts equal torchvision's (listed in :data:`REFERENCE_PARAMETERS`):

- :func:`alexnet` (Krizhevsky et al. 2012): 5 convolutions (11×11 stride 4, 5×5, three 3×3),
  3 overlapping 3×3 max-poolings, 3 fully connected layers, ReLU and dropout. ``original=False``
  (default) is the single-tower layout of torchvision (64-192-384-256-256 filters, 61 100 840
  parameters); ``original=True`` is the paper's two-GPU network (96-256-384-384-256 filters,
  conv2/4/5 split into 2 groups, local response normalisation, 60 965 224 parameters). The paper
  says 224×224 inputs, but its 11×11 stride-4 unpadded first layer needs 227×227 to give the 55×55
  maps it draws; an adaptive average pooling to 6×6 before the classifier (an identity at 227² and
  at 224² for the padded torchvision layout) lets both accept any size from about 200 pixels.
- :func:`vgg` / :func:`vgg11` … :func:`vgg19` (Simonyan & Zisserman 2015): stacks of 3×3
  convolutions (padding 1) and 2×2 max-poolings, configurations A, B, D, E of the paper's
  Table 1 (11, 13, 16, 19 weight layers), optionally with batch normalisation; VGG16 has
  138 357 544 parameters.
- :func:`googlenet` (Szegedy et al. 2015): nine Inception modules, four parallel branches each
  (1×1; 1×1 → 3×3; 1×1 → 5×5; 3×3 max-pool → 1×1), the 1×1 convolutions acting as bottlenecks,
  global average pooling and one fully connected layer, plus two optional auxiliary classifiers.
  ``variant="paper"`` is the paper's network (convolutions with biases, local response
  normalisation, true 5×5 kernels, dropout 0.4): 6 998 552 parameters without the auxiliary
  classifiers. ``variant="torchvision"`` is torchvision's re-implementation (convolutions
  without bias followed by batch normalisation, no LRN, and — a quirk kept for its pretrained
  weights — a 3×3 kernel in the "5×5" branch, dropout 0.2): 6 624 904 parameters.
- :func:`resnet` / :func:`resnet18` … :func:`resnet152` (He et al. 2016): a 7×7 stem, four
  stages of residual blocks ``y = relu(F(x) + shortcut(x))`` — two 3×3 convolutions
  (basic block, ResNet-18/34) or 1×1 → 3×3 → 1×1 (bottleneck, ResNet-50/101/152, stride on
  the 3×3 as in torchvision's "v1.5") — and projection shortcuts (1×1 convolution + BN) where
  the shape changes. ResNet-18: 11 689 512, ResNet-50: 25 557 032 parameters.
- :func:`densenet` / :func:`densenet121` … (Huang et al. 2017): dense blocks in which layer
  ``l`` sees the concatenation of all earlier maps, ``x_l = H_l([x_0, x_1, …, x_{l−1}])``, so
  the channels grow by the growth rate ``k`` per layer, ``c_l = c_0 + l·k``; each layer is
  BN-ReLU-1×1 conv (4k) - BN-ReLU-3×3 conv (k) ("DenseNet-BC"), and transition layers
  (BN-ReLU-1×1 conv halving the channels, 2×2 average pooling) join the blocks.
  DenseNet-121: 7 978 856 parameters.

``in_channels`` (3) and ``num_classes`` (1000) can be changed, e.g. to 1 channel for MRI. Every
model has a ``depth`` attribute: the number of weight layers (convolutions and fully connected
layers) on the longest path from input to output, the number in the networks' names (AlexNet 8,
VGG16 16, GoogLeNet 22, ResNet-50 50, DenseNet-121 121).

Build full-size models on the meta device to count or inspect them for free::

    with torch.device("meta"):
        model = resnet50()
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from cmrlab.checks import check_int
from cmrlab.errors import ArgumentError
from cmrlab.nn.blocks import check_dropout, check_model_input

__all__ = [
    "AlexNet",
    "DenseNet",
    "GoogLeNet",
    "GoogLeNetOutputs",
    "INCEPTION_CONFIGS",
    "Inception",
    "REFERENCE_PARAMETERS",
    "ResNet",
    "VGG",
    "VGG_CONFIGS",
    "alexnet",
    "densenet",
    "densenet121",
    "densenet161",
    "densenet169",
    "densenet201",
    "googlenet",
    "resnet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "vgg",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "weight_layer_depth",
]

#: Exact parameter counts (3 input channels, 1000 classes) of the builders' default settings,
#: equal to torchvision's models of the same name (``googlenet`` here is the paper's variant;
#: ``googlenet_torchvision`` is ``googlenet(variant="torchvision")``, ``alexnet_original``
#: ``alexnet(original=True)``, ``*_aux`` with the auxiliary classifiers).
REFERENCE_PARAMETERS: dict[str, int] = {
    "alexnet": 61_100_840,
    "alexnet_original": 60_965_224,
    "vgg11": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "vgg11_bn": 132_868_840,
    "vgg16_bn": 138_365_992,
    "googlenet": 6_998_552,
    "googlenet_aux": 13_378_280,
    "googlenet_torchvision": 6_624_904,
    "googlenet_torchvision_aux": 13_004_888,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "densenet121": 7_978_856,
    "densenet161": 28_681_000,
    "densenet169": 14_149_480,
    "densenet201": 20_013_928,
}

_LAYOUT = "(N, C, H, W)"


def _check_input(x: object, in_channels: int, name: str) -> None:
    check_model_input(x, in_channels=in_channels, layout=_LAYOUT, ndims=(4,))
    if min(x.shape[-2:]) < 32:  # type: ignore[union-attr]
        raise ArgumentError(
            f"{name} downsamples by 32: the image must be at least 32×32, got {tuple(x.shape[-2:])}"
        )


def _init_weights(model: nn.Module) -> None:
    """He (Kaiming) normal for convolutions, N(0, 0.01) for linear layers, BN γ = 1, β = 0.

    Skipped on the meta device, where there are no values to set (and torch's first meta
    ``normal_`` costs seconds of one-off setup).
    """
    if any(p.is_meta for p in model.parameters()):
        return
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


_WEIGHT_LAYER_FUNCTIONS = frozenset({
    F.conv1d, F.conv2d, F.conv3d, F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d,
    F.linear,
})


class _DepthMode(TorchFunctionMode):
    """Tags every tensor computed in a forward pass with the longest chain of weight layers behind it."""

    def __init__(self) -> None:
        super().__init__()
        self.depth: dict[int, int] = {}
        self._alive: list[torch.Tensor] = []  # keep tensors alive so that their ids stay unique

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        depth = max((self.depth.get(id(t), 0) for t in inputs), default=0)
        if func in _WEIGHT_LAYER_FUNCTIONS:
            depth += 1
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.depth[id(t)] = max(depth, self.depth.get(id(t), 0))
                self._alive.append(t)
        return out


def weight_layer_depth(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Number of weight layers (convolutions, fully connected layers) on the longest path from the
    input to the output of ``model`` — the depth in a network's name (ResNet-50: 50).

    Runs one forward pass in eval mode on the meta device (a copy of the model; no memory, no
    arithmetic) and follows every tensor operation: an operation's output is as deep as its
    deepest input, plus one for a convolution or linear layer. Parallel branches count once (the
    longest), shortcuts add nothing; normalisation, activations and pooling are not weight layers.
    """
    if not input_shape or any(isinstance(s, bool) or int(s) < 1 for s in input_shape):
        raise ArgumentError(f"input_shape must be positive sizes, got {tuple(input_shape)!r}")
    meta = model if any(p.is_meta for p in model.parameters()) else copy.deepcopy(model).to("meta")
    was_training = meta.training
    meta.eval()
    mode = _DepthMode()
    try:
        with torch.no_grad(), mode:
            out = meta(torch.empty(tuple(int(s) for s in input_shape), device="meta"))
    finally:
        meta.train(was_training)
    return max(mode.depth.get(id(t), 0) for t in tree_leaves(out) if isinstance(t, torch.Tensor))


# ------------------------------------------------------------------------------------ AlexNet

class AlexNet(nn.Module):
    """AlexNet (Krizhevsky, Sutskever & Hinton 2012); see the module docstring.

    ``original=True``: the paper's two-tower network as one model (grouped convolutions where the
    two GPUs did not communicate: conv2, conv4, conv5), with local response normalisation
    (size 5, α = 1e-4, β = 0.75, k = 2) after conv1 and conv2; input 227×227.
    ``original=False``: torchvision's single-tower layout, no LRN; input 224×224.
    Dropout ``dropout`` (0.5) before the first two fully connected layers.
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, *, original: bool = False,
                 dropout: float = 0.5) -> None:
        super().__init__()
        self.num_classes = check_int("num_classes", num_classes, 1)
        self.in_channels = check_int("in_channels", in_channels, 1)
        p = check_dropout(dropout)
        self.original = bool(original)
        self.depth = 8
        if self.original:
            self.features = nn.Sequential(
                nn.Conv2d(in_channels, 96, 11, stride=4), nn.ReLU(inplace=True),
                nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
                nn.MaxPool2d(3, stride=2),
                nn.Conv2d(96, 256, 5, padding=2, groups=2), nn.ReLU(inplace=True),
                nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
                nn.MaxPool2d(3, stride=2),
                nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(384, 384, 3, padding=1, groups=2), nn.ReLU(inplace=True),
                nn.Conv2d(384, 256, 3, padding=1, groups=2), nn.ReLU(inplace=True),
                nn.MaxPool2d(3, stride=2),
            )
        else:
            self.features = nn.Sequential(
                nn.Conv2d(in_channels, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True),
                nn.MaxPool2d(3, stride=2),
                nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True),
                nn.MaxPool2d(3, stride=2),
                nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),
                nn.MaxPool2d(3, stride=2),
            )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(p), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.in_channels, "AlexNet")
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def alexnet(num_classes: int = 1000, in_channels: int = 3, *, original: bool = False,
            dropout: float = 0.5) -> AlexNet:
    """AlexNet: torchvision's layout (61 100 840 parameters) or ``original=True`` (60 965 224)."""
    return AlexNet(num_classes, in_channels, original=original, dropout=dropout)


# ------------------------------------------------------------------------------------ VGG

#: Table 1 of Simonyan & Zisserman: output channels of each 3×3 convolution, "M" a 2×2 max-pool.
VGG_CONFIGS: dict[str, tuple[int | str, ...]] = {
    "A": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "B": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "D": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "E": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"),
}
_VGG_DEPTHS = {11: "A", 13: "B", 16: "D", 19: "E"}


class VGG(nn.Module):
    """VGG: 3×3 convolutions (padding 1) + ReLU (+ BN), 2×2 max-pools, three fully connected layers.

    ``config`` is a key of :data:`VGG_CONFIGS` or a sequence in the same form. The five poolings
    take 224² to 7²; an adaptive average pooling to 7×7 keeps the classifier's 512·7·7 = 25 088
    inputs for other sizes.
    """

    def __init__(self, config: str | Sequence[int | str] = "D", num_classes: int = 1000,
                 in_channels: int = 3, *, batch_norm: bool = False, dropout: float = 0.5) -> None:
        super().__init__()
        self.num_classes = check_int("num_classes", num_classes, 1)
        self.in_channels = check_int("in_channels", in_channels, 1)
        p = check_dropout(dropout)
        if isinstance(config, str):
            if config not in VGG_CONFIGS:
                raise ArgumentError(f"config must be one of {', '.join(VGG_CONFIGS)} or a list, got {config!r}")
            config = VGG_CONFIGS[config]
        layers: list[nn.Module] = []
        channels = in_channels
        n_conv = 0
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(2, stride=2))
                continue
            width = check_int("config entry", item, 1)
            layers.append(nn.Conv2d(channels, width, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU(inplace=True))
            channels = width
            n_conv += 1
        if n_conv == 0 or sum(item == "M" for item in config) != 5:
            raise ArgumentError("config must have at least one convolution and exactly 5 poolings ('M')")
        self.depth = n_conv + 3
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(channels * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(p),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(p),
            nn.Linear(4096, num_classes),
        )
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.in_channels, "VGG")
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def vgg(depth: int = 16, num_classes: int = 1000, in_channels: int = 3, *,
        batch_norm: bool = False, dropout: float = 0.5) -> VGG:
    """VGG with ``depth`` weight layers: 11 (config A), 13 (B), 16 (D) or 19 (E)."""
    if depth not in _VGG_DEPTHS:
        raise ArgumentError(f"depth must be one of 11, 13, 16, 19, got {depth!r}")
    return VGG(_VGG_DEPTHS[depth], num_classes, in_channels, batch_norm=batch_norm, dropout=dropout)


def vgg11(**kwargs) -> VGG:
    """VGG-11 (config A)."""
    return vgg(11, **kwargs)


def vgg13(**kwargs) -> VGG:
    """VGG-13 (config B)."""
    return vgg(13, **kwargs)


def vgg16(**kwargs) -> VGG:
    """VGG-16 (config D): 138 357 544 parameters, 138 365 992 with ``batch_norm=True``."""
    return vgg(16, **kwargs)


def vgg19(**kwargs) -> VGG:
    """VGG-19 (config E)."""
    return vgg(19, **kwargs)


# ------------------------------------------------------------------------------------ GoogLeNet

def _conv(c_in: int, c_out: int, kernel: int, *, batch_norm: bool, stride: int = 1,
          padding: int = 0) -> nn.Sequential:
    """Convolution + ReLU (paper) or convolution without bias + BN (ε = 0.001) + ReLU (torchvision)."""
    if batch_norm:
        return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
                             nn.BatchNorm2d(c_out, eps=0.001), nn.ReLU(inplace=True))
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, padding), nn.ReLU(inplace=True))


class Inception(nn.Module):
    """One Inception module: four parallel branches concatenated along the channels.

    Branches: 1×1 (``c1``); 1×1 to ``c3_reduce`` then 3×3 to ``c3``; 1×1 to ``c5_reduce`` then
    ``k5``×``k5`` to ``c5`` (k5 = 5 in the paper); 3×3 max-pool (stride 1) then 1×1 to
    ``pool_proj``. Output channels: ``c1 + c3 + c5 + pool_proj``; the size is unchanged.
    """

    def __init__(self, in_channels: int, c1: int, c3_reduce: int, c3: int, c5_reduce: int,
                 c5: int, pool_proj: int, *, batch_norm: bool = False, k5: int = 5) -> None:
        super().__init__()
        self.out_channels = c1 + c3 + c5 + pool_proj
        self.branch1 = _conv(in_channels, c1, 1, batch_norm=batch_norm)
        self.branch3 = nn.Sequential(_conv(in_channels, c3_reduce, 1, batch_norm=batch_norm),
                                     _conv(c3_reduce, c3, 3, padding=1, batch_norm=batch_norm))
        self.branch5 = nn.Sequential(_conv(in_channels, c5_reduce, 1, batch_norm=batch_norm),
                                     _conv(c5_reduce, c5, k5, padding=k5 // 2, batch_norm=batch_norm))
        self.branch_pool = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                         _conv(in_channels, pool_proj, 1, batch_norm=batch_norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)], 1)


class _AuxClassifier(nn.Module):
    """Auxiliary classifier: 5×5/3 average pool (4×4 at 224²), 1×1 conv 128, FC 1024, dropout 0.7, FC."""

    def __init__(self, in_channels: int, num_classes: int, *, batch_norm: bool) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d((4, 4))
        self.conv = _conv(in_channels, 128, 1, batch_norm=batch_norm)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.dropout = nn.Dropout(0.7)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.conv(self.pool(x)), 1)
        return self.fc2(self.dropout(torch.relu(self.fc1(x))))


class GoogLeNetOutputs(NamedTuple):
    """What :class:`GoogLeNet` returns in training mode with auxiliary classifiers."""

    logits: torch.Tensor
    aux2: torch.Tensor  # after inception 4d
    aux1: torch.Tensor  # after inception 4a


#: Table 1 of Szegedy et al. 2015, by module name: (in, 1×1, 3×3 reduce, 3×3, 5×5 reduce, 5×5, pool proj).
INCEPTION_CONFIGS = {
    "3a": (192, 64, 96, 128, 16, 32, 32),
    "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64),
    "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64),
    "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128),
    "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}


class GoogLeNet(nn.Module):
    """GoogLeNet / Inception v1 (Szegedy et al. 2015); see the module docstring for the variants.

    Stem: 7×7/2 conv 64, 3×3/2 max-pool, (LRN), 1×1 conv 64, 3×3 conv 192, (LRN), 3×3/2 max-pool;
    then inception 3a, 3b, max-pool, 4a-4e, max-pool, 5a, 5b, global average pooling, dropout and
    one fully connected layer 1024 → ``num_classes``. With ``aux_logits=True`` and in training
    mode, ``forward`` returns :class:`GoogLeNetOutputs` (the main logits and the two auxiliary
    classifiers' logits, which the paper adds to the loss with weight 0.3); in eval mode it
    always returns the main logits.
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, *, aux_logits: bool = False,
                 variant: str = "paper", dropout: float | None = None) -> None:
        super().__init__()
        if variant not in ("paper", "torchvision"):
            raise ArgumentError(f"variant must be 'paper' or 'torchvision', got {variant!r}")
        self.num_classes = check_int("num_classes", num_classes, 1)
        self.in_channels = check_int("in_channels", in_channels, 1)
        self.variant = variant
        self.aux_logits = bool(aux_logits)
        self.depth = 22
        bn = variant == "torchvision"
        p = check_dropout((0.4 if variant == "paper" else 0.2) if dropout is None else dropout)
        lrn = [] if bn else [nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)]
        self.stem = nn.Sequential(
            _conv(in_channels, 64, 7, stride=2, padding=3, batch_norm=bn),
            nn.MaxPool2d(3, stride=2, ceil_mode=True), *lrn,
            _conv(64, 64, 1, batch_norm=bn),
            _conv(64, 192, 3, padding=1, batch_norm=bn), *lrn,
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
        )
        k5 = 5 if variant == "paper" else 3
        blocks = {name: Inception(*cfg, batch_norm=bn, k5=k5) for name, cfg in INCEPTION_CONFIGS.items()}
        self.inception3 = nn.Sequential(blocks["3a"], blocks["3b"], nn.MaxPool2d(3, 2, ceil_mode=True))
        self.inception4a = blocks["4a"]
        self.inception4bcd = nn.Sequential(blocks["4b"], blocks["4c"], blocks["4d"])
        # the paper pools 3×3/2 after 4e; torchvision 2×2/2 (same 7×7 output at 224²)
        last_pool = nn.MaxPool2d(3, 2, ceil_mode=True) if variant == "paper" else nn.MaxPool2d(2, 2, ceil_mode=True)
        self.inception4e = nn.Sequential(blocks["4e"], last_pool)
        self.inception5 = nn.Sequential(blocks["5a"], blocks["5b"])
        self.aux1 = _AuxClassifier(512, num_classes, batch_norm=bn) if self.aux_logits else None
        self.aux2 = _AuxClassifier(528, num_classes, batch_norm=bn) if self.aux_logits else None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p)
        self.fc = nn.Linear(1024, num_classes)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor | GoogLeNetOutputs:
        _check_input(x, self.in_channels, "GoogLeNet")
        x = self.inception4a(self.inception3(self.stem(x)))
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4bcd(x)
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.inception5(self.inception4e(x))
        logits = self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))
        if aux1 is not None and aux2 is not None:
            return GoogLeNetOutputs(logits, aux2, aux1)
        return logits


def googlenet(num_classes: int = 1000, in_channels: int = 3, *, aux_logits: bool = False,
              variant: str = "paper", dropout: float | None = None) -> GoogLeNet:
    """GoogLeNet: ``variant="paper"`` (6 998 552 parameters) or ``"torchvision"`` (6 624 904)."""
    return GoogLeNet(num_classes, in_channels, aux_logits=aux_logits, variant=variant, dropout=dropout)


# ------------------------------------------------------------------------------------ ResNet

class _BasicBlock(nn.Module):
    """Two 3×3 convolutions with BN: ``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``."""

    expansion = 1

    def __init__(self, c_in: int, width: int, stride: int) -> None:
        super().__init__()
        c_out = width * self.expansion
        self.residual = nn.Sequential(
            nn.Conv2d(c_in, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out),
        )
        self.shortcut = _shortcut(c_in, c_out, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.residual(x) + self.shortcut(x))


class _Bottleneck(_BasicBlock):
    """1×1 (reduce to ``width``) → 3×3 (stride) → 1×1 (expand to 4·width), BN after each."""

    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int) -> None:
        nn.Module.__init__(self)
        c_out = width * self.expansion
        self.residual = nn.Sequential(
            nn.Conv2d(c_in, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, c_out, 1, bias=False), nn.BatchNorm2d(c_out),
        )
        self.shortcut = _shortcut(c_in, c_out, stride)
        self.relu = nn.ReLU(inplace=True)


def _shortcut(c_in: int, c_out: int, stride: int) -> nn.Module:
    """Identity, or a 1×1 convolution + BN (the paper's option B) where the shape changes."""
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))


class ResNet(nn.Module):
    """ResNet (He et al. 2016): 7×7/2 conv 64 + BN + ReLU, 3×3/2 max-pool, four stages of
    residual blocks (widths 64, 128, 256, 512; the first block of stages 2-4 has stride 2),
    global average pooling, one fully connected layer.

    ``blocks`` is the number of blocks per stage, ``bottleneck`` picks the 3-layer block.
    ``zero_init_residual=True`` sets the last BN scale γ of every block to 0, so each block starts
    as the identity (a trick of Goyal et al. 2017 that torchvision offers).
    """

    def __init__(self, blocks: Sequence[int], *, bottleneck: bool, num_classes: int = 1000,
                 in_channels: int = 3, zero_init_residual: bool = False) -> None:
        super().__init__()
        self.num_classes = check_int("num_classes", num_classes, 1)
        self.in_channels = check_int("in_channels", in_channels, 1)
        if len(blocks) != 4:
            raise ArgumentError(f"blocks must give 4 stages, got {list(blocks)!r}")
        blocks = [check_int("blocks per stage", b, 1) for b in blocks]
        block = _Bottleneck if bottleneck else _BasicBlock
        self.depth = 2 + sum(blocks) * (3 if bottleneck else 2)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        stages: list[nn.Module] = []
        c_in = 64
        for i, (n, width) in enumerate(zip(blocks, (64, 128, 256, 512))):
            layers = []
            for j in range(n):
                layers.append(block(c_in, width, 2 if (i > 0 and j == 0) else 1))
                c_in = width * block.expansion
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(c_in, num_classes)
        _init_weights(self)
        if not self.fc.weight.is_meta:
            nn.init.kaiming_uniform_(self.fc.weight, a=5**0.5)  # torch's default for the classifier
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, _BasicBlock):
                    nn.init.zeros_(m.residual[-1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.in_channels, "ResNet")
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


_RESNET_BLOCKS = {18: ((2, 2, 2, 2), False), 34: ((3, 4, 6, 3), False), 50: ((3, 4, 6, 3), True),
                  101: ((3, 4, 23, 3), True), 152: ((3, 8, 36, 3), True)}


def resnet(depth: int = 50, num_classes: int = 1000, in_channels: int = 3, *,
           zero_init_residual: bool = False) -> ResNet:
    """ResNet-18, -34 (basic blocks), -50, -101 or -152 (bottleneck blocks)."""
    if depth not in _RESNET_BLOCKS:
        raise ArgumentError(f"depth must be one of 18, 34, 50, 101, 152, got {depth!r}")
    blocks, bottleneck = _RESNET_BLOCKS[depth]
    return ResNet(blocks, bottleneck=bottleneck, num_classes=num_classes, in_channels=in_channels,
                  zero_init_residual=zero_init_residual)


def resnet18(**kwargs) -> ResNet:
    """ResNet-18: 11 689 512 parameters."""
    return resnet(18, **kwargs)


def resnet34(**kwargs) -> ResNet:
    """ResNet-34: 21 797 672 parameters."""
    return resnet(34, **kwargs)


def resnet50(**kwargs) -> ResNet:
    """ResNet-50: 25 557 032 parameters."""
    return resnet(50, **kwargs)


def resnet101(**kwargs) -> ResNet:
    """ResNet-101: 44 549 160 parameters."""
    return resnet(101, **kwargs)


def resnet152(**kwargs) -> ResNet:
    """ResNet-152: 60 192 808 parameters."""
    return resnet(152, **kwargs)


# ------------------------------------------------------------------------------------ DenseNet

class _DenseLayer(nn.Module):
    """BN-ReLU-1×1 conv (bn_size·k) - BN-ReLU-3×3 conv (k); its k maps are appended to the input."""

    def __init__(self, c_in: int, growth_rate: int, bn_size: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.BatchNorm2d(c_in), nn.ReLU(inplace=True),
            nn.Conv2d(c_in, bn_size * growth_rate, 1, bias=False),
            nn.BatchNorm2d(bn_size * growth_rate), nn.ReLU(inplace=True),
            nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False),
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.dropout(self.layers(x))], dim=1)


class DenseNet(nn.Module):
    """DenseNet-BC (Huang et al. 2017): 7×7/2 conv + BN + ReLU + 3×3/2 max-pool, dense blocks of
    ``block_config`` layers joined by transitions (BN-ReLU-1×1 conv to half the channels,
    2×2/2 average pool), final BN + ReLU, global average pooling, one fully connected layer.

    Inside a block, layer ``l`` receives ``c_0 + l·k`` channels (``k`` = ``growth_rate``): the
    block input and the ``k`` new maps of every earlier layer, concatenated. The attribute
    ``block_channels`` lists the channels at the end of each block.
    """

    def __init__(self, growth_rate: int = 32, block_config: Sequence[int] = (6, 12, 24, 16),
                 num_init_features: int = 64, bn_size: int = 4, *, num_classes: int = 1000,
                 in_channels: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_classes = check_int("num_classes", num_classes, 1)
        self.in_channels = check_int("in_channels", in_channels, 1)
        k = check_int("growth_rate", growth_rate, 1)
        c = check_int("num_init_features", num_init_features, 1)
        bn_size = check_int("bn_size", bn_size, 1)
        p = check_dropout(dropout)
        block_config = [check_int("block_config entry", n, 1) for n in block_config]
        if not block_config:
            raise ArgumentError("block_config must list at least one dense block")
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, c, 7, 2, 3, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        ]
        self.block_channels: list[int] = []
        for i, n in enumerate(block_config):
            for _ in range(n):
                layers.append(_DenseLayer(c, k, bn_size, p))
                c += k
            self.block_channels.append(c)
            if i < len(block_config) - 1:
                layers += [nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                           nn.Conv2d(c, c // 2, 1, bias=False), nn.AvgPool2d(2, stride=2)]
                c //= 2
        layers += [nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.depth = 1 + 2 * sum(block_config) + (len(block_config) - 1) + 1
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Linear(c, num_classes)
        _init_weights(self)
        if not self.classifier.weight.is_meta:
            nn.init.kaiming_uniform_(self.classifier.weight, a=5**0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.in_channels, "DenseNet")
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def densenet(depth: int = 121, num_classes: int = 1000, in_channels: int = 3, *,
             dropout: float = 0.0) -> DenseNet:
    """DenseNet-121, -169, -201 (k = 32, 64 initial maps) or -161 (k = 48, 96 initial maps)."""
    configs = {121: (32, (6, 12, 24, 16), 64), 161: (48, (6, 12, 36, 24), 96),
               169: (32, (6, 12, 32, 32), 64), 201: (32, (6, 12, 48, 32), 64)}
    if depth not in configs:
        raise ArgumentError(f"depth must be one of 121, 161, 169, 201, got {depth!r}")
    k, blocks, init = configs[depth]
    return DenseNet(k, blocks, init, num_classes=num_classes, in_channels=in_channels, dropout=dropout)


def densenet121(**kwargs) -> DenseNet:
    """DenseNet-121: 7 978 856 parameters."""
    return densenet(121, **kwargs)


def densenet161(**kwargs) -> DenseNet:
    """DenseNet-161: 28 681 000 parameters."""
    return densenet(161, **kwargs)


def densenet169(**kwargs) -> DenseNet:
    """DenseNet-169: 14 149 480 parameters."""
    return densenet(169, **kwargs)


def densenet201(**kwargs) -> DenseNet:
    """DenseNet-201: 20 013 928 parameters."""
    return densenet(201, **kwargs)
