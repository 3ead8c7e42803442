"""cmrlab.nn.regularization: Keras-style weight penalties, max-norm and early stopping."""
import math

import pytest
import torch
from torch import nn

from cmrlab.errors import ArgumentError
from cmrlab.nn.regularization import EarlyStopping, max_norm_, regularized_parameters, weight_penalty


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(),
                         nn.ConvTranspose2d(3, 2, 2, stride=2), nn.Flatten(), nn.LazyLinear(4)).double()


def test_regularized_parameters_are_kernels_only():
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.Linear(3, 2))
    params = regularized_parameters(net)
    assert [tuple(p.shape) for p in params] == [(3, 1, 3, 3), (2, 3)]
    with_bias = regularized_parameters(net, include_bias=True)
    assert [tuple(p.shape) for p in with_bias] == [(3, 1, 3, 3), (3,), (2, 3), (2,)]


def test_weight_penalty_value_keras_convention():
    net = nn.Sequential(nn.Linear(2, 2, bias=True), nn.BatchNorm1d(2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 0.0]]))
        net[0].bias.fill_(10.0)
    # l1: 0.1·(1 + 2 + 0.5) = 0.35; l2: 0.01·(1 + 4 + 0.25) = 0.0525 (no 1/2 factor)
    assert weight_penalty(net, l1=0.1).item() == pytest.approx(0.35)
    assert weight_penalty(net, l2=0.01).item() == pytest.approx(0.0525)
    assert weight_penalty(net, l1=0.1, l2=0.01).item() == pytest.approx(0.4025)
    assert weight_penalty(net, l1=0.1, include_bias=True).item() == pytest.approx(0.35 + 0.1 * 20)
    assert float(weight_penalty(nn.ReLU(), l1=1.0)) == 0.0


def test_l2_penalty_with_sgd_equals_weight_decay_two_l2():
    torch.manual_seed(1)
    x, y = torch.randn(16, 5, dtype=torch.float64), torch.randn(16, 1, dtype=torch.float64)
    a = nn.Linear(5, 1, bias=False).double()
    b = nn.Linear(5, 1, bias=False).double()
    b.load_state_dict(a.state_dict())
    l2, lr = 0.03, 0.1
    opt_a = torch.optim.SGD(a.parameters(), lr=lr)
    opt_b = torch.optim.SGD(b.parameters(), lr=lr, weight_decay=2 * l2)
    for _ in range(5):
        opt_a.zero_grad(); opt_b.zero_grad()
        (nn.functional.mse_loss(a(x), y) + weight_penalty(a, l2=l2)).backward()
        nn.functional.mse_loss(b(x), y).backward()
        opt_a.step(); opt_b.step()
    assert torch.allclose(a.weight, b.weight, atol=1e-12)


def test_max_norm_matches_keras_formula_and_torch_renorm():
    net = _net()
    net(torch.zeros(1, 1, 6, 6, dtype=torch.float64))          # materialise the lazy layer
    with torch.no_grad():
        for p in regularized_parameters(net):
            p.mul_(5.0)
    before = [p.detach().clone() for p in regularized_parameters(net)]
    c = 1.0
    expected_clipped = 0
    for w, dim in zip(before, (0, 1, 0)):          # Conv2d, ConvTranspose2d, Linear
        other = [d for d in range(w.ndim) if d != dim]
        expected_clipped += int((w.pow(2).sum(dim=other).sqrt() > c).sum())
    clipped = max_norm_(net, max_value=c)
    assert clipped == expected_clipped > 0
    after = regularized_parameters(net)
    # Conv2d and Linear: output units along dim 0, as torch.renorm(dim=0) scales them
    assert torch.allclose(after[0], torch.renorm(before[0], 2, 0, c), atol=1e-9)
    assert torch.allclose(after[2], torch.renorm(before[2], 2, 0, c), atol=1e-9)
    # ConvTranspose2d weight is (in, out, k, k): its output units are dim 1
    assert torch.allclose(after[1], torch.renorm(before[1], 2, 1, c), atol=1e-9)
    for w, dim in zip(after, (0, 1, 0)):
        other = [d for d in range(w.ndim) if d != dim]
        assert float(w.detach().pow(2).sum(dim=other).sqrt().max()) <= c + 1e-9


def test_max_norm_leaves_small_units_alone():
    lin = nn.Linear(3, 2, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[3.0, 4.0, 0.0], [0.1, 0.2, 0.2]]))   # norms 5 and 0.3
    assert max_norm_(lin, max_value=2.0) == 1
    assert torch.allclose(lin.weight[0], torch.tensor([1.2, 1.6, 0.0], dtype=torch.float64), atol=1e-6)
    assert torch.allclose(lin.weight[1], torch.tensor([0.1, 0.2, 0.2], dtype=torch.float64), atol=1e-6)


def test_early_stopping_min_mode_and_restore():
    model = nn.Linear(1, 1)
    stopper = EarlyStopping(patience=2)
    losses = [1.0, 0.8, 0.85, 0.7, 0.75, 0.72, 0.9]
    stops = []
    for epoch, loss in enumerate(losses, start=1):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        stops.append(stopper.step(loss, model))
    assert stops == [False, False, False, False, False, True, True]
    assert stopper.best_epoch == 4 and stopper.best_value == 0.7 and stopper.stopped_epoch == 6
    stopper.restore(model)
    assert model.weight.item() == 4.0


def test_early_stopping_max_mode_min_delta_and_nan():
    stopper = EarlyStopping(patience=1, mode="max", min_delta=0.05)
    assert stopper.step(0.5) is False
    assert stopper.step(0.54) is True            # +0.04 is not an improvement of more than 0.05
    assert stopper.best_epoch == 1
    nan_stopper = EarlyStopping(patience=2)
    assert [nan_stopper.step(math.nan) for _ in range(2)] == [False, True]
    assert nan_stopper.best_epoch is None


def test_early_stopping_patience_zero_and_explicit_epochs():
    stopper = EarlyStopping(patience=0)
    assert stopper.step(torch.tensor(1.0), epoch=10) is False
    assert stopper.step(2.0, epoch=11) is True
    assert stopper.best_epoch == 10


def test_bad_arguments():
    with pytest.raises(ArgumentError, match="l1"):
        weight_penalty(nn.Linear(1, 1), l1=-1)
    with pytest.raises(ArgumentError, match="model"):
        weight_penalty("net", l2=1.0)
    with pytest.raises(ArgumentError, match="max_value"):
        max_norm_(nn.Linear(1, 1), max_value=0)
    with pytest.raises(ArgumentError, match="patience"):
        EarlyStopping(patience=-1)
    with pytest.raises(ArgumentError, match="mode"):
        EarlyStopping(mode="best")
    with pytest.raises(ArgumentError, match="value"):
        EarlyStopping().step("low")
    with pytest.raises(ArgumentError, match="no weights"):
        EarlyStopping().restore(nn.Linear(1, 1))
