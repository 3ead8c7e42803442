"""Output sizes, receptive fields and parameter counts of convolutional networks.

The chapter "From MLP to convolution" builds these ideas; later chapters import them from here.

Along one spatial axis, a convolution or pooling layer ``l`` is described by its kernel size
``k``, stride ``s``, dilation ``d`` and (symmetric) zero padding ``p``. Its *effective* kernel,
the span one window covers in its own input, is ``d·(k − 1) + 1``.

Output size of a layer on an input of ``n`` samples (``torch.nn.Conv*`` and ``*Pool*``)::

    n_out = ⌊(n + 2p − d·(k − 1) − 1) / s⌋ + 1

Receptive field (the span of input pixels that can change one output unit), computed layer by
layer from the input (``j_0 = 1``, ``r_0 = 1``, ``c_0 = 0``)::

    j_l = j_{l−1} · s_l                                   jump: input pixels between two neighbouring outputs
    r_l = r_{l−1} + (k_l − 1) · d_l · j_{l−1}             receptive field size
    c_l = c_{l−1} + ((k_l − 1) · d_l / 2 − p_l) · j_{l−1}  centre of output 0's field, in input pixels

So a stack of ``L`` plain 3×3 convolutions sees ``2L + 1`` pixels, and a stack of 3×3
convolutions with dilations ``d_1 … d_L`` sees ``1 + 2·Σ d_l``. The size ``r`` is the *extent*
of the field: with strides or dilations the field can have holes inside that extent.

Example::

    >>> from cmrlab.nn.receptive_field import Layer, receptive_field
    >>> [rf.size for rf in receptive_field([Layer(3), Layer(3), Layer(2, stride=2), Layer(3)])]
    [3, 5, 6, 10]
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cmrlab.checks import check_int
from cmrlab.errors import ArgumentError

__all__ = [
    "Layer",
    "LayerRF",
    "conv_output_size",
    "count_parameters",
    "layers_of",
    "receptive_field",
    "receptive_field_of",
]


def conv_output_size(
    size: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    *,
    ceil_mode: bool = False,
) -> int:
    """Number of outputs of a convolution or pooling layer along one axis.

    ``n_out = ⌊(n + 2p − d·(k − 1) − 1) / s⌋ + 1``, the rule of ``torch.nn.Conv1d/2d/3d`` and of
    the pooling layers. With ``ceil_mode=True`` (pooling only) the division rounds up, but the
    last window must still start inside the input or the left padding, as in torch.

    Raises :class:`~cmrlab.errors.ArgumentError` for a size or kernel below 1, a stride or
    dilation below 1, a negative padding, or a window larger than the padded input (which
    would give no output at all).

    >>> conv_output_size(256, 3, padding=1), conv_output_size(256, 2, stride=2)
    (256, 128)
    """
    n = check_int("size", size, 1)
    k = check_int("kernel", kernel, 1)
    s = check_int("stride", stride, 1)
    p = check_int("padding", padding, 0)
    d = check_int("dilation", dilation, 1)
    span = d * (k - 1) + 1
    if span > n + 2 * p:
        raise ArgumentError(
            f"kernel {k} with dilation {d} spans {span} samples, more than the padded input "
            f"(size {n} + 2·padding {p} = {n + 2 * p}): the layer would have no output"
        )
    numerator = n + 2 * p - span
    if ceil_mode:
        out = -(-numerator // s) + 1
        if (out - 1) * s >= n + p:  # last window would start in the right padding
            out -= 1
    else:
        out = numerator // s + 1
    return out


@dataclass(frozen=True)
class Layer:
    """One convolution or pooling layer seen along one spatial axis.

    ``kernel`` k, ``stride`` s, ``dilation`` d and symmetric zero ``padding`` p, as in
    ``torch.nn.Conv2d``; ``ceil_mode`` as in the pooling layers; ``name`` is only a label for
    tables. ``Layer(3)`` is a plain 3×3 convolution without padding, ``Layer(2, stride=2)`` a 2×2
    pooling of stride 2.
    """

    kernel: int
    stride: int = 1
    dilation: int = 1
    padding: int = 0
    name: str = ""
    ceil_mode: bool = False

    def __post_init__(self) -> None:
        for field_name, minimum in (("kernel", 1), ("stride", 1), ("dilation", 1), ("padding", 0)):
            label = f"{self.name}: {field_name}" if self.name else field_name
            object.__setattr__(
                self, field_name, check_int(label, getattr(self, field_name), minimum)
            )
        if not isinstance(self.name, str):
            raise ArgumentError(f"name must be a string, got {self.name!r}")

    @property
    def effective_kernel(self) -> int:
        """Span of one window in the layer's own input: ``d·(k − 1) + 1``."""
        return self.dilation * (self.kernel - 1) + 1

    def output_size(self, size: int) -> int:
        """Number of outputs for ``size`` inputs (see :func:`conv_output_size`)."""
        return conv_output_size(
            size, self.kernel, self.stride, self.padding, self.dilation, ceil_mode=self.ceil_mode
        )


@dataclass(frozen=True)
class LayerRF:
    """Geometry of the output of one layer, measured in input pixels.

    - ``layer``: the :class:`Layer` it describes;
    - ``jump``: input pixels between two neighbouring outputs (the product of the strides so
      far, also called the effective stride);
    - ``size``: receptive field size, the extent of input pixels that can change one output;
    - ``start``: position (input pixel index, may be negative or a half-integer) of the centre
      of the receptive field of output 0; output ``i`` is centred on ``start + i·jump``;
    - ``output_size``: number of outputs along the axis, when an input size was given.
    """

    layer: Layer
    jump: int
    size: int
    start: float
    output_size: int | None = None

    @property
    def name(self) -> str:
        return self.layer.name

    def centre(self, index: int) -> float:
        """Centre, in input pixels, of the receptive field of output ``index``."""
        return self.start + index * self.jump


def receptive_field(layers: Iterable[Layer], input_size: int | None = None) -> list[LayerRF]:
    """Receptive field after each layer of a chain of convolution/pooling layers.

    Uses the recursion (``j_0 = 1``, ``r_0 = 1``, ``c_0 = 0``)::

        j_l = j_{l−1}·s_l
        r_l = r_{l−1} + (k_l − 1)·d_l·j_{l−1}
        c_l = c_{l−1} + ((k_l − 1)·d_l/2 − p_l)·j_{l−1}

    and, if ``input_size`` is given, the output size of every layer (an
    :class:`~cmrlab.errors.ArgumentError` names the first layer whose input is too small).
    Returns one :class:`LayerRF` per layer, in order; an empty chain gives an empty list.

    >>> dilations = [1, 1, 2, 4, 8, 16, 32, 1, 1]
    >>> receptive_field([Layer(3, dilation=d) for d in dilations])[-1].size
    133
    """
    jump, size, start = 1, 1, 0.0
    n = None if input_size is None else check_int("input_size", input_size, 1)
    result: list[LayerRF] = []
    for position, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise ArgumentError(
                f"layers[{position}] must be a cmrlab.nn.receptive_field.Layer, got {layer!r}"
            )
        if n is not None:
            try:
                n = layer.output_size(n)
            except ArgumentError as exc:
                label = layer.name or f"layers[{position}]"
                raise ArgumentError(f"{label}: {exc}") from None
        start = start + ((layer.kernel - 1) * layer.dilation / 2 - layer.padding) * jump
        size = size + (layer.kernel - 1) * layer.dilation * jump
        jump = jump * layer.stride
        result.append(LayerRF(layer=layer, jump=jump, size=size, start=start, output_size=n))
    return result


# --------------------------------------------------------------------------------------------
# Reading the layers off a torch model
# --------------------------------------------------------------------------------------------

def _spatial_dims(module) -> int | None:
    """1, 2 or 3 for a supported convolution/pooling module, None otherwise."""
    from torch import nn

    table = {
        1: (nn.Conv1d, nn.MaxPool1d, nn.AvgPool1d),
        2: (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d),
        3: (nn.Conv3d, nn.MaxPool3d, nn.AvgPool3d),
    }
    for dims, kinds in table.items():
        if isinstance(module, kinds):
            return dims
    return None


def _is_pointwise(module) -> bool:
    """Modules that do not mix neighbouring pixels: activations, normalisation, dropout, identity.

    Normalisation layers are ignored as is customary for receptive fields, although batch and
    instance norm compute their statistics over the whole feature map.
    """
    from torch import nn
    from torch.nn.modules.batchnorm import _NormBase
    from torch.nn.modules.dropout import _DropoutNd

    if isinstance(module, (_NormBase, nn.GroupNorm, _DropoutNd, nn.Identity)):
        return True
    if isinstance(module, nn.MultiheadAttention):  # lives among the activations, mixes positions
        return False
    # every activation of torch.nn (ReLU, LeakyReLU, GELU, Sigmoid, Softmax over channels, ...)
    return type(module).__module__ == "torch.nn.modules.activation"


def _along(value, axis: int, dims: int, what: str, where: str) -> int:
    """Pick one axis out of an int-or-tuple module attribute."""
    if isinstance(value, int):
        return value
    value = tuple(value)
    if len(value) != dims:
        raise ArgumentError(f"{where}: {what} {value} does not have {dims} entries")
    return int(value[axis])


def _layer_from_module(module, axis: int, where: str) -> Layer:
    """The :class:`Layer` of a Conv/Pool module along spatial ``axis``.

    Reflect/replicate/circular padding modes change padded values, not geometry, so they are
    treated like zero padding.
    """
    dims = _spatial_dims(module)
    assert dims is not None
    if axis >= dims:
        raise ArgumentError(f"axis must be < {dims} for {where}, got {axis}")
    kernel = _along(module.kernel_size, axis, dims, "kernel_size", where)
    stride = _along(module.stride, axis, dims, "stride", where)
    dilation = _along(getattr(module, "dilation", 1), axis, dims, "dilation", where)
    padding = module.padding
    if isinstance(padding, str):
        if padding == "valid":
            padding = 0
        else:  # "same": torch pads d·(k−1) in total, the odd sample on the right
            total = dilation * (kernel - 1)
            if total % 2:
                raise ArgumentError(
                    f"{where}: padding='same' with an even effective kernel pads unevenly; "
                    "give an explicit padding instead"
                )
            padding = total // 2
    else:
        padding = _along(padding, axis, dims, "padding", where)
    ceil_mode = bool(getattr(module, "ceil_mode", False))
    return Layer(
        kernel=kernel,
        stride=stride,
        dilation=dilation,
        padding=padding,
        name=where,
        ceil_mode=ceil_mode,
    )


def layers_of(module, axis: int = 0) -> list[Layer]:
    """The convolution and pooling layers of a torch ``nn.Sequential``, along spatial ``axis``.

    Walks ``module`` (nested ``nn.Sequential`` included) in order and reads kernel, stride,
    dilation and padding off every ``Conv1d/2d/3d``, ``MaxPool1d/2d/3d`` and ``AvgPool1d/2d/3d``.
    Activations, normalisation, dropout and ``Identity`` are skipped. ``axis`` counts spatial
    axes only (0 is the first axis after the channels). A layer's name is its path in the model
    and its type, e.g. ``"features.0 Conv2d"``.

    Anything else (``Linear``, ``Flatten``, transposed or adaptive layers, or a custom module
    whose ``forward`` order cannot be known) raises :class:`~cmrlab.errors.ArgumentError`:
    pass only the convolutional part, e.g. ``model[:8]``.
    """
    from torch import nn

    if not isinstance(module, nn.Module):
        raise ArgumentError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    axis = check_int("axis", axis, 0)
    found: list[Layer] = []
    dims_seen: set[int] = set()

    def walk(mod, path: str) -> None:
        where = f"{path} {type(mod).__name__}" if path else type(mod).__name__
        dims = _spatial_dims(mod)
        if dims is not None:
            dims_seen.add(dims)
            if len(dims_seen) > 1:
                raise ArgumentError(
                    f"{where}: the model mixes {sorted(dims_seen)}-D layers; "
                    "pass a model of one dimensionality"
                )
            found.append(_layer_from_module(mod, axis, where))
        elif isinstance(mod, nn.Sequential):
            for child_name, child in mod.named_children():
                walk(child, f"{path}.{child_name}" if path else child_name)
        elif _is_pointwise(mod):
            return
        else:
            raise ArgumentError(
                f"{where} is not supported by the receptive-field calculator: it handles "
                "nn.Sequential chains of Conv/MaxPool/AvgPool (1D/2D/3D), activations, "
                "normalisation and dropout; pass only the convolutional part of the model"
            )

    walk(module, "")
    return found


def receptive_field_of(module, axis: int = 0, input_size: int | None = None) -> list[LayerRF]:
    """:func:`receptive_field` of a torch ``nn.Sequential`` (see :func:`layers_of`).

    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3))
    >>> [(rf.name, rf.size, rf.jump) for rf in receptive_field_of(net)]
    [('0 Conv2d', 3, 1), ('2 MaxPool2d', 4, 2), ('3 Conv2d', 8, 2)]
    """
    return receptive_field(layers_of(module, axis=axis), input_size=input_size)


def count_parameters(module, trainable_only: bool = True) -> int:
    """Number of parameter values (weights and biases) of a torch module.

    Shared parameters are counted once. With ``trainable_only`` (the default) frozen parameters
    (``requires_grad=False``) are left out. Works on the ``meta`` device, so huge layers can be
    counted without allocating them: ``count_parameters(nn.Linear(65536, 64, device="meta"))``
    is 65 536·64 + 64 = 4 194 368.
    """
    from torch import nn

    if not isinstance(module, nn.Module):
        raise ArgumentError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    total = 0
    for param in module.parameters():
        if isinstance(param, nn.parameter.UninitializedParameter):
            raise ArgumentError(
                f"{type(module).__name__} has lazy parameters that are not initialised yet: "
                "run one forward pass before counting"
            )
        if param.requires_grad or not trainable_only:
            total += param.numel()
    return total
