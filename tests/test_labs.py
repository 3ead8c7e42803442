"""Student versions of lab notebooks."""
import ast
from pathlib import Path

import nbformat
import pytest

from cmrlab.errors import FileFormatError
from cmrlab.labs import STUB, make_student_version, strip_solutions
from cmrlab.notebooks import find_notebooks, read_notebook

REPO = Path(__file__).resolve().parents[1]

SOLVED = '''def area(r):
    """Disc area."""
    # BEGIN SOLUTION
    import math
    return math.pi * r**2
    # END SOLUTION

x = 1
'''


def test_strip_solutions_keeps_indentation_and_code_outside():
    out = strip_solutions(SOLVED)
    assert "math.pi" not in out and "x = 1" in out
    assert f"    {STUB}\n" in out
    ast.parse(out)


@pytest.mark.parametrize(
    "src, problem",
    [("# BEGIN SOLUTION\n", "never closed"), ("# END SOLUTION\n", "without"),
     ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n", "inside another")],
)
def test_unbalanced_markers(src, problem):
    with pytest.raises(ValueError, match=problem):
        strip_solutions(src, where="lab.ipynb")


def test_student_version_of_a_notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    answer = nbformat.v4.new_markdown_cell("The answer is 42.")
    answer.metadata["tags"] = ["solution"]
    solved = nbformat.v4.new_code_cell(SOLVED)
    solved.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi\n")]
    nb.cells = [nbformat.v4.new_markdown_cell("# Lab"), solved,
                nbformat.v4.new_code_cell("assert abs(area(1) - 3.14159) < 1e-4"), answer,
                nbformat.v4.new_code_cell("# SOLUTION CELL\nprint('secret')")]
    (tmp_path / "in").mkdir()
    nbformat.write(nb, tmp_path / "in" / "lab.ipynb")
    [out] = make_student_version(tmp_path / "in", tmp_path / "out")
    student = read_notebook(out)
    text = "".join("".join(c["source"]) for c in student["cells"])
    assert "math.pi" not in text and "42" not in text and "secret" not in text
    assert text.count(STUB) == 2
    assert all(not c.get("outputs") for c in student["cells"])


def test_bad_markers_name_the_file(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("# BEGIN SOLUTION\nx = 1\n")]
    nbformat.write(nb, tmp_path / "lab.ipynb")
    with pytest.raises(FileFormatError, match=r"lab.ipynb: .*cell 0.*never closed"):
        make_student_version(tmp_path / "lab.ipynb", tmp_path / "out")


LABS = find_notebooks([REPO / "labs"])


@pytest.mark.parametrize("path", LABS, ids=[p.name for p in LABS])
def test_course_labs_have_exercises_and_valid_student_versions(path, tmp_path):
    src = "".join("".join(c["source"]) for c in read_notebook(path)["cells"])
    assert "# BEGIN SOLUTION" in src, f"{path.name} has no exercise"
    [out] = make_student_version(path, tmp_path)
    for cell in read_notebook(out)["cells"]:
        if cell["cell_type"] == "code":
            ast.parse("".join(cell["source"]))  # IPython magics are not used in labs
