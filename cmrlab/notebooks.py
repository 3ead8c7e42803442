"""Notebook hygiene: strip outputs except the checked ones.

Chapters and labs are committed *without outputs*, except the outputs of cells whose source
contains ``# NBVAL_CHECK_OUTPUT``: nbval (``pytest --nbval-lax``) compares those stored outputs with
a fresh run, so they are the notebook's checked facts.

Command line (also ``make strip``)::

    cmrlab-strip-outputs book labs            # rewrite notebooks in place
    cmrlab-strip-outputs --check book labs    # only report notebooks that carry other outputs
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Iterable

from cmrlab.errors import FileFormatError
from cmrlab.files import atomic_write_text

__all__ = [
    "CHECK_MARKER",
    "find_notebooks",
    "is_checked_cell",
    "read_notebook",
    "strip_notebook",
    "unexpected_outputs",
    "write_notebook",
]

CHECK_MARKER = "NBVAL_CHECK_OUTPUT"
#: Notebook-level metadata that only records one machine's run.
_VOLATILE_NB_METADATA = ("widgets", "papermill", "execution")
_VOLATILE_CELL_METADATA = ("execution", "papermill", "collapsed", "scrolled", "ExecuteTime")


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def is_checked_cell(cell: dict) -> bool:
    """True for a code cell whose source contains ``# NBVAL_CHECK_OUTPUT``."""
    return cell.get("cell_type") == "code" and CHECK_MARKER in _source(cell)


def read_notebook(path: str | os.PathLike) -> dict:
    """Read a notebook as plain JSON, with a clear error for a missing or broken file."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            nb = json.load(fh)
    except FileNotFoundError:
        raise FileFormatError(path, "no such notebook") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FileFormatError(path, f"not a valid notebook (JSON error: {exc})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise FileFormatError(path, "not a Jupyter notebook (no list of cells)")
    return nb


def write_notebook(nb: dict, path: str | os.PathLike) -> None:
    """Write a notebook atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    text = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    atomic_write_text(path, text)


def strip_notebook(nb: dict) -> dict:
    """Return a copy of ``nb`` without outputs, except those of checked cells.

    Checked cells keep their outputs and execution count (nbval skips the comparison of a cell
    whose execution count is empty). Elsewhere execution counts go, and so does run-specific
    metadata (widget state, papermill and timing records), so a re-run and stripped notebook gives
    a small diff.
    """
    nb = json.loads(json.dumps(nb))  # deep copy
    for key in _VOLATILE_NB_METADATA:
        nb.get("metadata", {}).pop(key, None)
    for cell in nb["cells"]:
        meta = cell.get("metadata", {})
        for key in _VOLATILE_CELL_METADATA:
            meta.pop(key, None)
        if cell.get("cell_type") != "code":
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
            continue
        if is_checked_cell(cell):
            continue  # nbval needs the stored outputs *and* an execution count to compare
        cell["execution_count"] = None
        cell["outputs"] = []
    return nb


def unexpected_outputs(nb: dict) -> list[int]:
    """Indices of code cells that carry outputs although they are not checked cells."""
    return [
        i
        for i, cell in enumerate(nb["cells"])
        if cell.get("cell_type") == "code" and cell.get("outputs") and not is_checked_cell(cell)
    ]


def find_notebooks(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """All ``.ipynb`` files under the given files/folders (checkpoints and build folders skipped)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(
                q
                for q in sorted(p.rglob("*.ipynb"))
                if not any(part in (".ipynb_checkpoints", "_build") for part in q.parts)
            )
        elif p.suffix == ".ipynb":
            found.append(p)
        else:
            raise FileFormatError(p, "not a notebook or a folder")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cmrlab-strip-outputs",
        description="Strip notebook outputs, keeping only # NBVAL_CHECK_OUTPUT cells' outputs.",
    )
    parser.add_argument("paths", nargs="+", help="notebooks or folders")
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a notebook needs stripping"
    )
    args = parser.parse_args(argv)
    dirty = 0
    for path in find_notebooks(args.paths):
        nb = read_notebook(path)
        stripped = strip_notebook(nb)
        if stripped == nb:
            continue
        dirty += 1
        if args.check:
            cells = unexpected_outputs(nb)
            detail = f"outputs in cells {cells}" if cells else "execution counts or run metadata"
            print(f"{path}: needs stripping ({detail})")
        else:
            write_notebook(stripped, path)
            print(f"stripped {path}")
    return 1 if (args.check and dirty) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
