"""Lab notebooks: solution markers and student versions.

A lab notebook in ``labs/`` is the *instructor's* version: it runs top to bottom (so nbval checks
it in CI) because the solutions are written in, between marker lines inside code cells::

    def conv_output_size(n, k, s=1, p=0):
        # BEGIN SOLUTION
        return (n + 2 * p - k) // s + 1
        # END SOLUTION

Each exercise is followed by a *check cell* of plain ``assert`` statements, which students run to
test their own answer. The student version replaces every marked block by
``raise NotImplementedError(...)`` at the block's indentation and removes all outputs::

    python -m cmrlab.labs labs/ --out student-labs/

Cells whose source contains ``# SOLUTION CELL`` are replaced whole by that stub, and markdown cells
tagged ``solution`` are dropped (for written answers).
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

from cmrlab.errors import FileFormatError
from cmrlab.notebooks import find_notebooks, read_notebook, strip_notebook, write_notebook

__all__ = ["BEGIN", "END", "STUB", "make_student_notebook", "make_student_version", "strip_solutions"]

BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"
WHOLE_CELL = "# SOLUTION CELL"
STUB = 'raise NotImplementedError("Exercise: replace this line with your solution")'


def strip_solutions(source: str, where: str = "<cell>") -> str:
    """Replace each BEGIN/END SOLUTION block of ``source`` by a ``raise NotImplementedError``.

    The stub takes the indentation of the ``# BEGIN SOLUTION`` line. Unbalanced or nested markers
    raise ``ValueError`` naming ``where``.
    """
    if WHOLE_CELL in source:
        return f"{STUB}\n"
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError(f"{where}, line {number}: '{BEGIN}' inside another solution block")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}{STUB}\n")
        elif stripped == END:
            if not inside:
                raise ValueError(f"{where}, line {number}: '{END}' without '{BEGIN}'")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: '{BEGIN}' is never closed by '{END}'")
    return "".join(out)


def make_student_notebook(nb: dict, where: str = "<notebook>") -> dict:
    """The student version of an instructor notebook (a new dict; ``nb`` is unchanged)."""
    student = strip_notebook(nb)
    cells = []
    for index, cell in enumerate(student["cells"]):
        if cell.get("cell_type") == "markdown" and "solution" in cell.get("metadata", {}).get(
            "tags", []
        ):
            continue
        if cell.get("cell_type") == "code":
            src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            new = strip_solutions(src, where=f"{where}, cell {index}")
            if new != src:
                try:
                    ast.parse(new)
                except SyntaxError as exc:
                    raise ValueError(
                        f"{where}, cell {index}: the student version is not valid Python ({exc.msg}, "
                        f"line {exc.lineno}); put the markers around whole statements"
                    ) from None
                cell["source"] = new
                cell["outputs"] = []
        cells.append(cell)
    student["cells"] = cells
    return student


def make_student_version(src: str | Path, dst: str | Path) -> list[Path]:
    """Write student versions of the notebook(s) at ``src`` into the folder ``dst``.

    ``src`` is a notebook or a folder of notebooks (searched recursively; relative paths are kept).
    Returns the written paths.
    """
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise FileFormatError(src, "no such notebook or folder")
    base = src if src.is_dir() else src.parent
    written = []
    for path in find_notebooks([src]):
        target = dst / path.relative_to(base)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            student = make_student_notebook(read_notebook(path), where=str(path))
        except ValueError as exc:
            raise FileFormatError(path, str(exc)) from None
        write_notebook(student, target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cmrlab.labs", description="Write student versions of lab notebooks."
    )
    parser.add_argument("src", help="a lab notebook or a folder of them (e.g. labs/)")
    parser.add_argument("--out", required=True, help="folder for the student versions")
    args = parser.parse_args(argv)
    for path in make_student_version(args.src, args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
