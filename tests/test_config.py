"""cmrlab.config: profiles, device choice, seeding, data root, the parameters-cell call."""
import random

import numpy as np
import pytest
import torch

from cmrlab import config
from cmrlab.errors import CmrlabError, ConfigError


def test_profiles_and_pick():
    assert config.get_profile("fast").device == "cpu"
    assert config.get_profile("FULL").device == "auto"
    run = config.setup(profile="fast", seed=1)
    assert run.fast and run.pick(fast=16, full=64) == 16
    full = config.setup(profile="full", seed=1)
    assert not full.fast and full.pick(fast=16, full=64) == 64


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("CMRLAB_PROFILE", "full")
    assert config.get_profile(None).name == "full"
    monkeypatch.delenv("CMRLAB_PROFILE")
    assert config.get_profile(None).name == "fast"


def test_unknown_profile_names_it():
    with pytest.raises(ConfigError, match="'turbo'") as info:
        config.get_profile("turbo")
    assert isinstance(info.value, CmrlabError) and "fast" in str(info.value)


def test_device_order_and_errors(monkeypatch):
    monkeypatch.delenv("CMRLAB_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert config.select_device().type == expected
    assert config.select_device("cpu").type == "cpu"
    with pytest.raises(ConfigError, match="unknown device 'tpu9'"):
        config.select_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            config.select_device("cuda")
    monkeypatch.setenv("CMRLAB_DEVICE", "cpu")
    assert config.select_device().type == "cpu"


def test_fast_profile_uses_cpu_even_with_auto_devices(monkeypatch):
    monkeypatch.delenv("CMRLAB_DEVICE", raising=False)
    assert config.setup(profile="fast").device.type == "cpu"
    assert config.setup(profile="full").device == config.select_device("auto")


def test_seed_everything_repeats_all_generators():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    config.seed_everything(123)
    first = draw()
    config.seed_everything(123)
    assert draw() == first
    config.seed_everything(124)
    assert draw() != first
    for bad in (-1, 2**32, 1.5, "3", True):
        with pytest.raises(ConfigError, match="seed"):
            config.seed_everything(bad)


def test_data_root_order(monkeypatch, tmp_path):
    monkeypatch.delenv("CMRLAB_DATA_ROOT", raising=False)
    assert config.data_root() == (config.DEFAULT_DATA_ROOT.expanduser()).resolve()
    monkeypatch.setenv("CMRLAB_DATA_ROOT", str(tmp_path / "env"))
    assert config.data_root() == (tmp_path / "env").resolve()
    assert config.data_root(tmp_path / "arg") == (tmp_path / "arg").resolve()
    assert config.setup(data_root=tmp_path).data_root == tmp_path.resolve()
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        config.data_root(afile)


def test_static_flag(monkeypatch):
    monkeypatch.setenv("CMRLAB_STATIC", "1")
    assert config.is_static_build()
    monkeypatch.setenv("CMRLAB_STATIC", "0")
    assert not config.is_static_build()
    monkeypatch.delenv("CMRLAB_STATIC")
    assert not config.is_static_build()
