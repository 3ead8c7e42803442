"""Safe file handling shared by every layer: atomic writes, paths kept inside a root, strict text.

Atomic writes
    :func:`atomic_write` calls ``write(tmp)`` on a hidden temporary path beside the destination and
    renames it over the destination (``os.replace``, atomic on one file system) only when the write
    finished, so an interrupted or failed write never leaves a half-written file under the final
    name. :func:`atomic_write_text` / :func:`atomic_write_bytes` are the common cases,
    :func:`atomic_folder` does the same for a whole folder, and :func:`remove_partials` clears the
    temporary files that a *killed* process (``kill -9``, power cut) could not clean up itself.

Paths from metadata
    :func:`inside` resolves a path named in a dataset's metadata (``dataset.json``, a truth file)
    and refuses it unless it stays inside the dataset folder, after following symbolic links.

Metadata files
    :func:`read_text`, :func:`load_json` and :func:`load_yaml` read a small text file strictly:
    not UTF-8, too large, too deeply nested, ``NaN``/``Infinity`` or overflowing numbers such as
    ``1e400`` give a :class:`~cmrlab.errors.FileFormatError` naming the file, never a
    ``UnicodeDecodeError``, ``RecursionError`` or ``OverflowError``.

Every temporary name starts with a dot and contains ``.partial``, so dataset globs (``*.nii.gz``)
never pick one up and :func:`is_partial` recognises them.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Union

from cmrlab.errors import CmrlabError, FileFormatError

__all__ = [
    "MAX_METADATA_BYTES", "MAX_NESTING", "atomic_folder", "atomic_write", "atomic_write_bytes",
    "atomic_write_text", "inside", "is_partial", "load_json", "load_yaml", "parse_yaml_text",
    "partial_name", "read_text", "remove_partials",
]

PathLike = Union[str, os.PathLike]

#: Largest metadata file (JSON, YAML, CSV, ``Info.cfg``) read into memory, in bytes.
MAX_METADATA_BYTES = 64 * 1024 * 1024
#: Deepest nesting of lists/dicts accepted in a JSON or YAML file.
MAX_NESTING = 64

_PARTIAL = ".partial"


# ----------------------------------------------------------------------------------------------
# Atomic writes
# ----------------------------------------------------------------------------------------------
def _known_suffix(name: str) -> str:
    """The extension a writer may choose its format by (``.nii.gz`` counts as one)."""
    lower = name.lower()
    for double in (".nii.gz", ".tar.gz", ".csv.gz"):
        if lower.endswith(double):
            return name[-len(double):]
    return Path(name).suffix


def partial_name(path: PathLike) -> Path:
    """A fresh hidden temporary name beside ``path`` that keeps its extension.

    ``case.nii.gz`` → ``.case.1a2b3c4d.partial.nii.gz``: the extension stays last, because writers
    (nibabel, SimpleITK, torch) choose the format from it.
    """
    path = Path(path)
    suffix = _known_suffix(path.name)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    return path.with_name(f".{stem}.{uuid.uuid4().hex[:8]}{_PARTIAL}{suffix}")


def is_partial(path: PathLike) -> bool:
    """Whether ``path`` is one of the temporary files or folders that the atomic writers make."""
    name = Path(path).name
    return name.startswith(".") and _PARTIAL in name


def _make_parent(path: Path) -> None:
    if path.is_dir():
        raise FileFormatError(path, "is a folder: give the name of the file to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileFormatError(path, f"its folder cannot be created ({exc.strerror or exc})") from None


def atomic_write(path: PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a hidden temporary path beside ``path``, then rename it to ``path``.

    Missing folders are created. On any failure (including ``KeyboardInterrupt``) the temporary
    file is removed, ``path`` is left as it was, and the error is reported as a
    :class:`FileFormatError` naming ``path`` (a :class:`CmrlabError` raised by ``write`` passes
    through unchanged; ``KeyboardInterrupt`` is re-raised). Returns ``path``.
    """
    path = Path(path)
    _make_parent(path)
    tmp = partial_name(path)
    try:
        try:
            write(tmp)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
    except (CmrlabError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - report every write failure the same way
        raise FileFormatError(path, f"could not be written ({type(exc).__name__}: {exc})") from None
    return path


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`); ``\\n`` is kept as is."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding=encoding, newline="") as fh:
            fh.write(text)
    return atomic_write(path, write)


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


@contextlib.contextmanager
def atomic_folder(dest: PathLike, *, exist_ok_if: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Build a folder under a hidden temporary name; rename it to ``dest`` when the block succeeds.

    ``with atomic_folder(out) as tmp: ...`` — write into ``tmp``; on leaving the block ``tmp`` is
    renamed to ``dest`` (an existing *empty* ``dest`` is replaced). If the block fails, ``tmp`` is
    deleted and ``dest`` is untouched. When another process finished ``dest`` first, the rename
    fails; ``exist_ok_if(dest)`` returning True then counts as success (``tmp`` is discarded).
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileFormatError(dest, f"its folder cannot be created ({exc.strerror or exc})") from None
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}{_PARTIAL}")
    tmp.mkdir()
    try:
        yield tmp
        if dest.is_dir() and not any(dest.iterdir()):
            dest.rmdir()
        try:
            os.rename(tmp, dest)
        except OSError as exc:
            if exist_ok_if is None or not exist_ok_if(dest):
                raise FileFormatError(dest, f"could not be created ({exc.strerror or exc})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_partials(folder: PathLike, stem: str | None = None) -> list[Path]:
    """Delete the temporary files/folders that an interrupted atomic write left in ``folder``.

    Only names made by :func:`partial_name` / :func:`atomic_folder` (hidden, with ``.partial``)
    are touched, and with ``stem`` only those of that file (``stem="last.pt"`` removes
    ``.last.<id>.partial.pt``). Call it when a run starts, when no other process writes there.
    Returns what was removed.
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    if stem is not None:
        suffix = _known_suffix(stem)
        stem = stem[: len(stem) - len(suffix)] if suffix else stem
    for entry in folder.iterdir():
        if not is_partial(entry) or (stem is not None and not entry.name.startswith(f".{stem}.")):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


# ----------------------------------------------------------------------------------------------
# Paths named inside a dataset
# ----------------------------------------------------------------------------------------------
def inside(root: PathLike, relative: PathLike, *, source: PathLike | None = None,
           what: str = "path") -> Path:
    """``root / relative``, refused unless it stays inside ``root`` once links are followed.

    Absolute paths, ``..`` that climbs out, and symbolic links pointing outside ``root`` give a
    :class:`FileFormatError` naming ``source`` (the metadata file that named the path) or ``root``.
    The path need not exist. Returns the joined, *unresolved* path (``root / relative``).
    """
    root = Path(root)
    blame = Path(source) if source is not None else root
    text = os.fspath(relative)
    if not text or "\x00" in text:
        raise FileFormatError(blame, f"{what} {text!r} is not a valid path")
    rel = Path(text)
    if rel.is_absolute() or rel.drive:
        raise FileFormatError(blame, f"{what} {text!r} is absolute; it must be relative to {root}")
    joined = root / rel
    real_root = os.path.realpath(root)
    real = os.path.realpath(joined)
    if os.path.commonpath([real_root, real]) != real_root:
        raise FileFormatError(blame, f"{what} {text!r} leads outside {root} (to {real}); refused")
    return joined


# ----------------------------------------------------------------------------------------------
# Strict metadata files
# ----------------------------------------------------------------------------------------------
def read_text(path: PathLike, *, max_bytes: int = MAX_METADATA_BYTES, what: str = "text file") -> str:
    """The UTF-8 text of a small file (a leading BOM is dropped), or :class:`FileFormatError`."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise FileFormatError(path, f"is {size} bytes, larger than the {max_bytes} bytes a {what} may have")
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileFormatError(path, "does not exist") from None
    except IsADirectoryError:
        raise FileFormatError(path, f"is a folder, not a {what}") from None
    except OSError as exc:
        raise FileFormatError(path, f"cannot be read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileFormatError(path, f"is not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r})") from None
    return text.removeprefix("\ufeff")


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of lists/dicts, iteratively (no recursion), stopping once past ``limit``."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, d = stack.pop()
        if isinstance(item, (dict, list, tuple)):
            deepest = max(deepest, d)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((c, d + 1) for c in children)
    return deepest


def _non_finite(value: Any) -> str | None:
    """The dotted key of the first NaN or infinite float in a parsed tree, or None."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, key = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return key or "(top level)"
        if isinstance(item, dict):
            stack.extend((v, f"{key}.{k}" if key else str(k)) for k, v in item.items())
        elif isinstance(item, (list, tuple)):
            stack.extend((v, f"{key}[{i}]") for i, v in enumerate(item))
    return None


def _check_tree(path: Path, data: Any, allow_non_finite: bool) -> Any:
    if _depth(data, MAX_NESTING) > MAX_NESTING:
        raise FileFormatError(path, f"is nested more than {MAX_NESTING} levels deep; refused")
    if not allow_non_finite:
        key = _non_finite(data)
        if key is not None:
            raise FileFormatError(path, f"field {key!r} is not a finite number (NaN, inf or an overflow such as 1e400)")
    return data


def load_json(path: PathLike, *, allow_non_finite: bool = False, max_bytes: int = MAX_METADATA_BYTES) -> Any:
    """Parse a JSON file strictly (see the module docstring); returns the parsed value."""
    path = Path(path)
    text = read_text(path, max_bytes=max_bytes, what="JSON file")

    def refuse(constant: str) -> float:
        if allow_non_finite:
            return float(constant)
        raise FileFormatError(path, f"holds {constant}, which is not a finite number")

    try:
        data = json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as exc:
        raise FileFormatError(path, f"is not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise FileFormatError(path, f"is nested too deeply to parse (more than {MAX_NESTING} levels); refused") from None
    return _check_tree(path, data, allow_non_finite)


def load_yaml(path: PathLike, *, allow_non_finite: bool = False, max_bytes: int = MAX_METADATA_BYTES) -> Any:
    """Parse a YAML file with ``yaml.safe_load`` strictly (see the module docstring).

    YAML's ``.inf``/``.nan`` and overflowing numbers are refused unless ``allow_non_finite``;
    aliases are expanded by PyYAML, but the result's nesting is checked without recursion.
    """
    import yaml

    path = Path(path)
    text = read_text(path, max_bytes=max_bytes, what="YAML file")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FileFormatError(path, f"is not valid YAML ({problem}{where})") from None
    except RecursionError:
        raise FileFormatError(path, f"is nested too deeply to parse (more than {MAX_NESTING} levels); refused") from None
    return _check_tree(path, data, allow_non_finite)


def parse_yaml_text(text: str, source: PathLike, *, allow_non_finite: bool = False) -> Any:
    """Parse YAML ``text`` that is not in a file (a command-line value) as strictly as :func:`load_yaml`.

    ``source`` names where the text came from (``"--set epochs"``) in the
    :class:`FileFormatError` raised for invalid YAML, too deep nesting, or NaN/inf/overflowing
    numbers (unless ``allow_non_finite``).
    """
    import yaml

    if len(text) > MAX_METADATA_BYTES:
        raise FileFormatError(source, f"is {len(text)} characters long; refused")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FileFormatError(source, f"is not valid YAML ({problem}{where})") from None
    except RecursionError:
        raise FileFormatError(source, f"is nested too deeply to parse (more than {MAX_NESTING} levels); refused") from None
    return _check_tree(Path(source), data, allow_non_finite)
