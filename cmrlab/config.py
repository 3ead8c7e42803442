"""Run settings shared by every chapter: profile, device, seeds and the data root.

A chapter starts with a papermill ``parameters`` cell and one call::

    PROFILE = "fast"     # "fast": CPU, small synthetic data, seconds. "full": thesis settings, GPU.
    SEED = 0
    DEVICE = None        # None: the profile's choice ("fast" → cpu, "full" → cuda → mps → cpu)
    DATA_ROOT = None     # None: $CMRLAB_DATA_ROOT, else ~/cmrlab-data

    from cmrlab.config import setup
    run = setup(profile=PROFILE, seed=SEED, device=DEVICE, data_root=DATA_ROOT)
    width = run.pick(fast=16, full=64)

``papermill chapter.ipynb out.ipynb -p PROFILE full`` then runs the same chapter at full scale.

This is the lowest layer of cmrlab: it imports nothing else from the package except its errors,
and it imports torch only when a device or a torch seed is asked for.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from cmrlab.errors import ConfigError

__all__ = [
    "PROFILES",
    "Profile",
    "RunConfig",
    "data_root",
    "get_profile",
    "is_static_build",
    "select_device",
    "seed_everything",
    "setup",
]

T = TypeVar("T")

#: Environment variable naming the folder that holds the datasets.
DATA_ROOT_ENV = "CMRLAB_DATA_ROOT"
#: Environment variable forcing a device ("cpu", "cuda", "cuda:1", "mps").
DEVICE_ENV = "CMRLAB_DEVICE"
#: Environment variable choosing the profile when a chapter passes ``profile=None``.
PROFILE_ENV = "CMRLAB_PROFILE"
#: Environment variable set while the static website is built: viewers render kernel-free HTML.
STATIC_ENV = "CMRLAB_STATIC"
#: Where the data live when nothing else is said.
DEFAULT_DATA_ROOT = Path("~") / "cmrlab-data"


@dataclass(frozen=True)
class Profile:
    """A named set of run settings.

    ``device`` is ``"cpu"`` or ``"auto"`` (cuda → mps → cpu). ``synthetic_data`` says whether the
    chapter uses the embedded synthetic data even when a real dataset is present.
    """

    name: str
    description: str
    device: str
    synthetic_data: bool


PROFILES: dict[str, Profile] = {
    "fast": Profile(
        name="fast",
        description="CPU, small synthetic data and reduced model widths: seconds to a minute",
        device="cpu",
        synthetic_data=True,
    ),
    "full": Profile(
        name="full",
        description="thesis sizes and hyper-parameters, real data under the data root, GPU if any",
        device="auto",
        synthetic_data=False,
    ),
}


def get_profile(name: str | None = None) -> Profile:
    """Return the profile called ``name`` (``None``: ``$CMRLAB_PROFILE``, else ``"fast"``)."""
    if name is None:
        name = os.environ.get(PROFILE_ENV) or "fast"
    key = str(name).strip().lower()
    if key not in PROFILES:
        raise ConfigError(
            f"unknown profile {name!r}: choose one of {', '.join(repr(p) for p in PROFILES)}"
        )
    return PROFILES[key]


def select_device(prefer: str | None = None):
    """Pick a torch device.

    ``prefer`` may be ``None``/``"auto"`` (first available of cuda → mps → cpu) or a device string
    such as ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"``. ``$CMRLAB_DEVICE`` is used when
    ``prefer`` is ``None``. Asking for a device this machine does not have is an error rather than a
    silent fallback, so a full-scale run never crawls along on the CPU by accident.
    """
    import torch

    if prefer is None:
        prefer = os.environ.get(DEVICE_ENV) or "auto"
    prefer = str(prefer).strip().lower()
    mps_ok = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if prefer == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_ok:
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(prefer)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(
            f"unknown device {prefer!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {prefer!r} was asked for but CUDA is not available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {prefer!r} was asked for but only {torch.cuda.device_count()} "
                "CUDA device(s) exist"
            )
    elif device.type == "mps" and not mps_ok:
        raise ConfigError(f"device {prefer!r} was asked for but Apple MPS is not available here")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device {prefer!r} is not supported: use cpu, cuda or mps")
    return device


def seed_everything(seed: int, deterministic: bool = False) -> int:
    """Seed Python's ``random``, NumPy and torch (CPU and every GPU) with one call.

    With ``deterministic=True`` torch is also asked to use deterministic algorithms only (slower on
    GPU, and some operations then raise). Returns the seed, so ``rng = np.random.default_rng(
    seed_everything(0))`` reads naturally.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ConfigError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency, but stay usable without
        return seed
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return seed


def data_root(path: str | os.PathLike | None = None) -> Path:
    """The folder under which datasets live.

    Order: the ``path`` argument, then ``$CMRLAB_DATA_ROOT``, then ``~/cmrlab-data``. The folder is
    not created here; readers create what they write.
    """
    if path is None or str(path) == "":
        path = os.environ.get(DATA_ROOT_ENV) or DEFAULT_DATA_ROOT
    root = Path(path).expanduser()
    if root.exists() and not root.is_dir():
        raise ConfigError(f"data root {str(root)!r} exists but is not a folder")
    return root.resolve()


_resolve_data_root = data_root  # setup() takes a parameter of the same name


def is_static_build() -> bool:
    """True while the static website is being built (``$CMRLAB_STATIC`` set to 1/true/yes)."""
    return os.environ.get(STATIC_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class RunConfig:
    """What :func:`setup` decided. ``pick`` chooses a profile-dependent size or setting."""

    profile: Profile
    seed: int
    device: Any  # torch.device; typed loosely so this module does not import torch eagerly
    data_root: Path
    overrides: dict = field(default_factory=dict)

    @property
    def fast(self) -> bool:
        return self.profile.name == "fast"

    def pick(self, *, fast: T, full: T) -> T:
        """Return ``fast`` or ``full`` according to the profile: ``run.pick(fast=16, full=64)``."""
        return fast if self.fast else full

    def __str__(self) -> str:
        return (
            f"profile={self.profile.name} seed={self.seed} device={self.device} "
            f"data_root={self.data_root}"
        )


def setup(
    profile: str | None = "fast",
    seed: int = 0,
    device: str | None = None,
    data_root: str | os.PathLike | None = None,  # noqa: A002 - mirrors the parameters cell
    deterministic: bool = False,
) -> RunConfig:
    """Apply a chapter's parameters cell: choose the profile and device, seed everything.

    ``device=None`` follows the profile (``fast`` runs on the CPU, ``full`` takes cuda → mps →
    cpu); a string forces that device.
    """
    prof = get_profile(profile)
    seed_everything(seed, deterministic=deterministic)
    if device is None and not os.environ.get(DEVICE_ENV):
        device = prof.device
    dev = select_device(device)
    root = _resolve_data_root(data_root)
    return RunConfig(profile=prof, seed=seed, device=dev, data_root=root)
