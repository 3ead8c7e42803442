"""The whole website builds, executing every chapter, with no cell error and no Sphinx warning.

This is the same build as ``make book`` (``jupyter-book build . --all -W --keep-going`` with
``nb_execution_raise_on_error: true``), written to a temporary folder, followed by checks of the
built pages: every chapter is there, with its figures and the viewer's animation frames, and the
pages load nothing from the network.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, CMRLAB_STATIC="1")
    env.pop("MPLBACKEND", None)  # kernels need matplotlib's inline backend to show figures
    result = subprocess.run(
        [str(JUPYTER_BOOK), "build", str(REPO), "--all", "-W", "--keep-going",
         "--path-output", str(out)],
        capture_output=True, text=True, env=env, timeout=3000,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"book build failed:\n{log[-15000:]}"
    return out / "_build" / "html", log


def _toc_files():
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    return [toc["root"]] + [ch["file"] for part in toc["parts"] for ch in part["chapters"]]


@pytest.mark.book
def test_book_builds_without_warnings(site):
    html, log = site
    # Sphinx warnings read "file:line: WARNING: ..."; with -W they also fail the build. (Jupyter's
    # "[IPKernelApp] WARNING | Kernel is running over TCP" is the kernel's own log, not a warning
    # about the book.)
    warnings = [line for line in log.splitlines() if "WARNING:" in line]
    assert warnings == [], warnings
    assert (html / "index.html").exists()


@pytest.mark.book
def test_every_chapter_page_has_its_content(site):
    html, _ = site
    for f in _toc_files():
        page = html / f"{f}.html"
        assert page.exists(), page
        text = page.read_text(encoding="utf-8")
        assert "Traceback" not in text, f"{page} shows a traceback"
    for nb in (REPO / "book").rglob("*.ipynb"):
        rel = nb.relative_to(REPO).with_suffix(".html")
        text = (html / rel).read_text(encoding="utf-8")
        assert re.search(r'<img [^>]*src="[^"]*_images/', text), f"{rel} has no figure"


@pytest.mark.book
def test_viewer_fallback_frames_are_in_the_site(site):
    html, _ = site
    page = (html / "book/part2-data/medical-images-as-data.html").read_text(encoding="utf-8")
    frames = re.findall(r'frames\[\d+\] = "data:image/png;base64,', page)
    assert len(frames) >= 10, "the static viewer fallback lost its animation frames"
    assert "jupyter-widgets" not in page.lower() or "application/vnd.jupyter.widget-view" not in page


@pytest.mark.book
def test_site_is_self_contained(site):
    from site_checks import check_built_site

    html, _ = site
    assert check_built_site(html) == []
