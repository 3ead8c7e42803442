"""The losses' value checks: off by default (no device sync per call), on in debug mode, and run
once on a loss module's first call."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
import torch

from cmrlab.errors import ArgumentError
from cmrlab.nn import losses as L


@pytest.fixture(autouse=True)
def _debug_off():
    previous = L.set_debug_checks(False)
    yield
    L.set_debug_checks(previous)


def _data(c: int = 3):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, c, 5, 5, generator=g, dtype=torch.float64)
    labels = torch.randint(0, c, (2, 5, 5), generator=g)
    return logits, labels


# Every Python entry point that makes torch copy a value to the host (and so wait for a GPU).
_SYNCING = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "cpu", "numpy")


@pytest.fixture
def host_reads(monkeypatch):
    """Counts the calls of the tensor methods that read values back to the host."""
    calls: list[str] = []
    for name in _SYNCING:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return calls


def _function_calls():
    logits, labels = _data(4)
    probs = torch.softmax(logits, dim=1)
    frames = torch.randn(2, 3, 7, dtype=torch.float64)
    frame_labels = torch.randint(0, 3, (2, 7))
    one_hot = torch.nn.functional.one_hot(labels, 4).movedim(-1, 1).double()
    v = torch.tensor([100.0, 120.0], dtype=torch.float64)
    return {
        "cross_entropy": lambda: L.cross_entropy(logits, labels, class_weights=[1, 2, 3, 4],
                                                 weight_map=torch.ones(2, 5, 5, dtype=torch.float64)),
        "cross_entropy tensor weights": lambda: L.cross_entropy(logits, labels,
                                                                class_weights=torch.ones(4, dtype=torch.float64)),
        "sigmoid ce": lambda: L.cross_entropy(logits[:, :1], (labels > 1).double(), activation="sigmoid"),
        "dice": lambda: L.dice_loss(logits, labels),
        "dice one-hot": lambda: L.dice_loss(logits, one_hot, include_background=False),
        "dice probabilities": lambda: L.dice_loss(probs, labels, activation="none"),
        "dice float labels": lambda: L.dice_loss(logits, labels.double()),
        "gdl": lambda: L.generalized_dice_loss(logits, labels),
        "gdl fixed": lambda: L.generalized_dice_loss(logits, labels, weights=L.SEGMENTATION_CLASS_WEIGHTS),
        "weighted dice": lambda: L.weighted_dice_loss(logits, labels, [0.25] * 4),
        "tversky": lambda: L.tversky_loss(logits, labels, alpha=0.3, beta=0.7),
        "focal": lambda: L.focal_loss(logits, labels, alpha=[0.1, 0.2, 0.3, 0.4]),
        "focal sigmoid": lambda: L.focal_loss(logits, one_hot, activation="sigmoid", alpha=0.25),
        "dice ce": lambda: L.dice_ce_loss(logits, labels, class_weights=[1, 1, 2, 2]),
        "frame wce": lambda: L.frame_weighted_cross_entropy(frames, frame_labels),
        "volume": lambda: L.volume_regression_loss(v, v + 1, v / 40, torch.ones(2, 4), torch.ones(2, 1, 8)),
    }


@pytest.mark.parametrize("name", list(_function_calls()))
def test_no_value_is_read_back_by_default(name, host_reads):
    call = _function_calls()[name]
    host_reads.clear()
    loss = call()
    assert host_reads == []
    assert torch.isfinite(loss).all()  # the test's own read comes after the count
    with L.debug_checks():
        host_reads.clear()
        assert torch.equal(call(), loss)  # the same value, checked this time
    assert host_reads, "debug mode reads values back (that is what it checks)"


def test_modules_check_their_first_call_only(host_reads):
    logits, labels = _data()
    nan = logits.clone()
    nan[0, 0, 0, 0] = float("nan")
    loss = L.DiceLoss()
    with pytest.raises(ArgumentError, match="input contains NaN"):
        loss(nan, labels)  # the first call checks values
    with pytest.raises(ArgumentError, match="input contains NaN"):
        loss(nan, labels)  # a failed first call does not count as checked
    assert not L.debug_checks_enabled()  # the first call's checks do not leak out
    host_reads.clear()
    loss(logits, labels)
    assert host_reads
    host_reads.clear()
    result = loss(nan, labels)  # later calls: no value checks, no host reads
    assert host_reads == []
    assert torch.isnan(result)
    with L.debug_checks(), pytest.raises(ArgumentError, match="input contains NaN"):
        loss(nan, labels)


@pytest.mark.parametrize("make, args", [
    (lambda: L.CrossEntropyLoss(), "labels"), (lambda: L.GeneralizedDiceLoss(), "labels"),
    (lambda: L.WeightedDiceLoss(), "labels"), (lambda: L.TverskyLoss(), "labels"),
    (lambda: L.FocalLoss(), "labels"), (lambda: L.DiceCELoss(), "labels"),
    (lambda: L.FrameWeightedCrossEntropyLoss(), "labels"),
])
def test_every_module_catches_bad_labels_on_its_first_call(make, args):
    logits, labels = _data()
    fractional = labels.double() + 0.5
    module = make()
    with pytest.raises(ArgumentError, match="whole numbers"):
        module(logits, fractional)
    module(logits, labels)
    module(logits, fractional)  # truncated silently after the first call, as documented


def test_volume_module_checks_its_first_call():
    v = torch.tensor([100.0, 120.0])
    module = L.VolumeRegressionLoss()
    with pytest.raises(ArgumentError, match="volume_true must be >= 0"):
        module(v, -v, v / 40, torch.ones(2, 4), torch.ones(2, 1, 8))
    module(v, v, v / 40, torch.ones(2, 4), torch.ones(2, 1, 8))
    assert module(v, -v, v / 40, torch.ones(2, 4), torch.ones(2, 1, 8)) > 0


def test_value_errors_without_debug_mode():
    logits, labels = _data()
    # off: NaN input gives a NaN loss, probabilities outside [0, 1] are used as they are
    nan = logits.clone()
    nan[0, 0, 0, 0] = float("nan")
    assert torch.isnan(L.cross_entropy(nan, labels))
    L.dice_loss(logits, labels, activation="none")
    L.cross_entropy(logits, labels, weight_map=-torch.ones(2, 5, 5, dtype=torch.float64))
    # label range: with C >= 2 torch's one_hot checks it on the CPU at no cost, and we name it
    with pytest.raises(ArgumentError, match=r"labels must lie in 0..2 .* got values in 1..3"):
        L.dice_loss(logits, labels + 1)
    with pytest.raises(ArgumentError, match=r"labels must lie in 0..2 .* got values in -1..1"):
        L.cross_entropy(logits, labels - 1)
    # weights and options given as Python values are always checked
    with pytest.raises(ArgumentError, match=r"class_weights\[1\] must be a finite number >= 0"):
        L.weighted_dice_loss(logits, labels, [0.5, -0.1, 0.6])
    with pytest.raises(ArgumentError, match="did you mean 'softmax'"):
        L.dice_loss(logits, labels, activation="softmx")
    # a tensor of weights: shape always, values only in debug mode
    with pytest.raises(ArgumentError, match="one weight per class"):
        L.cross_entropy(logits, labels, class_weights=torch.ones(2))
    bad = torch.tensor([1.0, -1.0, 1.0])
    L.cross_entropy(logits, labels, class_weights=bad)
    with L.debug_checks(), pytest.raises(ArgumentError, match="class_weights must be finite and >= 0"):
        L.cross_entropy(logits, labels, class_weights=bad)


def test_switches():
    assert L.set_debug_checks(True) is False
    assert L.debug_checks_enabled()
    assert L.set_debug_checks(False) is True
    with L.debug_checks():
        assert L.debug_checks_enabled()
        with L.debug_checks(False):
            assert not L.debug_checks_enabled()
        assert L.debug_checks_enabled()
    assert not L.debug_checks_enabled()
    with pytest.raises(ArgumentError, match="enabled must be True or False"):
        L.set_debug_checks("yes")
    assert not L.debug_checks_enabled()


def test_first_call_checks_stay_in_their_thread():
    seen = []
    started, release = threading.Event(), threading.Event()

    def first_call():
        with L._checked_call():
            started.set()
            release.wait(5)
            seen.append(("worker", L.debug_checks_enabled()))

    worker = threading.Thread(target=first_call)
    worker.start()
    started.wait(5)
    seen.append(("main", L.debug_checks_enabled()))
    release.set()
    worker.join()
    assert sorted(seen) == [("main", False), ("worker", True)]


@pytest.mark.parametrize("value, expected", [("1", "True"), ("true", "True"), ("0", "False"), ("", "False")])
def test_environment_variable(value, expected):
    env = {**os.environ, "CMRLAB_DEBUG_CHECKS": value}
    out = subprocess.run([sys.executable, "-c", "import cmrlab.nn.losses as L; print(L.debug_checks_enabled())"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected
