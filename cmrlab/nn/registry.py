"""The model zoo: every model of the sources by name, with its source and parameter counts.

::

    from cmrlab.nn.registry import MODELS, build_model, model_card
    model = build_model("pspunet")                     # full width, the thesis's model
    small = build_model("pspunet", **MODELS["pspunet"].fast)   # the fast profile's width
    print(model_card(small, (1, 1, 3, 176, 176)))

``MODELS[name].parameters`` is our exact count at full width (checked by the tests by building the
model on the meta device); ``thesis_parameters`` is what the source prints, and ``note`` says how
the two compare, including the documented discrepancies of the brain thesis's Table 1.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from cmrlab.errors import ArgumentError
from cmrlab.nn.models.densenet3d import (
    densenet3d_single_path,
    densenet3d_three_stream_early_fusion,
    densenet3d_two_stream_early_fusion,
    densenet3d_two_stream_late_fusion,
)
from cmrlab.nn.models.enet import ENet
from cmrlab.nn.models.fcn import ExplainableFCN
from cmrlab.nn.models.frame_detector import FrameDetector
from cmrlab.nn.models.pspunet import PSPUNet
from cmrlab.nn.models.regression_unet import RegressionUNet
from cmrlab.nn.models.unet2d import UNet2D
from cmrlab.nn.models.unet3d import UNet3D
from cmrlab.nn.models.unet3d_cardiac import CardiacUNet3D
from cmrlab.nn.models.vnet import VNet, vnet_light
from cmrlab.nn.receptive_field import count_parameters

__all__ = ["MODELS", "ModelCard", "ModelEntry", "build_model", "model_card"]


@dataclass(frozen=True)
class ModelEntry:
    """One model of the zoo.

    ``builder(**kwargs)`` makes it at full width; ``fast`` holds the keyword arguments of the fast
    profile's reduced width; ``input_shape`` is an input the full model accepts (N = 1), as in the
    source; ``parameters`` our exact full-width count; ``thesis_parameters`` the source's figure
    (None where the source gives none) and ``tolerance`` the relative difference we promise, or
    None for a documented discrepancy explained in ``note``.
    """

    name: str
    builder: Callable[..., nn.Module]
    source: str
    input_shape: tuple[int, ...]
    parameters: int
    thesis_parameters: int | None
    tolerance: float | None
    note: str
    fast: dict[str, Any] = field(default_factory=dict)

    @property
    def relative_difference(self) -> float | None:
        """(ours − source) / source, or None when the source gives no count."""
        if not self.thesis_parameters:
            return None
        return (self.parameters - self.thesis_parameters) / self.thesis_parameters


_ENTRIES = [
    ModelEntry("cardiac_unet3d", CardiacUNet3D, "cardiac thesis ch. 5 (L3690-3721, Fig. 5.3)",
               (1, 1, 3, 176, 176), 87_519_364, 87_510_000, 0.01,
               "the textbook 64→1024 build; the thesis's 87.51 M is 87 519 364 cut to two decimals",
               {"base_filters": 8}),
    ModelEntry("pspunet", PSPUNet, "cardiac thesis ch. 5 (L3725-3795, Figs. 5.4-5.5)",
               (1, 1, 3, 176, 176), 30_837_732, 30_830_000, 0.02,
               "halved-width U-Net with pyramid-pooling skips; the PSP internals are our design "
               "(the text does not give them), landing +0.025 % from the thesis's count",
               {"base_filters": 4}),
    ModelEntry("regression_unet", RegressionUNet, "cardiac thesis ch. 6 (spec §4.2)",
               (1, 1, 10, 88, 88), 21_711_297, 21_870_000, 0.01,
               "64→512 with 3 poolings (88 px halves cleanly to 11); the 32→512, 4-pooling "
               "variant (base_filters=32, depth=4) has 21 884 897; the scanning module has no "
               "trainable parameters",
               {"base_filters": 8}),
    ModelEntry("frame_detector", FrameDetector, "cardiac thesis ch. 7 (L5678-5760, Fig. 7.3)",
               (1, 1, 30, 176, 176), 4_692_642, 4_700_000, 0.01,
               "encoder 64→512, 9 temporal dilated paths (k 3/5/7 × d 1/2/4), 4 692 642 as in the "
               "thesis's count",
               {"base_filters": 8, "image_size": 176}),
    ModelEntry("explainable_fcn", ExplainableFCN, "Liu et al., explainable FCN (lectures §2)",
               (1, 1, 256, 256), 1_857_846, None, None,
               "channel counts 100/200/300/300 are not in the paper: they are the NVIDIA DLI "
               "lab's, which the paper builds on",
               {}),
    ModelEntry("unet2d", UNet2D, "Ronneberger et al. 2015; brain thesis §3.5",
               (1, 1, 572, 572), 31_030_658, None, None,
               "valid convolutions, 572² → 388²; the sources print no count", {"base_filters": 8}),
    ModelEntry("enet", ENet, "Paszke et al. 2016; DLMI school lecture (0.37 M)",
               (1, 1, 512, 512), 362_992, 370_000, 0.03,
               "1 input channel, 2 classes; the paper's 3-in/20-class setup has 364 376 (−1.5 %)",
               {}),
    ModelEntry("vnet", VNet, "brain thesis §3.6 (L2438-2481), Table 1", (1, 1, 64, 128, 128),
               45_609_296, 45_000_000, 0.02, "thesis ~45 M", {"base_filters": 4}),
    ModelEntry("vnet_light", vnet_light, "brain thesis Tables 1-3 (never defined in the text)",
               (1, 1, 64, 128, 128), 12_246_736, 25_000_000, None,
               "documented discrepancy: removing V-Net's deepest stage gives 12.2 M, not the "
               "thesis's ~25 M", {"base_filters": 4}),
    ModelEntry("unet3d", UNet3D, "brain thesis §3.7 (L2482-2513); Çiçek et al. 2016",
               (1, 1, 64, 128, 128), 19_068_292, 10_000_000, None,
               "documented discrepancy: the Çiçek widths give 19.07 M (the paper's 19 069 955 "
               "with 3 inputs and 3 classes), not the thesis's ~10 M", {"base_filters": 4}),
    ModelEntry("densenet3d_single_path", densenet3d_single_path, "brain thesis §3.8 (L2514-2550)",
               (1, 1, 32, 32, 32), 2_687_649, 2_700_000, 0.01, "thesis ~2.7 M",
               {"width": 0.25}),
    ModelEntry("densenet3d_two_stream_late_fusion", densenet3d_two_stream_late_fusion,
               "brain thesis §3.9 (L2552-2570)", (1, 2, 32, 32, 32), 5_375_294, 5_200_000, 0.04,
               "thesis ~5.2 M", {"width": 0.25}),
    ModelEntry("densenet3d_two_stream_early_fusion", densenet3d_two_stream_early_fusion,
               "brain thesis §3.9 (L2571-2581)", (1, 2, 32, 32, 32), 2_997_544, 2_900_000, 0.04,
               "thesis ~2.9 M", {"width": 0.25}),
    ModelEntry("densenet3d_three_stream_early_fusion", densenet3d_three_stream_early_fusion,
               "brain thesis Tables 1 and 3", (1, 3, 32, 32, 32), 3_307_439, 3_400_000, 0.03,
               "thesis ~3.4 M", {"width": 0.25}),
]

#: Every model of the zoo by name.
MODELS: dict[str, ModelEntry] = {e.name: e for e in _ENTRIES}


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the model called ``name`` (see :data:`MODELS`); ``kwargs`` go to its builder."""
    if name not in MODELS:
        raise ArgumentError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return MODELS[name].builder(**kwargs)


@dataclass(frozen=True)
class ModelCard:
    """What :func:`model_card` measured: counts and an activation-memory estimate."""

    name: str
    input_shape: tuple[int, ...]
    parameters: int
    trainable_parameters: int
    layers: int
    activation_elements: int
    bytes_per_element: int

    @property
    def parameter_megabytes(self) -> float:
        return self.parameters * self.bytes_per_element / 2**20

    @property
    def activation_megabytes(self) -> float:
        return self.activation_elements * self.bytes_per_element / 2**20

    def __str__(self) -> str:
        return "\n".join([
            f"model               {self.name}",
            f"input               {'×'.join(map(str, self.input_shape))}",
            f"parameters          {self.parameters:,} ({self.trainable_parameters:,} trainable)",
            f"layers              {self.layers} (convolutions, linear and normalisation layers)",
            f"weights             {self.parameter_megabytes:,.1f} MiB",
            f"activations         {self.activation_megabytes:,.1f} MiB for one forward pass "
            "(every layer's output, as kept for backpropagation)",
        ])


_LAYER_TYPES = (
    nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm,
)


def model_card(model: nn.Module, input_shape: tuple[int, ...], name: str | None = None,
               dtype: torch.dtype = torch.float32) -> ModelCard:
    """Count a model's parameters and layers and estimate its activation memory for an input.

    The activation estimate is the sum of the output sizes of every leaf module in one forward
    pass: what autograd keeps for the backward pass, give or take in-place operations. The forward
    pass runs on the meta device (a copy of the model; no memory, no arithmetic), so a card of a
    full-width 3D model costs nothing.
    """
    if not input_shape or any(int(s) < 1 for s in input_shape):
        raise ArgumentError(f"input_shape must be positive sizes, got {input_shape!r}")
    element = torch.empty((), dtype=dtype).element_size()
    layers = sum(isinstance(m, _LAYER_TYPES) for m in model.modules())
    meta = _to_meta(model)
    total = 0

    def hook(_module, _inputs, output):
        nonlocal total
        for out in output if isinstance(output, (tuple, list)) else [output]:
            if isinstance(out, torch.Tensor):
                total += out.numel()

    handles = [m.register_forward_hook(hook) for m in meta.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            meta(torch.empty(tuple(int(s) for s in input_shape), device="meta", dtype=dtype))
    except (RuntimeError, ValueError) as exc:
        raise ArgumentError(f"the model does not accept an input of shape {tuple(input_shape)}: {exc}") from None
    finally:
        for h in handles:
            h.remove()
    return ModelCard(
        name=name or type(model).__name__,
        input_shape=tuple(int(s) for s in input_shape),
        parameters=count_parameters(model, trainable_only=False),
        trainable_parameters=count_parameters(model),
        layers=layers,
        activation_elements=total,
        bytes_per_element=element,
    )


def _to_meta(model: nn.Module) -> nn.Module:
    """A copy of ``model`` on the meta device (the model itself if it is there already)."""
    import copy

    if any(p.is_meta for p in model.parameters()):
        return model
    return copy.deepcopy(model).to("meta")
