"""DropBlock2d (Ghiasi et al. 2018): seed rate, drop fraction, block shapes, rescaling, eval."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from cmrlab.errors import ArgumentError
from cmrlab.nn.regularization import DropBlock2d, dropblock_gamma


def _expected_fraction(p: float, b: int, h: int, w: int) -> float:
    """Exact mean dropped fraction: unit (i, j) is covered by n_i·n_j possible seeds, each drawn
    with probability γ, so it survives with probability (1 − γ)^(n_i n_j)."""
    gamma = dropblock_gamma(p, b, h, w)
    def covers(n):
        return np.array([min(i, n - b) - max(0, i - b + 1) + 1 for i in range(n)])
    counts = np.outer(covers(h), covers(w))
    return float(np.mean(1.0 - (1.0 - gamma) ** counts))


def test_gamma_formula():
    # γ = p / b² · feat² / (feat − b + 1)²
    assert dropblock_gamma(0.1, 7, 28, 28) == pytest.approx(0.1 / 49 * 784 / 22**2)
    assert dropblock_gamma(0.3, 1, 10, 10) == pytest.approx(0.3)           # b = 1: plain dropout
    with pytest.raises(ArgumentError, match="fit"):
        dropblock_gamma(0.1, 9, 8, 8)


@pytest.mark.parametrize("p, b, h, w", [(0.1, 7, 28, 28), (0.3, 3, 16, 24), (0.2, 5, 12, 12)])
def test_drop_fraction_matches_the_exact_expectation(p, b, h, w):
    layer = DropBlock2d(p, b).train()
    x = torch.ones(32, 16, h, w)
    mask = layer.block_mask(x, torch.Generator().manual_seed(0))
    expected = _expected_fraction(p, b, h, w)
    # units of one map are correlated (blocks), so the SD is over maps: at most b² units per seed
    n_maps = 32 * 16
    sd = math.sqrt(expected * (1 - expected) / n_maps)
    assert abs(float(mask.mean()) - expected) < 6 * sd + 1e-3, (float(mask.mean()), expected)
    # and the target p is approached from below (overlaps), not exceeded by much
    assert expected <= p * 1.01


def test_blocks_are_b_by_b_squares():
    b = 4
    layer = DropBlock2d(0.02, b).train()
    mask = layer.block_mask(torch.ones(64, 1, 40, 40), torch.Generator().manual_seed(3))[:, 0].numpy()
    n_isolated = 0
    for m in mask:
        components, n = ndimage.label(m)
        for k in range(1, n + 1):
            rows, cols = np.nonzero(components == k)
            height, width = np.ptp(rows) + 1, np.ptp(cols) + 1
            assert height >= b and width >= b              # every dropped area holds whole blocks
            if (components == k).sum() == b * b:
                n_isolated += 1
                assert height == width == b                 # a lone block is a b×b square
    assert n_isolated > 20


def test_rescaling_keeps_the_mean_and_eval_is_identity():
    layer = DropBlock2d(0.25, 5)
    x = torch.rand(16, 8, 20, 20, generator=torch.Generator().manual_seed(1)) + 1.0
    layer.train()
    y = layer(x, generator=torch.Generator().manual_seed(2))
    kept = y != 0
    scale = kept.numel() / kept.sum()
    torch.testing.assert_close(y[kept], x[kept] * scale)
    assert abs(float(y.mean() / x.mean()) - 1) < 0.02
    layer.eval()
    assert torch.equal(layer(x), x)
    layer.train()
    layer.drop_prob = 0.0
    assert torch.equal(layer(x), x)


def test_block_as_large_as_the_map_drops_whole_channels():
    layer = DropBlock2d(0.3, 50).train()                   # shrunk to the 10×10 map
    mask = layer.block_mask(torch.ones(64, 32, 10, 10), torch.Generator().manual_seed(4))
    per_channel = mask.amax(dim=(2, 3))
    assert torch.equal(per_channel, mask.amin(dim=(2, 3)))   # each channel all dropped or all kept
    n = per_channel.numel()
    assert abs(float(per_channel.sum()) - 0.3 * n) < 5 * math.sqrt(n * 0.3 * 0.7)


def test_bad_arguments():
    with pytest.raises(ArgumentError, match="drop_prob"):
        DropBlock2d(1.0, 3)
    with pytest.raises(ArgumentError, match="block_size"):
        DropBlock2d(0.1, 0)
    with pytest.raises(ArgumentError, match="N, C, H, W"):
        DropBlock2d(0.1, 3).train()(torch.ones(2, 3, 4))
