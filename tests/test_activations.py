"""cmrlab.nn.activations: the growing cosine unit."""
import math

import pytest
import torch

from cmrlab.errors import ArgumentError
from cmrlab.nn.activations import GrowingCosineUnit, gcu
from cmrlab.nn.blocks import ConvBNAct


def test_gcu_values():
    z = torch.tensor([0.0, math.pi / 2, math.pi, -math.pi, 2.0], dtype=torch.float64)
    expected = torch.tensor([0.0, 0.0, -math.pi, math.pi, 2 * math.cos(2.0)], dtype=torch.float64)
    assert torch.allclose(gcu(z), expected, atol=1e-12)
    assert gcu(z).dtype == torch.float64


def test_gcu_derivative_is_cos_minus_z_sin():
    z = torch.linspace(-6, 6, 101, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(gcu(z).sum(), z)
    assert torch.allclose(grad, torch.cos(z) - z * torch.sin(z), atol=1e-12)
    assert torch.autograd.gradcheck(gcu, (z[:7].detach().clone().requires_grad_(),))


def test_single_gcu_neuron_separates_xor():
    # GCU(x1 + x2): 0 → 0, 1 → cos 1 ≈ 0.54, 2 → 2 cos 2 ≈ −0.83; threshold 0.25 gives XOR
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    out = GrowingCosineUnit()(x @ torch.tensor([1.0, 1.0]))
    assert (out > 0.25).tolist() == [False, True, True, False]


def test_module_in_a_block_and_shape_preserved():
    block = ConvBNAct(2, 1, 4, 3, activation=lambda c: GrowingCosineUnit())
    y = block(torch.randn(2, 1, 8, 8))
    assert y.shape == (2, 4, 8, 8)
    assert not list(GrowingCosineUnit().parameters())


def test_bad_input():
    with pytest.raises(ArgumentError, match="input"):
        gcu([1.0, 2.0])
    with pytest.raises(ArgumentError, match="floating"):
        gcu(torch.tensor([1, 2]))
