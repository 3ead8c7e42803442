"""Tests of the shared U-Net trunk and of the four U-Nets built on it.

Each model is checked against the hand-written encoder/decoder loop it had before the trunk
existed (written out again here from the model's own modules), so a change in the trunk's order
of pooling, skips, concatenation or head shows up as a numerical difference.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from cmrlab.errors import ArgumentError
from cmrlab.nn.blocks import ConvBNAct, check_dropout, check_model_input
from cmrlab.nn.models.densenet3d import DenseNet3D
from cmrlab.nn.models.pspunet import PSPUNet
from cmrlab.nn.models.regression_unet import RegressionUNet
from cmrlab.nn.models.unet2d import UNet2D
from cmrlab.nn.models.unet3d import UNet3D
from cmrlab.nn.models.unet3d_cardiac import CardiacUNet3D
from cmrlab.nn.models.unet_trunk import UNetTrunk, doubling_widths
from cmrlab.nn.models.vnet import VNet


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def old_loop(model: nn.Module, x: torch.Tensor, *, up_first: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The loop the models had before the trunk: (head output, bottleneck)."""
    skips = []
    for level, block in enumerate(model.encoder):
        if level:
            x = model.pool(x)
        x = block(x)
        skips.append(x)
    bottleneck = skips.pop()
    if getattr(model, "skips", None) is not None:
        skips = [transform(s) for transform, s in zip(model.skips, skips)]
    x = bottleneck
    for up, block in zip(model.up, model.decoder):
        y = up(x)
        x = block(torch.cat([y, skips.pop()] if up_first else [skips.pop(), y], dim=1))
    return model.head(x), bottleneck


@pytest.mark.parametrize("train", [True, False])
def test_cardiac_unet3d_equals_the_hand_written_loop(train):
    model = CardiacUNet3D(1, 3, base_filters=2, depth=2).train(train)
    x = torch.randn(2, 1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x), old_loop(model, x)[0])
    soft = CardiacUNet3D(1, 3, base_filters=2, depth=2, softmax=True)
    soft.load_state_dict(model.state_dict())
    soft.train(train)
    with torch.no_grad():
        assert torch.allclose(soft(x).sum(dim=1), torch.ones(2, 3, 16, 16), atol=1e-6)


def test_pspunet_equals_the_hand_written_loop_on_folded_slices():
    model = PSPUNet(1, 4, base_filters=2, depth=3).eval()
    x = torch.randn(2, 1, 3, 16, 16)
    folded = x.transpose(1, 2).reshape(6, 1, 16, 16)
    with torch.no_grad():
        expected = old_loop(model, folded)[0].reshape(2, 3, 4, 16, 16).transpose(1, 2)
        assert torch.equal(model(x), expected)
        assert torch.equal(model.forward_2d(folded), old_loop(model, folded)[0])


@pytest.mark.parametrize("bn_scale", [False, True])
def test_cicek_unet3d_equals_the_hand_written_loop(bn_scale):
    model = UNet3D(2, 3, base_filters=2, bn_scale=bn_scale)
    x = torch.randn(1, 2, 8, 8, 16)
    with torch.no_grad():
        assert torch.equal(model(x), old_loop(model, x)[0])
    # up-convolutions keep the channels: 16f → 16f, 8f → 8f, 4f → 4f
    assert [up.out_channels for up in model.up] == [32, 16, 8]
    assert [block.out_channels for block in model.decoder] == [16, 8, 4]


def test_regression_unet_concatenates_upsampled_first_and_returns_the_bottleneck():
    model = RegressionUNet(base_filters=2, depth=3).eval()
    x = torch.rand(2, 1, 2, 32, 32)
    with torch.no_grad():
        out = model(x)
        head, bottleneck = old_loop(model, x, up_first=True)
        wrong_order, _ = old_loop(model, x, up_first=False)
    assert torch.equal(out.cam, torch.sigmoid(head))
    assert torch.equal(out.bottleneck, bottleneck)
    assert out.bottleneck.shape == (2, 16, 2, 4, 4)
    assert not torch.allclose(torch.sigmoid(wrong_order), out.cam)  # the order matters
    assert model.bottom is model.encoder[3]


def test_regression_unet_loads_checkpoints_with_the_old_bottom_keys():
    model = RegressionUNet(base_filters=2, depth=2)
    with torch.no_grad():  # make BN running statistics differ from a fresh model's
        model(torch.rand(2, 1, 2, 28, 28))
    model.eval()
    old = {k.replace("encoder.2.", "bottom."): v for k, v in model.state_dict().items()}
    assert any(k.startswith("bottom.") for k in old) and not any(k.startswith("encoder.2.") for k in old)
    fresh = RegressionUNet(base_filters=2, depth=2)
    result = fresh.load_state_dict(old, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert "bottom.0.conv.weight" in old  # the caller's dict is left as it was
    fresh.eval()
    x = torch.rand(1, 1, 2, 28, 28)
    with torch.no_grad():
        assert torch.equal(fresh(x).cam, model(x).cam)
    # the new keys load too, and a wrong key is still refused by strict loading
    fresh.load_state_dict(model.state_dict(), strict=True)
    with pytest.raises(RuntimeError, match="Unexpected key"):
        fresh.load_state_dict({**model.state_dict(), "bottom.9.weight": torch.zeros(1)}, strict=True)


@pytest.mark.parametrize("make, names", [
    (lambda: CardiacUNet3D(base_filters=2, depth=2), ["encoder", "pool", "up", "decoder", "head"]),
    (lambda: PSPUNet(base_filters=2, depth=2), ["encoder", "pool", "skips", "up", "decoder", "head"]),
    (lambda: UNet3D(base_filters=2), ["encoder", "pool", "up", "decoder", "head"]),
    (lambda: RegressionUNet(base_filters=2, depth=2),
     ["encoder", "pool", "up", "decoder", "head", "scanner"]),
])
def test_models_keep_their_module_names(make, names):
    model = make()
    assert [name for name, _ in model.named_children()] == names
    assert isinstance(model, UNetTrunk)
    assert len(model.encoder) == model.depth + 1 == len(model.up) + 1 == len(model.decoder) + 1


# --------------------------------------------------------------------------- the trunk itself

def double(nd: int):
    from cmrlab.nn.blocks import DoubleConv
    return lambda c_in, c_out: DoubleConv(nd, c_in, c_out)


def up_conv(nd: int, factor=2):
    from cmrlab.nn.blocks import UpConv
    return lambda c_in, c_out: UpConv(nd, c_in, c_out, factor)


@pytest.mark.parametrize("nd, shape, pool", [(2, (2, 1, 16, 24), 2), (3, (1, 1, 8, 16, 16), 2),
                                              (3, (1, 1, 3, 16, 8), (1, 2, 2))])
def test_trunk_keeps_the_spatial_size_in_2d_and_3d(nd, shape, pool):
    trunk = UNetTrunk(nd, 1, 5, [4, 8, 16], block=double(nd), up=up_conv(nd, pool), pool_size=pool)
    x = torch.randn(shape)
    bottleneck, skips = trunk.encode(x)
    assert [s.shape[1] for s in skips] == [4, 8]
    step = torch.tensor(pool if isinstance(pool, tuple) else (pool,) * nd)
    assert tuple(bottleneck.shape[2:]) == tuple(int(s) for s in torch.tensor(shape[2:]) // step**2)
    out = trunk.logits(x)
    assert out.shape == (shape[0], 5, *shape[2:])
    assert trunk.depth == 2 and trunk.widths == (4, 8, 16) and trunk.out_channels == 5
    assert isinstance(trunk.head, nn.Conv2d if nd == 2 else nn.Conv3d)


def test_trunk_skip_transform_changes_the_decoder_width():
    class Widen(nn.Module):
        def __init__(self, level: int, c: int) -> None:
            super().__init__()
            self.conv = nn.Conv2d(c, c + level + 1, 1)
            self.out_channels = c + level + 1

        def forward(self, x):
            return self.conv(x)

    trunk = UNetTrunk(2, 2, 3, [4, 8, 16], block=double(2), up=up_conv(2), skip=Widen)
    assert [s.out_channels for s in trunk.skips] == [5, 10]
    # decoder level 1 takes 10 (skip) + 8 (up), level 0 takes 5 + 4
    assert [block.in_channels for block in trunk.decoder] == [18, 9]
    assert trunk.logits(torch.randn(1, 2, 8, 8)).shape == (1, 3, 8, 8)


def test_trunk_refuses_bad_arguments():
    kw = dict(block=double(2), up=up_conv(2))
    with pytest.raises(ArgumentError, match="spatial_dims must be one of 2, 3, got 1"):
        UNetTrunk(1, 1, 2, [4, 8], **kw)
    with pytest.raises(ArgumentError, match="at least two levels"):
        UNetTrunk(2, 1, 2, [4], **kw)
    with pytest.raises(ArgumentError, match=r"widths\[1\] must be an integer >= 1"):
        UNetTrunk(2, 1, 2, [4, 0], **kw)
    with pytest.raises(ArgumentError, match="in_channels"):
        UNetTrunk(2, 0, 2, [4, 8], **kw)
    with pytest.raises(ArgumentError, match="out_channels"):
        UNetTrunk(2, 1, True, [4, 8], **kw)
    with pytest.raises(ArgumentError, match="up_first must be True or False"):
        UNetTrunk(2, 1, 2, [4, 8], up_first="yes", **kw)
    with pytest.raises(ArgumentError, match="encoder block out_channels"):
        UNetTrunk(2, 1, 2, [4, 8], block=lambda a, b: nn.Sequential(nn.Conv2d(a, b, 3, padding=1)),
                  up=up_conv(2))


def test_doubling_widths():
    assert doubling_widths(32, 4) == [32, 64, 128, 256, 512]
    assert doubling_widths(1, 1) == [1, 2]
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ArgumentError, match="base_filters"):
            doubling_widths(bad, 2)
        with pytest.raises(ArgumentError, match="depth"):
            doubling_widths(4, bad)


@pytest.mark.parametrize("make, name", [
    (lambda: PSPUNet(num_classes=0), "num_classes"), (lambda: PSPUNet(depth=0), "depth"),
    (lambda: CardiacUNet3D(in_channels=0), "in_channels"),
    (lambda: CardiacUNet3D(softmax=1), "softmax"),
    (lambda: UNet3D(base_filters=1.5), "base_filters"), (lambda: UNet3D(bn_scale="no"), "bn_scale"),
    (lambda: RegressionUNet(base_filters=0), "base_filters"),
    (lambda: RegressionUNet(base_filters=1, spacing=(10, 0, 2)), r"spacing\[1\]"),
    (lambda: RegressionUNet(base_filters=1, min_diameter=float("nan")), "min_diameter"),
])
def test_models_name_the_bad_argument(make, name):
    with pytest.raises(ArgumentError, match=name):
        make()


# ------------------------------------------------------------------ shared checks of nn.blocks

def test_check_dropout():
    assert check_dropout(0) == 0.0 and check_dropout(0.5) == 0.5
    for bad in (1, 1.0, -0.1, float("nan"), True, "0.5", None):
        with pytest.raises(ArgumentError, match=r"dropout \(a dropout probability\) must be a finite number"):
            check_dropout(bad)
    with pytest.raises(ArgumentError, match="p_drop"):
        check_dropout(2, "p_drop")


@pytest.mark.parametrize("make", [
    lambda: VNet(base_filters=4, dropout=1.0),
    lambda: UNet2D(base_filters=2, dropout=-0.5),
    lambda: DenseNet3D(dropout=1),
])
def test_models_share_the_dropout_check(make):
    with pytest.raises(ArgumentError, match="a dropout probability"):
        make()


def test_check_model_input_poolings():
    x = torch.zeros(1, 1, 3, 24, 24)
    check_model_input(x, in_channels=1, poolings=3, in_plane_only=True)  # 24 = 3·8
    with pytest.raises(ArgumentError, match=r"in-plane size \(24, 24\) must be divisible by 2\*\*4 = 16"):
        check_model_input(x, in_channels=1, poolings=4, in_plane_only=True)
    with pytest.raises(ArgumentError, match=r"spatial size \(3, 24, 24\) must be divisible by 2\*\*depth = 8"):
        check_model_input(x, in_channels=1, poolings=3, poolings_name="depth")
    with pytest.raises(ArgumentError, match="poolings"):
        check_model_input(x, in_channels=1, poolings=-1)
    with pytest.raises(ArgumentError, match=r"nd \(the number of spatial axes\) must be one of 2, 3, got 1"):
        ConvBNAct(1, 1, 1)
