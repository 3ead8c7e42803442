"""Training: the Trainer, checkpoints, experiment configs and inference (layer 7).

``trainer``      :class:`Trainer` (fit / validate / test / predict), :func:`batch_to`,
                 :func:`resumable_loader`
``callbacks``    CSVLogger, MonitorCallback, TensorBoardCallback, EarlyStopping, ModelCheckpoint
``checkpoint``   atomic ``weights_only`` checkpoints, RNG states, :class:`ResumableRandomSampler`
``distributed``  DDP under ``torchrun``: :func:`init_distributed` and helpers
``experiment``   YAML experiment configs with fast/full profiles: :func:`load_experiment`
``inference``    :func:`sliding_window_inference` (overlap blending), :func:`predict_volume_windows`
"""
from cmrlab.train.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    ModelCheckpoint,
    MonitorCallback,
    TensorBoardCallback,
)
from cmrlab.train.checkpoint import (
    ResumableRandomSampler,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from cmrlab.train.distributed import (
    DistributedInfo,
    cleanup_distributed,
    init_distributed,
    is_main_process,
)
from cmrlab.train.experiment import Experiment, list_experiments, load_experiment
from cmrlab.train.inference import predict_volume_windows, sliding_window_inference
from cmrlab.train.trainer import Trainer, batch_to, resumable_loader, split_batch

__all__ = [
    "CSVLogger", "Callback", "DistributedInfo", "EarlyStopping", "Experiment", "list_experiments",
    "load_experiment", "predict_volume_windows", "sliding_window_inference", "ModelCheckpoint",
    "MonitorCallback", "ResumableRandomSampler", "TensorBoardCallback", "Trainer", "batch_to",
    "capture_rng_state", "cleanup_distributed", "init_distributed", "is_main_process",
    "load_checkpoint", "restore_rng_state", "resumable_loader", "save_checkpoint", "split_batch",
]
