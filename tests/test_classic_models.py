"""The classic ImageNet classifiers of cmrlab.nn.models.classic: exact parameter counts against the
reference counts (torchvision's models, the original AlexNet and GoogLeNet papers), shapes and
depths on the meta device, and a few real forward/backward passes at small sizes on the CPU."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from cmrlab.errors import ArgumentError
from cmrlab.nn.models.classic import (
    REFERENCE_PARAMETERS,
    Inception,
    alexnet,
    densenet,
    densenet121,
    googlenet,
    resnet,
    resnet18,
    resnet50,
    vgg,
    vgg16,
    weight_layer_depth,
)
from cmrlab.nn.receptive_field import count_parameters

BUILDERS = {
    "alexnet": lambda: alexnet(),
    "alexnet_original": lambda: alexnet(original=True),
    "vgg11": lambda: vgg(11),
    "vgg13": lambda: vgg(13),
    "vgg16": lambda: vgg(16),
    "vgg19": lambda: vgg(19),
    "vgg11_bn": lambda: vgg(11, batch_norm=True),
    "vgg16_bn": lambda: vgg(16, batch_norm=True),
    "googlenet": lambda: googlenet(),
    "googlenet_aux": lambda: googlenet(aux_logits=True),
    "googlenet_torchvision": lambda: googlenet(variant="torchvision"),
    "googlenet_torchvision_aux": lambda: googlenet(variant="torchvision", aux_logits=True),
    "resnet18": lambda: resnet(18),
    "resnet34": lambda: resnet(34),
    "resnet50": lambda: resnet(50),
    "resnet101": lambda: resnet(101),
    "resnet152": lambda: resnet(152),
    "densenet121": lambda: densenet(121),
    "densenet161": lambda: densenet(161),
    "densenet169": lambda: densenet(169),
    "densenet201": lambda: densenet(201),
}


def _meta(build, *args, **kwargs):
    with torch.device("meta"):
        return build(*args, **kwargs)


def test_the_well_known_counts():
    """The figures everyone quotes (torchvision's model table; Krizhevsky's two-tower AlexNet)."""
    counts = {name: count_parameters(_meta(BUILDERS[name])) for name in (
        "alexnet", "alexnet_original", "vgg16", "googlenet_torchvision", "resnet18", "resnet50",
        "densenet121")}
    assert counts == {
        "alexnet": 61_100_840, "alexnet_original": 60_965_224, "vgg16": 138_357_544,
        "googlenet_torchvision": 6_624_904, "resnet18": 11_689_512, "resnet50": 25_557_032,
        "densenet121": 7_978_856,
    }


@pytest.mark.parametrize("name", list(BUILDERS))
def test_count_shape_and_depth(name):
    model = _meta(BUILDERS[name])
    assert count_parameters(model) == REFERENCE_PARAMETERS[name]
    assert count_parameters(model, trainable_only=False) == REFERENCE_PARAMETERS[name]
    size = 227 if name == "alexnet_original" else 224
    model.eval()
    with torch.device("meta"):
        assert model(torch.empty(2, 3, size, size)).shape == (2, 1000)
    family = next(f for f in ("alexnet", "vgg", "googlenet", "resnet", "densenet") if name.startswith(f))
    digits = name[len(family):].split("_")[0]
    expected_depth = {"alexnet": 8, "googlenet": 22}.get(family) or int(digits)
    assert model.depth == expected_depth
    if name in ("alexnet", "vgg16", "googlenet_aux", "resnet50", "densenet121"):
        assert weight_layer_depth(model, (1, 3, size, size)) == model.depth


def test_original_alexnet_layers_by_formula():
    net = _meta(alexnet, original=True)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    # C_out · (k² · C_in / groups) + C_out: conv2, conv4, conv5 split over the two GPUs
    expected = [96 * (121 * 3) + 96, 256 * (25 * 48) + 256, 384 * (9 * 256) + 384,
                384 * (9 * 192) + 384, 256 * (9 * 192) + 256]
    assert [count_parameters(c) for c in convs] == expected
    assert [c.groups for c in convs] == [1, 2, 1, 2, 2]
    assert sum(expected) == 2_334_080                     # 3.8 % of the total: the FC layers dominate
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in net.modules()) == 2
    assert not any(isinstance(m, nn.LocalResponseNorm) for m in _meta(alexnet).modules())
    # the paper's 224² input does not give 55×55 maps with an unpadded 11×11/4 convolution; 227² does
    with torch.device("meta"):
        assert net.features[0](torch.empty(1, 3, 227, 227)).shape[-1] == 55
        assert net.features[0](torch.empty(1, 3, 224, 224)).shape[-1] == 54


def test_vgg_is_3x3_convolutions_and_the_classifier_holds_most_parameters():
    net = _meta(vgg16)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13 and all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    fc = count_parameters(net.classifier)
    assert fc == 25_088 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000 == 123_642_856
    assert 0.89 < fc / count_parameters(net) < 0.90
    bn = _meta(vgg16, batch_norm=True)
    assert count_parameters(bn) - count_parameters(net) == 2 * sum(c.out_channels for c in convs)


def test_inception_channels_and_bottleneck():
    net = _meta(googlenet)
    outs = [m.out_channels for m in net.modules() if isinstance(m, Inception)]
    assert outs == [256, 480, 512, 512, 512, 528, 832, 832, 1024]
    block = _meta(Inception, 192, 64, 96, 128, 16, 32, 32)            # inception (3a)
    conv5 = block.branch5[1][0]
    assert conv5.kernel_size == (5, 5) and conv5.in_channels == 16
    assert _meta(googlenet, variant="torchvision").inception3[0].branch5[1][0].kernel_size == (3, 3)
    # the 1×1 reduction to 16 maps before the 5×5: 192·16 + 25·16·32 weights instead of 25·192·32
    assert 192 * 16 + 25 * 16 * 32 == 15_872 and 25 * 192 * 32 == 153_600
    with torch.device("meta"):
        assert block(torch.empty(1, 192, 28, 28)).shape == (1, 256, 28, 28)


def test_googlenet_aux_outputs_only_in_training():
    torch.manual_seed(0)
    net = googlenet(num_classes=5, in_channels=1, aux_logits=True)
    x = torch.randn(2, 1, 64, 64)
    out = net.train()(x)
    assert [t.shape for t in out] == [(2, 5)] * 3
    loss = out.logits.sum() + 0.3 * (out.aux1.sum() + out.aux2.sum())
    loss.backward()
    assert net.aux1.fc2.weight.grad is not None and net.fc.weight.grad is not None
    assert net.eval()(x).shape == (2, 5)


def test_resnet_zero_init_block_is_identity_and_gradients_reach_every_layer():
    torch.manual_seed(0)
    net = resnet18(num_classes=4, in_channels=1, zero_init_residual=True)
    block = net.layer1[0]
    x = torch.rand(2, 64, 8, 8)                      # non-negative, as after a ReLU
    assert torch.equal(block.eval()(x), x)           # relu(0 + x) = x
    assert net.layer2[0].shortcut[0].kernel_size == (1, 1)   # projection where the shape changes
    net = resnet18(num_classes=4, in_channels=1).train()
    out = net(torch.randn(2, 1, 32, 32))
    assert out.shape == (2, 4)
    out.square().sum().backward()
    assert all(p.grad is not None and torch.any(p.grad != 0) for p in net.parameters())


def test_resnet50_bottleneck_widths():
    net = _meta(resnet50)
    first = net.layer1[0].residual
    assert [first[i].out_channels for i in (0, 3, 6)] == [64, 64, 256]
    assert net.fc.in_features == 2048


def test_densenet_channels_grow_by_k_per_layer():
    net = _meta(densenet121)
    assert net.block_channels == [64 + 6 * 32, 128 + 12 * 32, 256 + 24 * 32, 512 + 16 * 32]
    assert net.block_channels == [256, 512, 1024, 1024]
    torch.manual_seed(0)
    small = densenet(121, num_classes=3, in_channels=1)
    assert small(torch.randn(2, 1, 32, 32)).shape == (2, 3)


def test_weight_layer_depth_of_simple_networks():
    plain = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.BatchNorm2d(2), nn.Conv2d(2, 2, 3),
                          nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    assert weight_layer_depth(plain, (1, 1, 8, 8)) == 3
    assert next(plain.parameters()).device.type == "cpu"      # measured on a copy

    class TwoBranches(nn.Module):
        def __init__(self):
            super().__init__()
            self.short = nn.Conv2d(1, 1, 1)
            self.long = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=1))

        def forward(self, x):
            return torch.cat([self.short(x), self.long(x)], 1) + x

    assert weight_layer_depth(TwoBranches(), (1, 1, 5, 5)) == 2
    with pytest.raises(ArgumentError, match="positive"):
        weight_layer_depth(plain, (1, 0, 8, 8))


def test_errors():
    net = _meta(resnet18)
    with torch.device("meta"), pytest.raises(ArgumentError, match="channels"):
        net(torch.empty(1, 1, 224, 224))
    with torch.device("meta"), pytest.raises(ArgumentError, match="at least 32"):
        net(torch.empty(1, 3, 16, 16))
    with pytest.raises(ArgumentError, match="depth must be one of 18"):
        resnet(20)
    with pytest.raises(ArgumentError, match="depth must be one of 11"):
        vgg(17)
    with pytest.raises(ArgumentError, match="depth must be one of 121"):
        densenet(100)
    with pytest.raises(ArgumentError, match="variant"):
        googlenet(variant="v3")
    with pytest.raises(ArgumentError, match="dropout"):
        alexnet(dropout=1.5)
    with pytest.raises(ArgumentError, match="num_classes"):
        vgg16(num_classes=0)
    with pytest.raises(ArgumentError, match="poolings"):
        from cmrlab.nn.models.classic import VGG
        VGG((64, "M", 128))
