"""Feature maps: what the hidden layers of a network compute, recorded with forward hooks.

::

    maps = feature_maps(model, x, ["encoder.0", "bottleneck"])   # {name: (N, C, *spatial) tensor}
    layer_names(model, kind=nn.Conv2d)                             # where one can look

A layer is named as in ``model.named_modules()`` (``"down.2.conv"``) or given as the module
itself. :class:`FeatureRecorder` is the context manager behind :func:`feature_maps`; the CAM
methods use it too. Hooks are always removed, also when the forward pass fails.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Union

import torch
from torch import nn

from cmrlab.checks import did_you_mean
from cmrlab.errors import ArgumentError
from cmrlab.explain.targets import check_explain_input, eval_mode, model_device

__all__ = ["FeatureRecorder", "Layer", "feature_maps", "find_layer", "layer_names"]

#: A layer: its dotted name in ``model.named_modules()`` or the module itself.
Layer = Union[str, nn.Module]


def layer_names(model: nn.Module, kind: type | tuple[type, ...] | None = None) -> list[str]:
    """Dotted names of the model's sub-modules (of type ``kind`` only, if given), in order."""
    if not isinstance(model, nn.Module):
        raise ArgumentError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return [name for name, m in model.named_modules() if name and (kind is None or isinstance(m, kind))]


def find_layer(model: nn.Module, layer: Layer) -> tuple[str, nn.Module]:
    """``(name, module)`` of ``layer`` in ``model``; an error lists close names when it is not there."""
    if not isinstance(model, nn.Module):
        raise ArgumentError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(layer, nn.Module):
        for name, m in model.named_modules():
            if m is layer:
                return name, m
        raise ArgumentError(f"layer {type(layer).__name__} is not a sub-module of {type(model).__name__}")
    if not isinstance(layer, str):
        raise ArgumentError(f"layer must be a module or its dotted name, got {type(layer).__name__}")
    modules = dict(model.named_modules())
    if layer not in modules or not layer:
        names = [n for n in modules if n]
        raise ArgumentError(f"{type(model).__name__} has no layer {layer!r}{did_you_mean(layer, names)}; "
                            f"layer_names(model) lists them ({len(names)} in all)")
    return layer, modules[layer]


def _first_tensor(output: Any) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return None


class FeatureRecorder:
    """Record the outputs of ``layers`` during the forward passes inside a ``with`` block.

    ``recorder.outputs[name]`` is the tensor of the last forward pass (the first tensor when a
    layer returns a tuple), as the layer returned it: the network continues on a copy, so an
    in-place operation after the layer (``nn.ReLU(inplace=True)``) does not change it. ``keep_graph=True`` keeps it attached to autograd (for gradients with
    respect to it, as Grad-CAM needs); otherwise it is detached.
    """

    def __init__(self, model: nn.Module, layers: Iterable[Layer], *, keep_graph: bool = False) -> None:
        found = [find_layer(model, layer) for layer in layers]
        if not found:
            raise ArgumentError("layers is empty: name at least one layer (see layer_names(model))")
        self.model, self.keep_graph = model, bool(keep_graph)
        self.layers = dict(found)
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles: list[Any] = []

    def __enter__(self) -> FeatureRecorder:
        for name, module in self.layers.items():
            self._handles.append(module.register_forward_hook(self._hook(name)))
        return self

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: Any, output: Any) -> Any:
            t = _first_tensor(output)
            if t is None:
                raise ArgumentError(f"layer {name!r} returned {type(output).__name__}, not a tensor")
            self.outputs[name] = t if self.keep_graph else t.detach()
            # The rest of the network gets a copy, so an in-place operation after this layer (an
            # nn.ReLU(inplace=True)) cannot overwrite what was recorded; gradients flow through it.
            if isinstance(output, torch.Tensor):
                return output.clone()
            return None
        return hook

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


def feature_maps(model: nn.Module, x: torch.Tensor, layers: Sequence[Layer]) -> dict[str, torch.Tensor]:
    """The outputs of ``layers`` for input ``x`` (eval mode, no gradients), by layer name."""
    x = check_explain_input(x).to(model_device(model))
    recorder = FeatureRecorder(model, layers)
    with recorder, eval_mode(model), torch.no_grad():
        model(x)
    missing = [n for n in recorder.layers if n not in recorder.outputs]
    if missing:
        raise ArgumentError(f"layers {missing} were not called in the forward pass of {type(model).__name__}")
    return dict(recorder.outputs)
