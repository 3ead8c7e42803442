"""Tests of cmrlab.nn.receptive_field: output sizes against torch, receptive fields against the
gradient of a real network, the lecture's numbers, and the errors."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cmrlab.errors import ArgumentError, CmrlabError
from cmrlab.nn.receptive_field import (
    Layer,
    conv_output_size,
    count_parameters,
    layers_of,
    receptive_field,
    receptive_field_of,
)

CALCIUM_DILATIONS = [1, 1, 2, 4, 8, 16, 32, 1, 1]


# ------------------------------------------------------------------------------ output sizes

def test_conv_output_size_matches_torch_on_a_grid():
    checked = 0
    for n, k, s, p, d in itertools.product((1, 4, 7, 12), (1, 2, 3, 5), (1, 2, 3), (0, 1, 2), (1, 2, 3)):
        x = torch.zeros(1, 1, n)
        w = torch.zeros(1, 1, k)
        try:
            expected = F.conv1d(x, w, stride=s, padding=p, dilation=d).shape[-1]
        except RuntimeError:
            with pytest.raises(ArgumentError):
                conv_output_size(n, k, s, p, d)
            continue
        assert conv_output_size(n, k, s, p, d) == expected, (n, k, s, p, d)
        checked += 1
    assert checked > 300  # most of the 432 settings are possible


def test_conv_output_size_ceil_mode_matches_torch_pooling():
    checked = 0
    for n, k, s, p in itertools.product(range(2, 12), (2, 3, 4), (1, 2, 3), (0, 1, 2)):
        if p > k // 2 or k > n + 2 * p:  # torch refuses these pooling settings
            continue
        x = torch.zeros(1, 1, n)
        for ceil in (False, True):
            expected = F.max_pool1d(x, k, stride=s, padding=p, ceil_mode=ceil).shape[-1]
            assert conv_output_size(n, k, s, p, ceil_mode=ceil) == expected, (n, k, s, p, ceil)
            checked += 1
    assert checked > 400


def test_conv_output_size_worked_examples():
    assert conv_output_size(256, 3, padding=1) == 256
    assert conv_output_size(256, 2, stride=2) == 128
    assert conv_output_size(155, 3, dilation=32) == 91
    assert conv_output_size(5, 2, stride=2, ceil_mode=True) == 3
    assert conv_output_size(np.int64(8), np.int32(3)) == 6  # numpy integers are accepted


@pytest.mark.parametrize(
    "kwargs, word",
    [
        (dict(size=0, kernel=3), "size"),
        (dict(size=8, kernel=0), "kernel"),
        (dict(size=8, kernel=3, stride=0), "stride"),
        (dict(size=8, kernel=3, dilation=0), "dilation"),
        (dict(size=8, kernel=3, padding=-1), "padding"),
        (dict(size=8, kernel=3.0), "kernel"),
        (dict(size=8, kernel=True), "kernel"),
        (dict(size=4, kernel=3, dilation=2), "no output"),
    ],
)
def test_conv_output_size_errors_name_the_problem(kwargs, word):
    with pytest.raises(ArgumentError, match=word) as info:
        conv_output_size(**kwargs)
    assert isinstance(info.value, ValueError) and isinstance(info.value, CmrlabError)


# ------------------------------------------------------------------------- receptive fields

def _empirical_extent(layers: list[Layer], size: int) -> tuple[int, int, int]:
    """Measure the receptive field of the centre output by back-propagating a delta.

    Builds the chain as 1-channel conv1d layers with all-ones weights and no bias, so every
    input that reaches the output does so with a positive weight (nothing cancels). Returns
    (extent of the nonzero input gradient, index of its first pixel, centre output index).
    """
    x = torch.zeros(1, 1, size, dtype=torch.float64, requires_grad=True)
    y = x
    for layer in layers:
        w = torch.ones(1, 1, layer.kernel, dtype=torch.float64)
        y = F.conv1d(y, w, stride=layer.stride, padding=layer.padding, dilation=layer.dilation)
    centre = y.shape[-1] // 2
    delta = torch.zeros_like(y)
    delta[..., centre] = 1.0
    (grad,) = torch.autograd.grad(y, x, delta)
    nonzero = torch.nonzero(grad[0, 0]).flatten()
    first, last = int(nonzero.min()), int(nonzero.max())
    return last - first + 1, first, centre


STACKS = {
    "plain 3x3 x5": [Layer(3) for _ in range(5)],
    "calcium dilated": [Layer(3, dilation=d) for d in CALCIUM_DILATIONS],
    "strided": [Layer(3, stride=2), Layer(3, stride=2), Layer(3), Layer(5, stride=3)],
    "vgg-like with pools": [Layer(3, padding=1), Layer(3, padding=1), Layer(2, stride=2),
                            Layer(3, padding=1), Layer(3, padding=1), Layer(2, stride=2)],
    "stride then dilation": [Layer(1, stride=2), Layer(3, dilation=2), Layer(4, stride=2, dilation=3)],
    "padded mixed": [Layer(5, padding=2, stride=2), Layer(3, dilation=4, padding=3), Layer(2, stride=2)],
}


@pytest.mark.parametrize("name", sorted(STACKS))
def test_receptive_field_equals_the_gradient_extent(name):
    layers = STACKS[name]
    rf = receptive_field(layers)[-1]
    size = 4 * rf.size + 7  # large enough that the centre output's field lies inside the input
    extent, first, centre = _empirical_extent(layers, size)
    assert extent == rf.size
    # the centre of the measured field is where `start` + index·jump says it is
    assert first + (extent - 1) / 2 == rf.centre(centre)


def test_receptive_field_of_a_torch_2d_model_equals_its_gradient_extent():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, dilation=2), nn.ReLU(), nn.BatchNorm2d(4),
        nn.AvgPool2d(2), nn.Conv2d(4, 4, (3, 5), stride=(1, 2)), nn.Dropout(0.5),
        nn.Sequential(nn.Conv2d(4, 1, 3, padding=1), nn.LeakyReLU()),
    )
    for conv in net.modules():
        if isinstance(conv, nn.Conv2d):
            nn.init.ones_(conv.weight)
            nn.init.zeros_(conv.bias)
    net.eval()  # BatchNorm and Dropout act pointwise in eval mode
    x = torch.rand(1, 1, 61, 73, dtype=torch.float64, requires_grad=True)
    y = net.double()(x + 1)  # positive input: the ReLUs pass everything
    delta = torch.zeros_like(y)
    delta[..., y.shape[-2] // 2, y.shape[-1] // 2] = 1.0
    (grad,) = torch.autograd.grad(y, x, delta)
    rows, cols = torch.nonzero(grad[0, 0], as_tuple=True)
    measured = (int(rows.max() - rows.min()) + 1, int(cols.max() - cols.min()) + 1)
    computed = tuple(receptive_field_of(net, axis=a)[-1].size for a in (0, 1))
    assert computed == measured == (14, 22)


def test_plain_3x3_stack_grows_as_2L_plus_1():
    sizes = [rf.size for rf in receptive_field([Layer(3)] * 10)]
    assert sizes == [2 * depth + 1 for depth in range(1, 11)]


def test_calcium_network_receptive_field_is_133_not_131():
    table = receptive_field([Layer(3, dilation=d) for d in CALCIUM_DILATIONS], input_size=155)
    assert [rf.size for rf in table] == [3, 5, 9, 17, 33, 65, 129, 131, 133]
    assert table[-1].size == 1 + 2 * sum(CALCIUM_DILATIONS) == 133
    assert table[-1].output_size == 155 - 132 == 23
    # the slide's 131 if the last layer is 1x1 instead of 3x3
    other = [Layer(3, dilation=d) for d in CALCIUM_DILATIONS[:-1]] + [Layer(1)]
    last = receptive_field(other, input_size=155)[-1]
    assert (last.size, last.output_size) == (131, 25)


def test_jump_start_and_output_sizes():
    table = receptive_field(
        [Layer(3, padding=1, name="c1"), Layer(2, stride=2, name="p1"), Layer(3, padding=1, name="c2")],
        input_size=256,
    )
    assert [(t.name, t.jump, t.size, t.start, t.output_size) for t in table] == [
        ("c1", 1, 3, 0.0, 256),
        ("p1", 2, 4, 0.5, 128),
        ("c2", 2, 8, 0.5, 128),
    ]
    assert table[2].centre(10) == 20.5
    assert receptive_field([]) == []


def test_receptive_field_errors():
    with pytest.raises(ArgumentError, match="conv3"):
        receptive_field([Layer(3), Layer(3, name="conv3", dilation=4)], input_size=9)
    with pytest.raises(ArgumentError, match=r"layers\[1\]"):
        receptive_field([Layer(3), (3, 1)])
    with pytest.raises(ArgumentError, match="input_size"):
        receptive_field([Layer(3)], input_size=0)
    with pytest.raises(ArgumentError, match="c1: stride"):
        Layer(3, stride=0, name="c1")
    with pytest.raises(ArgumentError, match="padding"):
        Layer(3, padding=-1)


# ---------------------------------------------------------------- reading torch modules

def test_layers_of_reads_torch_modules():
    net = nn.Sequential(
        nn.Conv3d(1, 2, (3, 5, 1), stride=(1, 2, 1), padding=(1, 2, 0), dilation=(2, 1, 1)),
        nn.GroupNorm(1, 2), nn.GELU(),
        nn.MaxPool3d(2, ceil_mode=True),
        nn.AvgPool3d((1, 3, 3), stride=1, padding=(0, 1, 1)),
        nn.Conv3d(2, 2, 3, padding="same", dilation=2),
        nn.Conv3d(2, 2, 3, padding="valid"),
    )
    names = [layer.name for layer in layers_of(net)]
    assert names == ["0 Conv3d", "3 MaxPool3d", "4 AvgPool3d", "5 Conv3d", "6 Conv3d"]
    along = {a: [(l.kernel, l.stride, l.dilation, l.padding) for l in layers_of(net, axis=a)]
             for a in range(3)}
    assert along[0] == [(3, 1, 2, 1), (2, 2, 1, 0), (1, 1, 1, 0), (3, 1, 2, 2), (3, 1, 1, 0)]
    assert along[1] == [(5, 2, 1, 2), (2, 2, 1, 0), (3, 1, 1, 1), (3, 1, 2, 2), (3, 1, 1, 0)]
    assert along[2] == [(1, 1, 1, 0), (2, 2, 1, 0), (3, 1, 1, 1), (3, 1, 2, 2), (3, 1, 1, 0)]
    assert layers_of(net)[1].ceil_mode is True
    # output sizes agree with a forward pass
    x = torch.zeros(1, 1, 11, 20, 9)
    out = net(x).shape[2:]
    assert tuple(receptive_field_of(net, axis=a, input_size=x.shape[2 + a])[-1].output_size
                 for a in range(3)) == tuple(out)


def test_layers_of_1d_and_errors():
    net1d = nn.Sequential(nn.Conv1d(1, 1, 7, stride=2), nn.MaxPool1d(3, stride=2, dilation=2))
    assert [(l.kernel, l.stride, l.dilation) for l in layers_of(net1d)] == [(7, 2, 1), (3, 2, 2)]
    with pytest.raises(ArgumentError, match="1 Flatten is not supported"):
        layers_of(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Flatten(), nn.Linear(4, 2)))
    with pytest.raises(ArgumentError, match="ConvTranspose2d"):
        layers_of(nn.Sequential(nn.ConvTranspose2d(1, 1, 2, stride=2)))
    with pytest.raises(ArgumentError, match="AdaptiveAvgPool2d"):
        layers_of(nn.Sequential(nn.Conv2d(1, 1, 3), nn.AdaptiveAvgPool2d(1)))
    with pytest.raises(ArgumentError, match="axis"):
        layers_of(nn.Sequential(nn.Conv2d(1, 1, 3)), axis=2)
    with pytest.raises(ArgumentError, match="mixes"):
        layers_of(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Conv3d(1, 1, 3)))
    with pytest.raises(ArgumentError, match="same"):
        layers_of(nn.Sequential(nn.Conv2d(1, 1, 4, padding="same")))
    with pytest.raises(ArgumentError, match="torch.nn.Module"):
        layers_of([nn.Conv2d(1, 1, 3)])

    class Residual(nn.Module):  # forward order unknown to the calculator
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x):
            return x + self.conv(x)

    with pytest.raises(ArgumentError, match="1 Residual is not supported"):
        layers_of(nn.Sequential(nn.Conv2d(1, 1, 3), Residual()))
    with pytest.raises(ArgumentError, match="MultiheadAttention"):
        layers_of(nn.Sequential(nn.MultiheadAttention(4, 1)))


# ------------------------------------------------------------------------ parameter counts

def test_lecture_parameter_counts():
    assert count_parameters(nn.Linear(256 * 256, 64, device="meta")) == 4_194_368
    assert count_parameters(nn.Conv2d(3, 1, 3)) == 28
    assert count_parameters(nn.Conv2d(3, 32, 3)) == 896
    assert count_parameters(nn.Conv2d(32, 32, 3)) == 9_248


def test_count_parameters_trainable_shared_and_lazy():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1, bias=False))
    assert count_parameters(net) == (4 * 9 + 4) + (4 + 4) + 8
    net[0].weight.requires_grad_(False)
    assert count_parameters(net) == 4 + 8 + 8
    assert count_parameters(net, trainable_only=False) == 56
    shared = nn.Linear(3, 3)
    assert count_parameters(nn.Sequential(shared, nn.ReLU(), shared)) == 12
    with pytest.raises(ArgumentError, match="forward"):
        count_parameters(nn.LazyLinear(2))
    with pytest.raises(ArgumentError, match="torch.nn.Module"):
        count_parameters("resnet")
