"""Notebook hygiene (committed notebooks carry only checked outputs) and nbval's checking."""
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from cmrlab.errors import FileFormatError
from cmrlab.notebooks import find_notebooks, main, read_notebook, strip_notebook, unexpected_outputs

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = find_notebooks([REPO / "book", REPO / "labs"])


def _ids(paths):
    return [str(p.relative_to(REPO)) for p in paths]


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 3


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_committed_notebook_is_clean(path):
    nb = read_notebook(path)
    nbformat.validate(nbformat.reads(json.dumps(nb), as_version=4))
    assert unexpected_outputs(nb) == [], f"{path}: outputs outside # NBVAL_CHECK_OUTPUT cells; run make strip"
    assert strip_notebook(nb) == nb, f"{path}: execution counts or run metadata left; run make strip"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path}: needs exactly one cell tagged 'parameters' (papermill)"
    assert "PROFILE" in "".join(tagged[0]["source"])


def test_every_chapter_is_in_the_toc_and_every_toc_entry_exists():
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = [toc["root"]] + [ch["file"] for part in toc["parts"] for ch in part["chapters"]]
    for f in files:
        assert any((REPO / f).with_suffix(s).exists() for s in (".md", ".ipynb")), f
    chapters = {str(p.relative_to(REPO).with_suffix("")) for p in find_notebooks([REPO / "book"])}
    assert chapters <= set(files), f"chapters missing from _toc.yml: {chapters - set(files)}"


def _notebook(check_source, stored_output):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = nbformat.v4.new_code_cell(check_source)
    cell.execution_count = 2
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored_output)]
    nb.cells = [nbformat.v4.new_code_cell("x = 6 * 7"), cell]
    return nb


def _run_nbval(path):
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--nbval-lax", str(path)],
        capture_output=True, text=True, cwd=path.parent, timeout=300,
    )


def test_nbval_fails_when_a_checked_output_changes(tmp_path):
    good = tmp_path / "good.ipynb"
    bad = tmp_path / "bad.ipynb"
    unchecked = tmp_path / "unchecked.ipynb"
    nbformat.write(_notebook("# NBVAL_CHECK_OUTPUT\nprint(x)", "42\n"), good)
    nbformat.write(_notebook("# NBVAL_CHECK_OUTPUT\nprint(x)", "41\n"), bad)
    nbformat.write(_notebook("print(x)", "41\n"), unchecked)  # lax mode: not compared
    assert _run_nbval(good).returncode == 0
    result = _run_nbval(bad)
    assert result.returncode == 1, result.stdout
    assert "41" in result.stdout and "42" in result.stdout
    assert _run_nbval(unchecked).returncode == 0


def test_strip_keeps_only_checked_outputs(tmp_path):
    nb = _notebook("# NBVAL_CHECK_OUTPUT\nprint(x)", "42\n")
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="noise\n")]
    nb.cells[0].execution_count = 3
    nb.metadata["widgets"] = {"state": {}}
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    assert main(["--check", str(path)]) == 1
    assert main([str(path)]) == 0
    clean = read_notebook(path)
    assert clean["cells"][0]["outputs"] == [] and clean["cells"][0]["execution_count"] is None
    assert "".join(clean["cells"][1]["outputs"][0]["text"]) == "42\n"
    assert "widgets" not in clean["metadata"]
    assert main(["--check", str(path)]) == 0


def test_read_notebook_errors_name_the_file(tmp_path):
    with pytest.raises(FileFormatError, match="missing.ipynb: no such notebook"):
        read_notebook(tmp_path / "missing.ipynb")
    broken = tmp_path / "broken.ipynb"
    broken.write_text('{"cells": [')
    with pytest.raises(FileFormatError, match="broken.ipynb: not a valid notebook"):
        read_notebook(broken)
