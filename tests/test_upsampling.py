"""Tests of cmrlab.nn.upsampling: transposed-convolution output sizes against torch, overlap
counts against a transposed convolution of ones, the patterns behind checkerboard artifacts,
and the errors."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cmrlab.errors import ArgumentError
from cmrlab.nn.receptive_field import conv_output_size
from cmrlab.nn.upsampling import conv_transpose_output_size, overlap_count


def test_output_size_matches_torch_on_a_grid():
    checked = refused = 0
    for n, k, s, p, a, d in itertools.product((1, 2, 5), (1, 2, 3, 4), (1, 2, 3), (0, 1, 2), (0, 1, 2), (1, 2)):
        try:
            expected = F.conv_transpose1d(
                torch.zeros(1, 1, n), torch.zeros(1, 1, k), stride=s, padding=p, output_padding=a, dilation=d
            ).shape[-1]
        except RuntimeError:
            with pytest.raises(ArgumentError):
                conv_transpose_output_size(n, k, s, p, a, d)
            refused += 1
            continue
        assert conv_transpose_output_size(n, k, s, p, a, d) == expected, (n, k, s, p, a, d)
        checked += 1
    assert checked > 200 and refused > 50


def test_output_size_worked_examples():
    assert conv_transpose_output_size(2, 3) == 4                 # brain thesis, unit stride
    assert conv_transpose_output_size(2, 3, stride=2) == 5       # one zero inserted between inputs
    assert conv_transpose_output_size(16, 31, stride=16) == 271  # explainable FCN upscore
    assert conv_transpose_output_size(64, 2, stride=2) == 128    # U-Net up-convolution
    assert conv_transpose_output_size(32, 3, stride=2, padding=1, output_padding=1) == 64  # ENet


def test_output_size_inverts_the_convolution():
    # the transposed convolution maps the conv's output size back to its input size
    for n, k, s, p in itertools.product(range(5, 20), (1, 2, 3, 5), (1, 2, 3), (0, 1, 2)):
        out = conv_output_size(n, k, s, p)
        a = (n + 2 * p - k) % s
        assert conv_transpose_output_size(out, k, s, p, output_padding=a) == n


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(size=0, kernel=3), "size"),
        (dict(size=4, kernel=0), "kernel"),
        (dict(size=4, kernel=3, stride=0), "stride"),
        (dict(size=4, kernel=3, padding=-1), "padding"),
        (dict(size=4, kernel=3, stride=2, output_padding=2), "output_padding"),
        (dict(size=1, kernel=1, padding=1), "crops the whole output"),
        (dict(size=4.0, kernel=3), "size"),
    ],
)
def test_output_size_errors_name_the_argument(kwargs, match):
    with pytest.raises(ArgumentError, match=match):
        conv_transpose_output_size(**kwargs)


def _ones_through_conv_transpose(shape, k, s, p, d):
    dims = len(shape)
    op = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[dims]
    x = torch.ones(1, 1, *shape, dtype=torch.float64)
    w = torch.ones(1, 1, *k, dtype=torch.float64)
    return op(x, w, stride=s, padding=p, dilation=d)[0, 0].numpy()


@pytest.mark.parametrize(
    "shape, k, s, p, d",
    [
        ((7,), (3,), 2, 0, 1),
        ((7,), (5,), 3, 1, 1),
        ((6,), (3,), 2, 0, 2),
        ((4, 5), (3, 4), (2, 2), (0, 1), (1, 1)),
        ((3, 4, 2), (3, 2, 2), (2, 2, 1), (1, 0, 0), (1, 1, 2)),
    ],
)
def test_overlap_count_is_conv_transpose_of_ones(shape, k, s, p, d):
    counts = overlap_count(shape if len(shape) > 1 else shape[0], k if len(k) > 1 else k[0], s, p, d)
    expected = _ones_through_conv_transpose(shape, k, s, p, d)
    assert counts.dtype == np.int64
    assert counts.shape == expected.shape
    assert np.array_equal(counts, expected)


def test_overlap_is_even_only_when_the_kernel_is_a_multiple_of_the_stride():
    for k, s in itertools.product(range(1, 9), range(1, 5)):
        interior = overlap_count(20, k, s)[k:-k]
        assert (len(set(interior.tolist())) == 1) == (k % s == 0), (k, s)
    # k = 3, s = 2: 2 taps on even positions, 1 on odd ones; squared in 2D
    assert overlap_count(6, 3, 2)[2:10].tolist() == [2, 1, 2, 1, 2, 1, 2, 1]
    assert set(overlap_count((6, 6), 3, 2)[2:10, 2:10].ravel().tolist()) == {1, 2, 4}
    assert set(overlap_count((6, 6), 4, 2)[3:9, 3:9].ravel().tolist()) == {4}
    # the explainable FCN's 31×31 kernel of stride 16: 2 taps, except 1 on every 16th pixel
    fcn = overlap_count(16, 31, 16)
    assert len(fcn) == 271
    inside = np.arange(15, 256)                     # every position reached by two inputs or by a centre
    assert np.array_equal(np.flatnonzero(fcn[inside] == 1) + 15, np.arange(15, 256, 16))
    assert set(fcn[inside].tolist()) == {1, 2}


def test_overlap_count_errors():
    with pytest.raises(ArgumentError, match="kernel must have 2 entries"):
        overlap_count((4, 4), (3, 3, 3))
    with pytest.raises(ArgumentError, match="size must have 1 to 3 entries"):
        overlap_count((4, 4, 4, 4), 3)
    with pytest.raises(ArgumentError, match="stride"):
        overlap_count(4, 3, stride=0)
