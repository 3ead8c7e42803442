"""Physical constants, units, and the array convention of the Bloch and signal-equation modules.

Units used by :mod:`cmrlab.physics.bloch`, :mod:`cmrlab.physics.signals` and
:mod:`cmrlab.physics.tissues` (the units of an MRI console, so numbers read like a protocol):

========================  =====================================================
quantity                  unit
========================  =====================================================
times (t, TR, TE, TI, T1, T2, T2*)   milliseconds (ms)
off-resonance frequency   hertz (Hz)
flip angles and RF phase  degrees
field strength B0         tesla (T)
gradient amplitude        millitesla per metre (mT/m)
positions, thicknesses    millimetres (mm)
RF amplitude B1           microtesla (µT)
========================  =====================================================

Array convention (one rule, applied by every function of these modules):

* Inputs may be Python numbers, NumPy arrays or torch tensors; they are broadcast together.
* **If any input is a torch tensor the result is a torch tensor** on that tensor's device (or on
  ``device=`` when a function offers it), and gradients flow through it (T1, T2, flip angles …
  can have ``requires_grad=True``). **Otherwise the result is NumPy** (a NumPy scalar for scalar
  input). The work is always done with torch.
* Precision: NumPy and Python inputs are computed in float64; torch inputs keep their floating
  precision (float32 stays float32, which is what large simulations want).
"""
from __future__ import annotations

import math
from typing import Any, Union

import numpy as np
import torch

from cmrlab.errors import ArgumentError

__all__ = [
    "GAMMA",
    "GAMMA_BAR",
    "ArrayLike",
    "as_output",
    "as_tensors",
    "check_finite",
    "check_no_nan",
    "check_nonnegative",
    "check_positive",
    "complex_dtype",
    "image_tensor",
    "larmor_frequency",
    "real_dtype",
]

#: Proton gyromagnetic ratio over 2π, γ/2π, in Hz/T (CODATA 2018: 42.577 478 518 MHz/T).
GAMMA_BAR: float = 42.577478518e6
#: Proton gyromagnetic ratio γ in rad/(s·T).
GAMMA: float = 2.0 * math.pi * GAMMA_BAR

ArrayLike = Union[float, int, np.ndarray, torch.Tensor]


# --------------------------------------------------------------------------------------------
# The array convention
# --------------------------------------------------------------------------------------------
def as_tensors(
    *values: Any,
    names: tuple[str, ...] | list[str],
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[list[torch.Tensor], bool]:
    """Convert ``values`` to real floating tensors on one device; also say if the output is NumPy.

    Returns ``(tensors, numpy_out)``. ``numpy_out`` is True when no value was a torch tensor.
    The device is ``device`` if given, else that of the first torch tensor not on the CPU, else
    the CPU. The
    dtype is ``dtype`` if given, else the promoted floating dtype of the torch inputs, else float64
    (float32 on Apple MPS, which has no float64). ``None`` values are passed through as ``None``.
    """
    torch_inputs = [v for v in values if isinstance(v, torch.Tensor)]
    numpy_out = not torch_inputs
    if device is None:  # an accelerator wins over the CPU (e.g. a CPU scalar tensor next to a CUDA one)
        dev = next((v.device for v in torch_inputs if v.device.type != "cpu"), torch.device("cpu"))
    else:
        dev = torch.device(device)
    if dtype is None:
        floating = [v.dtype for v in torch_inputs if v.is_floating_point()]
        if floating:
            dtype = floating[0]
            for d in floating[1:]:
                dtype = torch.promote_types(dtype, d)
        else:
            dtype = torch.float32 if dev.type == "mps" else torch.float64
    out: list[torch.Tensor] = []
    for value, name in zip(values, names, strict=True):
        if value is None:
            out.append(None)  # type: ignore[arg-type]
            continue
        if isinstance(value, torch.Tensor):
            t = value
        else:
            try:
                a = np.asarray(value)
            except (TypeError, ValueError) as exc:
                raise ArgumentError(f"{name} must be a number or an array of numbers") from exc
            if a.dtype == object or a.dtype.kind not in "biuf":
                raise ArgumentError(f"{name} must hold real numbers, got dtype {a.dtype}")
            t = torch.as_tensor(a.astype(np.float64, copy=not a.flags.writeable))  # torch needs writable
        if t.is_complex():
            raise ArgumentError(f"{name} must be real, got a complex tensor")
        out.append(t.to(device=dev, dtype=dtype))
    return out, numpy_out


def as_output(t: torch.Tensor, numpy_out: bool) -> Any:
    """Apply the convention to a result: a NumPy array (NumPy scalar if 0-d) or the tensor itself."""
    if not numpy_out:
        return t
    a = t.detach().cpu().numpy()
    return a[()] if a.ndim == 0 else a


def image_tensor(x: Any, name: str) -> tuple[torch.Tensor, bool]:
    """An image or k-space as a tensor, and whether it came from NumPy: ``(tensor, from_numpy)``.

    The input convention of the k-space, coil, noise and artifact modules: a torch tensor is used
    as it is (device and precision kept); a NumPy array, NumPy scalar or nested list becomes a
    tensor sharing its precision (real or complex). Integers and booleans become the default
    float type. Anything else, or an array of Python objects, is an :class:`ArgumentError`.
    """
    if isinstance(x, torch.Tensor):
        t, from_numpy = x, False
    else:
        numeric = (np.ndarray, np.generic, list, tuple, int, float, complex)
        if not isinstance(x, numeric) or isinstance(x, bool):
            raise ArgumentError(f"{name} must be a torch.Tensor or a numpy array, got {type(x).__name__}")
        a = np.asarray(x)
        if a.dtype == object:
            raise ArgumentError(f"{name} must hold numbers, got an array of Python objects")
        if not a.dtype.isnative:  # e.g. big-endian data read from a file
            a = a.astype(a.dtype.newbyteorder("="))
        if not a.flags.writeable:
            a = a.copy()
        t, from_numpy = torch.from_numpy(np.ascontiguousarray(a)), True
    if not (t.is_floating_point() or t.is_complex()):
        t = t.to(torch.get_default_dtype())
    return t, from_numpy


def complex_dtype(t: torch.Tensor) -> torch.dtype:
    """The complex dtype with the precision of ``t`` (float64/complex128 → complex128, else complex64)."""
    return torch.complex128 if t.dtype in (torch.float64, torch.complex128) else torch.complex64


def real_dtype(t: torch.Tensor) -> torch.dtype:
    """The real dtype with the precision of ``t`` (float64/complex128 → float64, else float32)."""
    return torch.float64 if t.dtype in (torch.float64, torch.complex128) else torch.float32


def check_no_nan(t: torch.Tensor, name: str) -> None:
    """Raise :class:`ArgumentError` if ``t`` (real or complex) holds a NaN; infinities pass."""
    if torch.isnan(t).any():
        raise ArgumentError(f"{name} contains NaN")


def check_positive(t: torch.Tensor, name: str, *, allow_inf: bool = False) -> None:
    """Raise :class:`ArgumentError` unless every element of ``t`` is > 0 (and finite, unless
    ``allow_inf``). NaN is always an error."""
    if torch.isnan(t).any():
        raise ArgumentError(f"{name} contains NaN")
    if (t <= 0).any():
        raise ArgumentError(f"{name} must be positive, got a minimum of {t.min().item():g}")
    if not allow_inf and torch.isinf(t).any():
        raise ArgumentError(f"{name} must be finite")


def check_nonnegative(t: torch.Tensor, name: str) -> None:
    """Raise :class:`ArgumentError` unless every element of ``t`` is finite and ≥ 0."""
    check_finite(t, name)
    if (t < 0).any():
        raise ArgumentError(f"{name} must not be negative, got a minimum of {t.min().item():g}")


def check_finite(t: torch.Tensor, name: str) -> None:
    """Raise :class:`ArgumentError` if ``t`` holds a NaN or an infinity."""
    if torch.isnan(t).any():
        raise ArgumentError(f"{name} contains NaN")
    if torch.isinf(t).any():
        raise ArgumentError(f"{name} must be finite")


# --------------------------------------------------------------------------------------------
# Larmor frequency
# --------------------------------------------------------------------------------------------
def larmor_frequency(B0: ArrayLike) -> Any:
    """Proton Larmor (precession) frequency in Hz: f0 = (γ/2π) · B0.

    With γ/2π = 42.577 478 518 MHz/T (CODATA 2018), 1.5 T gives 63.87 MHz and 3 T 127.73 MHz.
    ``B0`` is in tesla and must be ≥ 0.
    """
    (b0,), numpy_out = as_tensors(B0, names=("B0",))
    check_nonnegative(b0, "B0")
    return as_output(GAMMA_BAR * b0, numpy_out)
