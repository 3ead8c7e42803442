"""The model zoo's registry and model cards: every count is what the model really has."""
import pytest
import torch
from torch import nn

from cmrlab.errors import ArgumentError
from cmrlab.nn.receptive_field import count_parameters
from cmrlab.nn.registry import MODELS, build_model, model_card


@pytest.mark.parametrize("name", list(MODELS))
def test_registered_count_is_the_models_count(name):
    entry = MODELS[name]
    with torch.device("meta"):
        model = build_model(name)
    assert count_parameters(model) == entry.parameters
    if entry.tolerance is not None:
        assert abs(entry.relative_difference) <= entry.tolerance, entry.note
    else:  # no promise: either no count in the source or a documented discrepancy
        assert entry.thesis_parameters is None or "discrepancy" in entry.note
    card = model_card(model, entry.input_shape, name=name)
    assert card.parameters == entry.parameters and card.activation_elements > 0
    with torch.device("meta"):
        fast = build_model(name, **entry.fast)
    assert count_parameters(fast) <= entry.parameters


def test_the_thesis_counts_the_issue_names():
    assert MODELS["cardiac_unet3d"].parameters == 87_519_364
    assert MODELS["frame_detector"].parameters == 4_692_642
    assert abs(MODELS["pspunet"].relative_difference) < 0.02
    assert MODELS["regression_unet"].parameters in (21_711_297, 21_884_897)


def test_model_card_counts_a_small_network_exactly():
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(2), nn.Conv2d(2, 1, 1))
    card = model_card(net, (1, 1, 4, 4))
    assert card.parameters == (2 * 9 + 2) + (2 + 2) + (2 + 1)
    assert card.layers == 3
    assert card.activation_elements == 32 + 32 + 32 + 16  # conv, relu, bn, conv outputs
    assert card.activation_megabytes == pytest.approx(112 * 4 / 2**20)
    assert "parameters          27" in str(card)
    assert next(net.parameters()).device.type == "cpu"  # the card worked on a copy


def test_errors():
    with pytest.raises(ArgumentError, match="unknown model 'resnet9000'"):
        build_model("resnet9000")
    with pytest.raises(ArgumentError, match="does not accept an input"):
        model_card(nn.Conv2d(3, 1, 3), (1, 1, 8, 8))
    with pytest.raises(ArgumentError, match="positive"):
        model_card(nn.Conv2d(1, 1, 3), (1, 0, 8, 8))
