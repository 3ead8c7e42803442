"""Tests of cmrlab.train.experiment: the shipped configs, profiles, overrides and strict errors."""
from __future__ import annotations

import pytest
import torch

from cmrlab.errors import ConfigError, FileFormatError
from cmrlab.nn.losses import SEGMENTATION_CLASS_WEIGHTS, GeneralizedDiceLoss
from cmrlab.nn.registry import MODELS
from cmrlab.train.experiment import Experiment, list_experiments, load_experiment

CH5 = ("cardiac-ch5-unet3d", "cardiac-ch5-pspunet")


def test_shipped_experiments_are_listed():
    assert set(CH5) <= set(list_experiments())


@pytest.mark.parametrize("name, model", list(zip(CH5, ("cardiac_unet3d", "pspunet"))))
def test_full_profile_is_the_thesis(name, model):
    exp = load_experiment(name, profile="full")
    assert isinstance(exp, Experiment) and exp.profile == "full" and exp.name == name
    assert exp.model.name == model and exp.model.kwargs == {}
    assert (exp.optimizer.name, exp.optimizer.lr, exp.batch_size, exp.epochs) == ("adam", 1e-3, 3, 50)
    assert exp.dataset.frames == ["ED"] and exp.evaluation.frames == ["ED", "ES"]
    pre = exp.dataset.preprocessing
    assert (pre.spacing, pre.size, pre.window, pre.stride, pre.normalisation) == ([1.0, 1.0], [176, 176], 3, 1, "minmax")
    assert exp.loss.name == "generalized_dice"
    assert tuple(exp.loss.kwargs["weights"]) == SEGMENTATION_CLASS_WEIGHTS == (0.1, 0.3, 0.3, 0.3)
    aug = exp.augmentation
    assert (aug.rotation, aug.zoom, aug.shear, aug.extra, aug.max_uses) == (30.0, 0.1, 20.0, 6295, 4)
    counts = exp.dataset.split.counts(399)             # the thesis: 260 / 40 / 99 (it rounded test down)
    assert sum(counts) == 399 and counts == (259, 40, 100)
    assert exp.dataset.split.stratify


@pytest.mark.parametrize("name", CH5)
def test_fast_profile_builds_a_small_model_that_runs(name):
    exp = load_experiment(name)                                           # fast is the default
    assert exp.profile == "fast" and exp.epochs < 50
    assert exp.model.kwargs == {**MODELS[exp.model.name].fast, "bn_momentum": 0.1}  # PyTorch's default
    model, loss = exp.build_model(), exp.build_loss()
    optimizer = exp.build_optimizer(model.parameters())
    assert isinstance(loss, GeneralizedDiceLoss) and isinstance(optimizer, torch.optim.Adam)
    assert optimizer.param_groups[0]["lr"] == 3e-3                       # tuned for 6 CPU epochs
    size = exp.dataset.preprocessing.size
    x = torch.rand(1, 1, 3, *size)
    out = model(x)
    assert out.shape == (1, 4, 3, *size)
    assert torch.isfinite(loss(out, torch.randint(0, 4, (1, 3, *size))))


def test_overrides_nested_and_dotted():
    exp = load_experiment("cardiac-ch5-pspunet", "fast",
                          {"optimizer.lr": 1e-4, "model": {"kwargs": {"depth": 3}}, "dataset.frames": ["ED", "ES"]})
    assert exp.optimizer.lr == 1e-4
    assert exp.model.kwargs == {"base_filters": 4, "bn_momentum": 0.1, "depth": 3}  # merged, not replaced
    assert exp.dataset.frames == ["ED", "ES"]
    assert exp.to_dict()["optimizer"]["lr"] == 1e-4


@pytest.mark.parametrize("overrides, pattern", [
    ({"optimzer.lr": 1.0}, r"unknown key 'optimzer'.*valid keys: .*optimizer.*did you mean 'optimizer'"),
    ({"dataset.preprocesing.size": [8, 8]}, r"unknown key 'dataset.preprocesing'.*did you mean 'preprocessing'"),
    ({"model.name": "pspnet"}, r"model.name: 'pspnet' is not one of .*did you mean 'pspunet'"),
    ({"model.kwargs.base_filter": 3}, r"'model.kwargs.base_filter'.*valid keys: .*base_filters.*did you mean"),
    ({"loss.name": "gdl"}, r"loss.name"),
    ({"loss.kwargs.weight": [1, 1, 1, 1]}, r"'loss.kwargs.weight'.*did you mean 'weights'"),
    ({"optimizer.kwargs.betas2": 0.9}, r"optimizer.kwargs.betas2"),
    ({"epochs": "5"}, r"epochs: must be an integer, got str"),
    ({"batch_size": 0}, r"batch_size: must be >= 1"),
    ({"optimizer.lr": True}, r"optimizer.lr: must be a number"),
    ({"dataset.frames": ["ED", "EX"]}, r"dataset.frames\[1\]"),
    ({"dataset.split.test": 0.5}, r"sum to 1"),
    ({"evaluation.metrics": ["dice"]}, r"evaluation.metrics\[0\]"),
])
def test_bad_settings_name_the_key_and_the_file(overrides, pattern):
    with pytest.raises(ConfigError, match=pattern) as info:
        load_experiment("cardiac-ch5-unet3d", "fast", overrides)
    assert "cardiac-ch5-unet3d.yaml" in str(info.value)


def test_errors_in_a_file(tmp_path):
    good = (load_experiment.__globals__["CONFIG_DIR"] / "cardiac-ch5-unet3d.yaml").read_text()
    typo = tmp_path / "typo.yaml"
    typo.write_text(good.replace("  fast:", "  fast:\n    epoch: 2", 1))
    with pytest.raises(ConfigError, match=r"typo.yaml.*unknown key 'epoch'.*did you mean 'epochs'"):
        load_experiment(typo, "fast")
    assert load_experiment(typo, "full").epochs == 50                     # only the fast profile is wrong
    missing = tmp_path / "missing.yaml"
    missing.write_text(good.replace("epochs: 50\n", ""))
    with pytest.raises(ConfigError, match="epochs: missing"):
        load_experiment(missing, "full")
    profile = tmp_path / "profile.yaml"
    profile.write_text(good.replace("  full: {}", "  slow: {}"))
    with pytest.raises(ConfigError, match="unknown key 'profiles.slow'"):
        load_experiment(profile)
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(FileFormatError, match="broken.yaml.*not valid YAML"):
        load_experiment(broken)
    with pytest.raises(FileFormatError, match="no such experiment file"):
        load_experiment(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="unknown experiment 'cardiac-ch5-unet'.*did you mean"):
        load_experiment("cardiac-ch5-unet")
    with pytest.raises(ConfigError, match="profile"):
        load_experiment("cardiac-ch5-unet3d", profile="medium")
