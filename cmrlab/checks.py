"""Argument checks shared by every layer of cmrlab: numbers, integers, flags, choices, spacings.

One place for the questions every public function asks of its arguments ("is this a finite
number above zero?", "is this one of the allowed options?"), in the manner of MONAI's
``look_up_option``. Each check returns the value in its canonical type (``float``, ``int``,
``bool``, ``str``, a tuple of floats) or raises :class:`~cmrlab.errors.ArgumentError` whose message
names the argument and says what was expected::

    >>> check_number("T1", 1200.0, minimum=0, low_open=True)
    1200.0
    >>> check_choice("activation", "softmx", ("softmax", "sigmoid", "none"))
    Traceback (most recent call last):
    ...
    cmrlab.errors.ArgumentError: activation must be one of 'softmax', 'sigmoid', 'none', got 'softmx'; did you mean 'softmax'?

Values read from *files* (a dataset's ``Info.cfg``, a CSV, a JSON or YAML file) are checked by
:func:`metadata_number`, which names the file and the field in a
:class:`~cmrlab.errors.FileFormatError` instead.
"""
from __future__ import annotations

import difflib
import math
import numbers
import os
from collections.abc import Iterable, Sequence
from typing import Any

from cmrlab.errors import ArgumentError, FileFormatError

__all__ = [
    "check_bool", "check_choice", "check_int", "check_int_tuple", "check_number", "check_spacing",
    "did_you_mean", "metadata_number",
]


def did_you_mean(value: object, options: Iterable[object], cutoff: float = 0.6) -> str:
    """``"; did you mean 'x'?"`` when one of ``options`` is close to ``value``, else ``""``."""
    names = [str(o) for o in options]
    close = difflib.get_close_matches(str(value), names, n=1, cutoff=cutoff)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_int(name: str, value: object, minimum: int | None = 1, maximum: int | None = None) -> int:
    """``value`` as an ``int`` if it is an integer in ``[minimum, maximum]``; else ArgumentError.

    NumPy integers pass; ``bool`` and floats (even ``3.0``) do not. ``None`` as a bound means no
    bound. The message names the argument: ``"depth must be an integer >= 1, got 0"``.
    """
    ok = not isinstance(value, bool) and isinstance(value, numbers.Integral)
    if ok and ((minimum is not None and value < minimum) or (maximum is not None and value > maximum)):
        ok = False
    if not ok:
        if minimum is not None and maximum is not None:
            bound = f" in [{minimum}, {maximum}]"
        elif minimum is not None:
            bound = f" >= {minimum}"
        elif maximum is not None:
            bound = f" <= {maximum}"
        else:
            bound = ""
        raise ArgumentError(f"{name} must be an integer{bound}, got {value!r}")
    return int(value)


def check_int_tuple(name: str, values: object, length: int | None = None, minimum: int | None = 1,
                    *, odd: bool = False) -> tuple[int, ...]:
    """A non-empty sequence of integers ``>= minimum`` (of ``length`` items, odd if asked) as a tuple."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
        raise ArgumentError(f"{name} must be a non-empty sequence of integers, got {values!r}")
    if length is not None and len(values) != length:
        raise ArgumentError(f"{name} must have {length} values, got {len(values)}: {values!r}")
    out = tuple(check_int(f"{name}[{i}]", v, minimum) for i, v in enumerate(values))
    if odd and any(v % 2 == 0 for v in out):
        raise ArgumentError(f"{name} must hold odd integers, got {values!r}")
    return out


def check_number(name: str, value: object, minimum: float | None = None, maximum: float | None = None,
                 *, low_open: bool = False, high_open: bool = False, finite: bool = True) -> float:
    """``value`` as a ``float`` if it is a real number within the bounds; else ArgumentError.

    Bounds are inclusive unless ``low_open`` / ``high_open``; ``None`` means no bound. ``bool``,
    strings and complex numbers are refused, and so are NaN and ±inf unless ``finite=False`` (NaN
    is refused always). NumPy scalars and 0-d arrays of a real type pass.
    """
    real = not isinstance(value, bool) and isinstance(value, numbers.Real)
    if not real and getattr(value, "shape", None) == () and getattr(getattr(value, "dtype", None), "kind", "") in "iuf":
        real = True  # a 0-d numpy array or tensor of a real type
    v = float(value) if real else math.nan
    in_range = real and not math.isnan(v) and (math.isfinite(v) or not finite)
    if in_range and minimum is not None:
        in_range = v > minimum if low_open else v >= minimum
    if in_range and maximum is not None:
        in_range = v < maximum if high_open else v <= maximum
    if not in_range:
        parts = []
        if minimum is not None:
            parts.append(f"{'>' if low_open else '>='} {minimum:g}")
        if maximum is not None:
            parts.append(f"{'<' if high_open else '<='} {maximum:g}")
        kind = "a finite number" if finite else "a number"
        bound = f" {' and '.join(parts)}" if parts else ""
        raise ArgumentError(f"{name} must be {kind}{bound}, got {value!r}")
    return v


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is ``True`` or ``False`` (NumPy booleans pass); else ArgumentError."""
    if isinstance(value, bool):
        return value
    if type(value).__name__ in ("bool_", "bool") and type(value).__module__ == "numpy":  # numpy.bool_
        return bool(value)
    raise ArgumentError(f"{name} must be True or False, got {value!r}")


def check_choice(name: str, value: object, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``; else ArgumentError listing them (with a "did you mean").

    Like MONAI's ``look_up_option``: when ``choices`` is a mapping, the value found *under* the key
    is returned, so ``check_choice("activation", "relu", {"relu": nn.ReLU})`` gives ``nn.ReLU``.
    """
    options = list(choices)
    for option in options:
        try:
            same = bool(option == value) and isinstance(option, bool) == isinstance(value, bool)
        except Exception:  # noqa: BLE001 - an array or an odd __eq__ is simply not an option
            same = False
        if same:
            return choices[option] if hasattr(choices, "keys") else option
    listed = ", ".join(repr(o) for o in options)
    hint = did_you_mean(value, options) if isinstance(value, str) else ""
    raise ArgumentError(f"{name} must be one of {listed}, got {value!r}{hint}")


def check_spacing(name: str, value: object, ndim: int | None = None) -> tuple[float, ...]:
    """A voxel spacing: a sequence of finite numbers > 0 (``ndim`` of them, if given), in mm.

    Zero, negative, NaN and infinite spacings are refused, as are strings and empty sequences.
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ArgumentError(f"{name} must be a sequence of numbers > 0 (mm), got {value!r}")
    items = list(value)
    if not items or (ndim is not None and len(items) != ndim):
        want = f"{ndim} numbers" if ndim is not None else "at least one number"
        raise ArgumentError(f"{name} must hold {want} > 0 (mm), got {value!r}")
    return tuple(check_number(f"{name}[{i}]", v, 0.0, low_open=True) for i, v in enumerate(items))


def metadata_number(path: str | os.PathLike, field: str, value: object, *, integer: bool = False,
                    minimum: float | None = None, maximum: float | None = None) -> float | int:
    """A number read from a file's metadata, or :class:`FileFormatError` naming the file and field.

    ``value`` may be a string (``"12"``, ``"1.5e2"``) or a number parsed already (JSON, YAML). NaN,
    ``inf`` and overflowing literals such as ``1e400`` are refused, as are values outside
    ``[minimum, maximum]`` and, with ``integer=True``, anything that is not a whole number.
    """
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, bool) or text is None or text == "":
        raise FileFormatError(path, f"field {field!r} must be a number, got {value!r}")
    try:
        number = float(text) if isinstance(text, (str, numbers.Real)) else math.nan
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if not math.isfinite(number):
        raise FileFormatError(path, f"field {field!r} must be a finite number, got {value!r}")
    if integer:
        if isinstance(text, str):
            try:
                as_int = int(text)
            except ValueError:
                as_int = None
        else:
            as_int = int(number) if float(number).is_integer() else None
        if as_int is None:
            raise FileFormatError(path, f"field {field!r} must be a whole number, got {value!r}")
        number = as_int
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        lo = "-inf" if minimum is None else f"{minimum:g}"
        hi = "inf" if maximum is None else f"{maximum:g}"
        raise FileFormatError(path, f"field {field!r} must lie in [{lo}, {hi}], got {value!r}")
    return number
