"""Experiment configs: one YAML file per thesis experiment, with a ``fast`` and a ``full`` profile.

::

    from cmrlab.train.experiment import load_experiment, list_experiments
    list_experiments()       # ['cardiac-ch5-pspunet', 'cardiac-ch5-unet3d', 'cardiac-ch6-regression-unet', ...]
    exp = load_experiment("cardiac-ch5-pspunet", profile="full", overrides={"optimizer.lr": 1e-4})
    model, loss = exp.build_model(), exp.build_loss()
    optimizer = exp.build_optimizer(model.parameters())

A file (``cmrlab/train/configs/<name>.yaml``) holds the experiment at the thesis's settings, with
its ``task`` (:data:`TASKS`: ``segmentation``, ``volume_regression`` or ``frame_detection``; the task
says which models, losses, frames, metrics and evaluation options the experiment may name), and
``profiles.fast`` / ``profiles.full`` list what each profile changes (deep-merged over the rest;
``full`` is usually empty, as the top level *is* the thesis). ``overrides`` are applied last,
either nested (``{"optimizer": {"lr": 1e-4}}``) or dotted (``{"optimizer.lr": 1e-4}``).

The schema is the dataclasses below (:class:`Experiment` and its parts). Loading is strict, so a
typo cannot silently fall back to a default: an unknown key anywhere, a missing key, a value of
the wrong type, a model name that is not in :data:`cmrlab.nn.registry.MODELS`, a keyword its
builder (or the loss, or the optimizer) does not take: each is a
:class:`~cmrlab.errors.ConfigError` that names the key with its path, the file, the valid keys
and, where one is close, a "did you mean".
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import inspect
import math
import os
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import torch
from torch import nn

from cmrlab.checks import did_you_mean
from cmrlab.config import get_profile
from cmrlab.data.datasets import DATASETS
from cmrlab.errors import CmrlabError, ConfigError, FileFormatError
from cmrlab.files import MAX_NESTING, load_yaml
from cmrlab.nn import losses as _losses
from cmrlab.nn.registry import MODELS, build_model

__all__ = [
    "AugmentationConfig",
    "CONFIG_DIR",
    "DatasetConfig",
    "EVALUATION_METRICS",
    "EvaluationConfig",
    "Experiment",
    "FRAMES",
    "LOSSES",
    "LossConfig",
    "ModelConfig",
    "OPTIMIZERS",
    "OptimizerConfig",
    "PreprocessingConfig",
    "SourceConfig",
    "SplitConfig",
    "TASKS",
    "TaskSpec",
    "experiment_from_dict",
    "list_experiments",
    "load_experiment",
]

#: Folder of the shipped experiment files.
CONFIG_DIR = Path(__file__).resolve().parent / "configs"

#: Loss names a config may use, with the :mod:`cmrlab.nn.losses` module each builds.
LOSSES: dict[str, type[nn.Module]] = {
    "cross_entropy": _losses.CrossEntropyLoss,
    "dice": _losses.DiceLoss,
    "dice_ce": _losses.DiceCELoss,
    "focal": _losses.FocalLoss,
    "frame_cross_entropy": _losses.FrameCrossEntropyLoss,
    "frame_weighted_cross_entropy": _losses.FrameWeightedCrossEntropyLoss,
    "generalized_dice": _losses.GeneralizedDiceLoss,
    "tversky": _losses.TverskyLoss,
    "volume_regression": _losses.VolumeRegressionLoss,
    "weighted_dice": _losses.WeightedDiceLoss,
}

#: Optimizer names a config may use (``torch.optim`` classes).
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}

#: Cine frames a dataset or an evaluation may name.
FRAMES = ("ED", "ES")

#: Metric names a segmentation evaluation may list (functions of :mod:`cmrlab.nn.metrics`).
EVALUATION_METRICS = ("dice_per_class", "mean_dice", "global_dice", "relative_volume_error",
                      "hd95", "average_surface_distance")


@dataclass(frozen=True)
class TaskSpec:
    """What a task of the runner (:mod:`cmrlab.train.runner`) accepts in an experiment.

    ``models`` and ``losses``: the names it can train (``None``: any model not claimed by another
    task); ``metrics``: the names ``evaluation.metrics`` may list; ``options``: the keys of
    ``evaluation.options`` with their defaults; ``frames``: the frames ``dataset.frames`` may name.
    """

    title: str
    models: tuple[str, ...] | None
    losses: tuple[str, ...]
    metrics: tuple[str, ...]
    options: Mapping[str, float] = field(default_factory=dict)
    frames: tuple[str, ...] = ("ED", "ES")
    projections: tuple[str, ...] = ("none",)


#: The tasks an experiment may name in ``task`` (one runner serves them all).
TASKS: dict[str, TaskSpec] = {
    "segmentation": TaskSpec(
        "segmentation (cardiac thesis ch. 5)", None,
        ("cross_entropy", "dice", "dice_ce", "focal", "generalized_dice", "tversky"),
        EVALUATION_METRICS),
    "volume_regression": TaskSpec(
        "LV volume regression from volume-only labels (cardiac thesis ch. 6)", ("regression_unet",),
        ("volume_regression",),
        ("volume_error", "pearson_r", "linear_fit", "bland_altman", "cam_dice"),
        {"cam_threshold": 0.9, "dilation": 5}, frames=("ED",)),
    "frame_detection": TaskSpec(
        "ES/ED frame detection (cardiac thesis ch. 7)", ("frame_detector",),
        ("frame_weighted_cross_entropy", "weighted_dice", "frame_cross_entropy"),
        ("frame_difference", "relative_frame_difference"),
        {"central_threshold": 0.9}, projections=("median",)),
}

#: Preprocessing choices: intensity normalisation and the reduction of the slices of a cine.
NORMALISATIONS = ("minmax", "minmax_per_frame", "none")
PROJECTIONS = ("none", "median")



@dataclass(frozen=True)
class SourceConfig:
    """Where the experiment comes from: ``thesis`` ("cardiac" or "brain") and ``section``."""

    thesis: str
    section: str


@dataclass(frozen=True)
class SplitConfig:
    """Case split: fractions summing to 1 (numbers with a decimal point) or case counts (all integers)."""

    train: float
    validation: float
    test: float
    stratify: bool = True

    def counts(self, n_cases: int) -> tuple[int, int, int]:
        """(train, validation, test) case counts for ``n_cases``: the counts themselves, or the
        fractions rounded (validation and test rounded, train the rest)."""
        if all(isinstance(v, int) for v in (self.train, self.validation, self.test)):
            return self.train, self.validation, self.test
        validation, test = round(self.validation * n_cases), round(self.test * n_cases)
        return n_cases - validation - test, validation, test


@dataclass(frozen=True)
class PreprocessingConfig:
    """In-plane ``spacing`` (mm) and ``size`` (pixels) after resampling and crop/pad,
    ``normalisation`` ("minmax" over the volume, "minmax_per_frame" over each frame of a cine, or
    "none"), slice windows of ``window`` slices every ``stride`` (segmentation), and the
    ``projection`` of a cine's slices to one image per frame ("median" over the 2nd to the
    penultimate slice, frame detection; "none")."""

    spacing: list[float] = field(default_factory=lambda: [1.0, 1.0])
    size: list[int] = field(default_factory=lambda: [176, 176])
    normalisation: str = "minmax"
    window: int = 3
    stride: int = 1
    projection: str = "none"


@dataclass(frozen=True)
class DatasetConfig:
    """The data: dataset ``name`` (a key of :data:`cmrlab.data.datasets.DATASETS`), ``frames`` trained on, ``split``, ``preprocessing``;
    ``n_cases`` limits the number of cases (None: all; the fast profile uses few synthetic ones);
    ``synthetic_variant`` names a variant of the synthetic copy (:data:`cmrlab.data.synthetic.VARIANTS`)."""

    name: str
    frames: list[str]
    split: SplitConfig
    preprocessing: PreprocessingConfig = field(default_factory=PreprocessingConfig)
    n_cases: Union[int, None] = None
    synthetic_variant: Union[str, None] = None


@dataclass(frozen=True)
class ModelConfig:
    """A model of :data:`cmrlab.nn.registry.MODELS` by ``name``, with builder ``kwargs``."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LossConfig:
    """A loss of :data:`LOSSES` by ``name``, with its ``kwargs``."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OptimizerConfig:
    """An optimizer of :data:`OPTIMIZERS` by ``name``, learning rate ``lr`` and other ``kwargs``."""

    name: str
    lr: float
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AugmentationConfig:
    """Random in-plane transforms (:class:`cmrlab.data.augment.RandomAugment`): ``rotation`` and
    ``shear`` in degrees, ``zoom`` (factor 1 ± zoom), ``shift`` in pixels, additive Gaussian noise
    (``noise_mean``, ``noise_std``). How they are used depends on the task: segmentation makes
    ``extra`` windows offline, each source window used at most ``max_uses`` times (thesis ch. 5:
    6295 extra, 4); volume regression pairs every batch with an augmented batch of random
    training cases when ``paired`` (thesis ch. 6); frame detection makes ``copies`` augmented
    copies of every case offline, each also shifted circularly in time by up to
    ``temporal_shift`` of its length (thesis ch. 7: 6 copies, 0.4)."""

    enabled: bool = True
    rotation: float = 30.0
    zoom: float = 0.1
    shear: float = 20.0
    extra: int = 0
    max_uses: int = 4
    shift: float = 0.0
    noise_mean: float = 0.0
    noise_std: float = 0.0
    paired: bool = False
    copies: int = 0
    temporal_shift: float = 0.0


@dataclass(frozen=True)
class EvaluationConfig:
    """What the test set is scored on: ``frames``, ``metrics`` (the task's, :data:`TASKS`) and the
    task's ``options`` (e.g. volume regression's ``cam_threshold``, frame detection's
    ``central_threshold``; defaults in :data:`TASKS`)."""

    frames: list[str]
    metrics: list[str]
    options: dict[str, Any] = field(default_factory=dict)

    def option(self, task: str, key: str) -> float:
        """``options[key]``, or the task's default."""
        return self.options.get(key, TASKS[task].options[key])


@dataclass(frozen=True)
class Experiment:
    """One experiment at one profile, as loaded by :func:`load_experiment`.

    ``profile`` and ``path`` (the file it came from) are filled in by the loader.
    """

    name: str
    source: SourceConfig
    dataset: DatasetConfig
    model: ModelConfig
    loss: LossConfig
    optimizer: OptimizerConfig
    batch_size: int
    epochs: int
    augmentation: AugmentationConfig
    evaluation: EvaluationConfig
    task: str = "segmentation"
    description: str = ""
    profile: str = "fast"
    path: str = ""

    def build_model(self) -> nn.Module:
        """The model, built from the registry with the config's keyword arguments."""
        return build_model(self.model.name, **self.model.kwargs)

    def build_loss(self) -> nn.Module:
        """The loss module with the config's keyword arguments."""
        return LOSSES[self.loss.name](**self.loss.kwargs)

    def build_optimizer(self, params: Iterable[torch.Tensor] | Iterable[dict]) -> torch.optim.Optimizer:
        """The optimizer over ``params`` with the config's learning rate and keyword arguments."""
        return OPTIMIZERS[self.optimizer.name](params, lr=self.optimizer.lr, **self.optimizer.kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (for logs, checkpoints and ``yaml.safe_dump``)."""
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------
# Loading and checking
# --------------------------------------------------------------------------------------------
class _Checker:
    """Builds the dataclasses from plain data, naming the file and the key path in every error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: {path}: {problem}" if path else f"{self.source}: {problem}")

    def unknown(self, path: str, key: str, valid: Iterable[str]) -> ConfigError:
        valid = list(valid)
        where = f"{path}.{key}" if path else str(key)
        return ConfigError(f"{self.source}: unknown key {where!r}; valid keys"
                           f"{' under ' + repr(path) if path else ''}: {', '.join(valid)}"
                           f"{did_you_mean(key, valid)}")

    def choice(self, path: str, value: str, valid: Iterable[str]) -> None:
        """Refuse ``value`` unless it is one of ``valid`` (with a "did you mean")."""
        valid = list(valid)
        if value not in valid:
            raise self.fail(path, f"{value!r} is not one of {', '.join(valid)}{did_you_mean(value, valid)}")

    def build(self, cls: type, data: object, path: str, loader_fields: bool = False) -> Any:
        if not isinstance(data, Mapping):
            raise self.fail(path, f"must be a mapping of keys {', '.join(f.name for f in dataclasses.fields(cls))}, "
                                  f"got {type(data).__name__} {_short(data)}")
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)
                  if loader_fields or f.name not in ("profile", "path")}
        for key in data:
            if key not in fields:
                raise self.unknown(path, key, fields)
        values = {}
        for name, f in fields.items():
            sub = f"{path}.{name}" if path else name
            if name not in data:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise self.fail(sub, "missing (required)")
                continue
            values[name] = self.value(hints[name], data[name], sub)
        return cls(**values)

    def value(self, tp: Any, value: object, path: str) -> Any:
        origin = typing.get_origin(tp)
        if origin in (Union, types.UnionType):
            args = typing.get_args(tp)
            if value is None and type(None) in args:
                return None
            (inner,) = [a for a in args if a is not type(None)]
            return self.value(inner, value, path)
        if dataclasses.is_dataclass(tp):
            return self.build(tp, value, path)
        if origin is list:
            (item,) = typing.get_args(tp)
            if not isinstance(value, list):
                raise self.fail(path, f"must be a list, got {type(value).__name__} {_short(value)}")
            return [self.value(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        if origin is dict:
            if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
                raise self.fail(path, f"must be a mapping with text keys, got {type(value).__name__} {_short(value)}")
            self.plain(value, path)
            return copy.deepcopy(dict(value))
        if tp is bool:
            if not isinstance(value, bool):
                raise self.fail(path, f"must be true or false, got {_short(value)}")
            return value
        if tp is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.fail(path, f"must be an integer, got {type(value).__name__} {_short(value)}")
            return value
        if tp is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise self.fail(path, f"must be a number, got {type(value).__name__} {_short(value)}")
            return float(value) if not isinstance(value, int) else value
        if tp is str:
            if not isinstance(value, str):
                raise self.fail(path, f"must be text, got {type(value).__name__} {_short(value)}")
            return value
        raise TypeError(f"unsupported schema type {tp!r} at {path}")  # a bug in the schema, not the file

    def plain(self, value: Mapping[str, Any], path: str) -> None:
        """Refuse keyword arguments that are not plain YAML data (text, finite numbers, true/false,
        null, lists and mappings of these) or are nested more than ``MAX_NESTING`` levels."""
        stack: list[tuple[Any, str, int]] = [(v, f"{path}.{k}", 1) for k, v in value.items()]
        while stack:
            item, where, depth = stack.pop()
            if depth > MAX_NESTING:
                raise self.fail(path, f"is nested more than {MAX_NESTING} levels deep")
            if isinstance(item, float) and not math.isfinite(item):
                raise self.fail(where, f"must be a finite number, got {item!r}")
            if isinstance(item, Mapping):
                stack.extend((v, f"{where}.{k}", depth + 1) for k, v in item.items())
            elif isinstance(item, (list, tuple)):
                stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(item))
            elif not isinstance(item, (str, int, float, bool, type(None))):
                raise self.fail(where, f"must be plain data (text, a number, a list or a mapping), "
                                       f"got {type(item).__name__}")


def _short(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (a bad value may be huge)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_kwargs(check: _Checker, path: str, target: Any, kwargs: Mapping[str, Any], what: str,
                  skip: Iterable[str] = ()) -> None:
    params = inspect.signature(target).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    valid = [n for n, p in params.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in ("self", *skip)]
    for key in kwargs:
        if key not in valid:
            raise ConfigError(f"{check.source}: unknown key {path + '.' + key!r}: {what} takes no argument "
                              f"{key!r}; valid keys: {', '.join(valid)}{did_you_mean(key, valid)}")


def _claimed_models() -> set[str]:
    return {m for spec in TASKS.values() if spec.models for m in spec.models}


def _validate_task(check: _Checker, exp: Experiment) -> None:
    """The task exists and accepts the experiment's model, loss, frames, metrics and options."""
    check.choice("task", exp.task, TASKS)
    spec = TASKS[exp.task]
    models = spec.models or tuple(m for m in MODELS if m not in _claimed_models())
    if exp.model.name in MODELS and exp.model.name not in models:
        owner = next((t for t, s in TASKS.items() if s.models and exp.model.name in s.models), None)
        raise check.fail("model.name", f"{exp.model.name!r} is not a model of the task {exp.task!r}"
                                       f"{' (it belongs to ' + repr(owner) + ')' if owner else ''}; "
                                       f"that task trains {', '.join(models)}")
    if exp.loss.name in LOSSES and exp.loss.name not in spec.losses:
        raise check.fail("loss.name", f"{exp.loss.name!r} is not a loss of the task {exp.task!r}; "
                                      f"it takes {', '.join(spec.losses)}")
    for where, frames in (("dataset.frames", exp.dataset.frames), ("evaluation.frames", exp.evaluation.frames)):
        for i, frame in enumerate(frames):
            check.choice(f"{where}[{i}]", frame, FRAMES)
            if frame not in spec.frames:
                raise check.fail(f"{where}[{i}]", f"the task {exp.task!r} uses the frames "
                                                  f"{', '.join(spec.frames)} only, got {frame!r}")
    for i, metric in enumerate(exp.evaluation.metrics):
        check.choice(f"evaluation.metrics[{i}]", metric, spec.metrics)
    projection = exp.dataset.preprocessing.projection
    if projection in PROJECTIONS and projection not in spec.projections:
        raise check.fail("dataset.preprocessing.projection", f"the task {exp.task!r} takes "
                                                             f"{', '.join(spec.projections)}, got {projection!r}")
    for key, value in exp.evaluation.options.items():
        if key not in spec.options:
            raise check.unknown("evaluation.options", key, spec.options or ["(none for this task)"])
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise check.fail(f"evaluation.options.{key}", f"must be a number, got {_short(value)}")
    options = {k: exp.evaluation.option(exp.task, k) for k in spec.options}
    if "cam_threshold" in options and not 0 < options["cam_threshold"] < 1:
        raise check.fail("evaluation.options.cam_threshold", f"must lie in (0, 1), got {options['cam_threshold']}")
    if "central_threshold" in options and not 0 < options["central_threshold"] < 1:
        raise check.fail("evaluation.options.central_threshold",
                         f"must lie in (0, 1), got {options['central_threshold']}")
    if "dilation" in options and (options["dilation"] < 1 or options["dilation"] != int(options["dilation"])
                                  or options["dilation"] % 2 == 0):
        raise check.fail("evaluation.options.dilation", f"must be an odd whole number >= 1 (pixels), "
                                                        f"got {options['dilation']}")


def _validate(check: _Checker, exp: Experiment) -> None:
    """Checks across fields: names in registries, keyword arguments, value ranges."""
    if exp.source.thesis not in ("cardiac", "brain"):
        raise check.fail("source.thesis", f"{exp.source.thesis!r} is not 'cardiac' or 'brain'")
    check.choice("dataset.name", exp.dataset.name, DATASETS)
    _validate_task(check, exp)
    if exp.dataset.synthetic_variant is not None:
        from cmrlab.data.synthetic import VARIANTS

        check.choice("dataset.synthetic_variant", exp.dataset.synthetic_variant,
                     VARIANTS.get(exp.dataset.name, {}) or ["(none for this dataset)"])
    split = exp.dataset.split
    parts = (split.train, split.validation, split.test)
    if any(v < 0 for v in parts):
        raise check.fail("dataset.split", f"must not be negative, got {parts}")
    integers = all(isinstance(v, int) for v in parts)
    if not integers and not math.isclose(sum(parts), 1.0, abs_tol=1e-6):
        raise check.fail("dataset.split", f"fractions must sum to 1 (or give integer counts), got {parts}")
    if exp.dataset.n_cases is not None and exp.dataset.n_cases < 1:
        raise check.fail("dataset.n_cases", f"must be >= 1 or null, got {exp.dataset.n_cases}")
    pre = exp.dataset.preprocessing
    if len(pre.spacing) != 2 or not all(s > 0 for s in pre.spacing):
        raise check.fail("dataset.preprocessing.spacing", f"must be two numbers > 0, got {pre.spacing}")
    if len(pre.size) != 2 or not all(s >= 1 for s in pre.size):
        raise check.fail("dataset.preprocessing.size", f"must be two integers >= 1, got {pre.size}")
    check.choice("dataset.preprocessing.normalisation", pre.normalisation, NORMALISATIONS)
    check.choice("dataset.preprocessing.projection", pre.projection, PROJECTIONS)
    for name in ("window", "stride"):
        if getattr(pre, name) < 1:
            raise check.fail(f"dataset.preprocessing.{name}", f"must be >= 1, got {getattr(pre, name)}")
    for name in ("batch_size", "epochs"):
        if getattr(exp, name) < 1:
            raise check.fail(name, f"must be >= 1, got {getattr(exp, name)}")
    check.choice("model.name", exp.model.name, MODELS)
    _check_kwargs(check, "model.kwargs", MODELS[exp.model.name].builder, exp.model.kwargs, f"model {exp.model.name!r}")
    check.choice("loss.name", exp.loss.name, LOSSES)
    _check_kwargs(check, "loss.kwargs", LOSSES[exp.loss.name].__init__, exp.loss.kwargs, f"loss {exp.loss.name!r}")
    check.choice("optimizer.name", exp.optimizer.name, OPTIMIZERS)
    if exp.optimizer.lr <= 0:
        raise check.fail("optimizer.lr", f"must be > 0, got {exp.optimizer.lr}")
    _check_kwargs(check, "optimizer.kwargs", OPTIMIZERS[exp.optimizer.name].__init__, exp.optimizer.kwargs,
                  f"optimizer {exp.optimizer.name!r}", skip=("params", "lr"))
    aug = exp.augmentation
    if aug.rotation < 0 or aug.shear < 0 or aug.shear >= 90 or not 0 <= aug.zoom < 1:
        raise check.fail("augmentation", "needs rotation >= 0, 0 <= shear < 90 and 0 <= zoom < 1, got "
                                         f"{aug.rotation}, {aug.shear}, {aug.zoom}")
    if aug.extra < 0 or aug.max_uses < 1:
        raise check.fail("augmentation", f"needs extra >= 0 and max_uses >= 1, got {aug.extra}, {aug.max_uses}")
    for name in ("shift", "noise_std", "copies"):
        if getattr(aug, name) < 0:
            raise check.fail(f"augmentation.{name}", f"must be >= 0, got {getattr(aug, name)}")
    if not 0 <= aug.temporal_shift <= 1:
        raise check.fail("augmentation.temporal_shift", f"must be a fraction of the sequence in [0, 1], "
                                                        f"got {aug.temporal_shift}")
    _check_builds(check, exp)


def _check_builds(check: _Checker, exp: Experiment) -> None:
    """Build the model (on the ``meta`` device: no memory, no time), the loss and the optimizer
    once, so a keyword argument with a bad *value* is reported now, naming its key, and not
    after a run folder was made."""
    dummy = [torch.zeros(1, requires_grad=True)]
    steps = (("model.kwargs", exp.build_model, True), ("loss.kwargs", exp.build_loss, False),
             ("optimizer.kwargs", lambda: exp.build_optimizer(dummy), False))
    for path, build, meta in steps:
        try:
            with torch.device("meta") if meta else contextlib.nullcontext():
                build()
        except (KeyboardInterrupt, MemoryError):
            raise
        except CmrlabError as exc:
            raise check.fail(path, f"{exc}") from None
        except Exception as exc:  # noqa: BLE001 - a builder's own complaint about a value
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise check.fail(path, f"rejected by {path.split('.')[0]} {getattr(exp, path.split('.')[0]).name!r} "
                                   f"({type(exc).__name__}: {first})") from None


def _merge(base: dict, update: Mapping) -> dict:
    """Deep merge: mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _expand_dotted(overrides: Mapping[str, Any]) -> dict:
    nested: dict = {}
    for key, value in overrides.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"overrides: keys must be non-empty text, got {key!r}")
        parts = key.split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"overrides: {key!r} sets a key under a value that is not a mapping")
        leaf = parts[-1]
        if isinstance(value, Mapping):
            value = _expand_dotted(value)
            node[leaf] = _merge(node.get(leaf, {}), value) if isinstance(node.get(leaf), dict) else value
        else:
            node[leaf] = value
    return nested


def list_experiments() -> list[str]:
    """Names of the shipped experiments (the YAML files in :data:`CONFIG_DIR`), sorted."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def _resolve(name_or_path: str | os.PathLike) -> Path:
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.suffix in (".yaml", ".yml") or os.sep in text or path.exists():
        if not path.is_file():
            raise FileFormatError(path, "no such experiment file" if not path.exists() else "is not a file")
        return path
    known = list_experiments()
    if text not in known:
        raise ConfigError(f"unknown experiment {text!r}; known experiments: {', '.join(known)}"
                          f"{did_you_mean(text, known)} (or give the path of a .yaml file)")
    return CONFIG_DIR / f"{text}.yaml"


def load_experiment(name_or_path: str | os.PathLike, profile: str = "fast",
                    overrides: Mapping[str, Any] | None = None) -> Experiment:
    """Load a shipped experiment by name (see :func:`list_experiments`) or a YAML file by path.

    The file's top level is merged with ``profiles.<profile>`` and then with ``overrides``
    (nested or dotted keys), checked against the schema and the registries, and returned as an
    :class:`Experiment`. Errors: :class:`~cmrlab.errors.FileFormatError` for a missing or
    unreadable file or bad YAML; :class:`~cmrlab.errors.ConfigError` for everything in it (see
    the module docstring), and for an unknown name or profile.
    """
    profile = get_profile(profile).name
    path = _resolve(name_or_path)
    raw = load_yaml(path)
    check = _Checker(str(path))
    if not isinstance(raw, dict):
        raise check.fail("", f"must hold a mapping of keys at the top level, got {type(raw).__name__}")
    profiles = raw.pop("profiles", None) or {}
    if not isinstance(profiles, dict):
        raise check.fail("profiles", f"must be a mapping of profile names to settings, got {profiles!r}")
    for key, value in profiles.items():
        if key not in ("fast", "full"):
            raise check.unknown("profiles", key, ["fast", "full"])
        if value is not None and not isinstance(value, dict):
            raise check.fail(f"profiles.{key}", f"must be a mapping of settings, got {value!r}")
    merged = _merge(raw, profiles.get(profile) or {})
    check = _Checker(f"{path} (profile {profile!r})")
    if overrides:
        if not isinstance(overrides, Mapping):
            raise ConfigError(f"overrides must be a mapping, got {type(overrides).__name__}")
        merged = _merge(merged, _expand_dotted(overrides))
        check = _Checker(f"{path} (profile {profile!r}, with overrides)")
    exp = check.build(Experiment, merged, "")
    _validate(check, exp)
    return dataclasses.replace(exp, profile=profile, path=str(path))


def experiment_from_dict(data: object, source: str | os.PathLike) -> Experiment:
    """An :class:`Experiment` from the plain dict of :meth:`Experiment.to_dict` (e.g. a run
    folder's ``config.yaml`` read with :func:`cmrlab.files.load_yaml`), checked as strictly as
    :func:`load_experiment` checks a file: anything that is not such a dict (empty, a list, an
    unknown or missing key, a value of the wrong type, a ``profile`` that is not ``fast`` or
    ``full``) is a :class:`~cmrlab.errors.ConfigError` naming ``source`` and the key."""
    check = _Checker(os.fspath(source))
    if not isinstance(data, Mapping):
        raise check.fail("", f"must hold a mapping of keys at the top level, got {type(data).__name__}")
    exp = check.build(Experiment, data, "", loader_fields=True)
    check.choice("profile", exp.profile, ("fast", "full"))
    _validate(check, exp)
    return exp
