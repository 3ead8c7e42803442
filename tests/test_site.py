"""The course website works offline: configuration, vendored files, the local Sphinx extension,
the checks of a built site (``site_checks``) on small hand-written sites, and - once the book has
been built into ``_build/html`` - the real site.
"""
from __future__ import annotations

import hashlib
import importlib.util
import textwrap
from pathlib import Path

import pytest
import yaml
from docutils import nodes
from docutils.frontend import get_default_settings
from docutils.parsers.rst import Parser
from docutils.utils import new_document

from site_checks import (
    MATHJAX_SCRIPT,
    WIDGET_SCRIPTS,
    check_built_site,
    check_page,
    check_vendored_files,
    is_offsite,
    toc_docnames,
    vendored_files,
)

REPO = Path(__file__).resolve().parents[1]
STATIC = REPO / "book" / "_static"
BUILT = REPO / "_build" / "html"


def _load_extension():
    spec = importlib.util.spec_from_file_location("cmrlab_book", REPO / "book/_ext/cmrlab_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cmrlab_book = _load_extension()


def _sphinx_config() -> dict:
    return yaml.safe_load((REPO / "_config.yml").read_text())["sphinx"]["config"]


# --- configuration and vendored files (no build needed) -------------------------------------

def test_config_drops_thebe_and_keeps_the_other_default_extensions():
    from jupyter_book.config import get_default_sphinx_config

    extensions = _sphinx_config()["extensions"]
    assert "sphinx_thebe" not in extensions
    default = set(get_default_sphinx_config()["extensions"]) - {"sphinx_thebe"}
    assert default <= set(extensions), default - set(extensions)
    assert {"cmrlab_book", "sphinxcontrib.bibtex"} <= set(extensions)


def test_config_points_mathjax_and_ipywidgets_at_vendored_files():
    config = _sphinx_config()
    assert config["html_static_path"] == ["book/_static"]
    assert config["mathjax_path"] == MATHJAX_SCRIPT
    assert (STATIC / MATHJAX_SCRIPT).is_file()
    widget_js = config["nb_ipywidgets_js"]
    assert list(widget_js) == list(WIDGET_SCRIPTS)
    for path, attributes in widget_js.items():
        assert (STATIC / path).is_file(), path
        assert not any(is_offsite(str(v)) for v in attributes.values()), (path, attributes)
    assert "data-jupyter-widgets-cdn-only" in widget_js[WIDGET_SCRIPTS[-1]]


def test_vendored_files_match_vendored_md():
    listed = vendored_files()
    assert {"requirejs/require.js", "jupyter-widgets/embed-amd.js",
            "mathjax/tex-chtml-full.js"} <= set(listed)
    # The ipywidgets CSS loads exactly three Font Awesome woff2 fonts; MathJax CHTML has 23 fonts.
    assert sum(p.startswith("jupyter-widgets/") and p.endswith(".woff2") for p in listed) == 3
    assert sum(p.startswith("mathjax/output/chtml/fonts/woff-v2/") for p in listed) == 23
    assert check_vendored_files() == []


def test_check_vendored_files_reports_changed_missing_and_unlisted_files(tmp_path):
    vendor = tmp_path / "vendor"
    (vendor / "lib").mkdir(parents=True)
    (vendor / "lib/a.js").write_text("var a = 1;\n")
    (vendor / "lib/b.js").write_text("var b = 2;\n")
    rows = [f"| `lib/{n}.js` | {len(t)} | `{hashlib.sha256(t.encode()).hexdigest()}` |"
            for n, t in (("a", "var a = 1;\n"), ("b", "var b = 2;\n"))]
    md = tmp_path / "VENDORED.md"
    md.write_text("| file | bytes | sha256 |\n|---|---:|---|\n" + "\n".join(rows) + "\n")
    assert check_vendored_files(vendor, md) == []

    (vendor / "lib/a.js").write_text("var a = 3;\n")       # same size, other content
    (vendor / "lib/b.js").unlink()
    (vendor / "lib/c.js").write_text("extra")
    problems = check_vendored_files(vendor, md)
    assert len(problems) == 3
    assert "a.js: differs from VENDORED.md" in problems[0]
    assert "b.js: listed in VENDORED.md but missing" in problems[1]
    assert "c.js: not listed in VENDORED.md" in problems[2]


# --- the Sphinx extension ---------------------------------------------------------------------

def test_extension_marks_the_build_static(monkeypatch):
    monkeypatch.setenv("CMRLAB_STATIC", "0")  # so that monkeypatch restores the variable afterwards
    connected = []

    class App:
        def connect(self, event, handler):
            connected.append((event, handler))

    meta = cmrlab_book.setup(App())
    assert meta["parallel_read_safe"] and meta["parallel_write_safe"]
    import os
    assert os.environ["CMRLAB_STATIC"] == "1"
    assert connected == [("doctree-resolved", cmrlab_book.make_outputs_offline)]


def _to_jshtml() -> str:
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.animation import FuncAnimation

    fig, ax = plt.subplots(figsize=(1, 1), dpi=20)
    image = ax.imshow(np.zeros((2, 2)), vmin=0, vmax=1)
    anim = FuncAnimation(fig, lambda i: image.set_data(np.full((2, 2), i)) or [image], frames=2)
    html = anim.to_jshtml()
    plt.close(fig)
    return html


def test_matplotlib_animation_loses_only_its_cdn_font_awesome_link():
    html = _to_jshtml()
    assert any("font-awesome" in url for url in cmrlab_book.offsite_assets(html))
    cleaned = cmrlab_book.strip_cdn_font_awesome(html)
    assert cmrlab_book.offsite_assets(cleaned) == []
    assert "font-awesome" not in cleaned
    # Everything else (player script, frames, buttons) is untouched.
    assert cleaned == html.replace(html[html.index("<link"):html.index("<script")], "")
    assert cleaned.count('frames[') == html.count('frames[') >= 2
    assert 'class="fa fa-play"' in cleaned


@pytest.mark.parametrize("html, urls", [
    ('<script src="https://cdn.example.org/x.js"></script>', ["https://cdn.example.org/x.js"]),
    ("<link rel='stylesheet' href='//cdn.example.org/x.css'>", ["//cdn.example.org/x.css"]),
    ('<script src="../_static/x.js"></script><link href="a.css" rel="stylesheet">', []),
    ('<a href="https://example.org">a hyperlink is fine</a>', []),
])
def test_offsite_assets(html, urls):
    assert cmrlab_book.offsite_assets(html) == urls


def test_make_outputs_offline_strips_raw_html_and_warns_about_other_cdns(monkeypatch):
    warnings = []
    monkeypatch.setattr(cmrlab_book.logger, "warning", lambda msg, *args, **kw: warnings.append(
        (msg % args, kw["location"])))
    document = new_document("page", get_default_settings(Parser))
    animation = _to_jshtml()
    document += nodes.raw("", animation, format="html")
    plotly = '<script src="https://cdn.plot.ly/plotly.js"></script>'
    document += nodes.raw("", plotly, format="html")
    document += nodes.raw("", r"\href{https://example.org}{latex}", format="latex")
    cmrlab_book.make_outputs_offline(None, document, "book/part1/page")
    first, second, latex = document.children
    assert "font-awesome" not in first.astext() and "frames[" in first.astext()
    assert first.astext() == cmrlab_book.strip_cdn_font_awesome(animation)
    assert second.astext() == plotly
    assert latex.astext().startswith(r"\href")
    assert len(warnings) == 1
    message, location = warnings[0]
    assert "https://cdn.plot.ly/plotly.js" in message
    assert location[0] == "book/part1/page"


# --- site_checks on small hand-written sites ----------------------------------------------------

@pytest.mark.parametrize("url, offsite", [
    ("https://cdn.jsdelivr.net/x.js", True), ("http://x.org/a.css", True),
    ("//cdnjs.cloudflare.com/x.js", True), (" HTTPS://X.ORG", True),
    ("../_static/x.js", False), ("/_static/x.js", False), ("data:image/png;base64,AAA", False),
])
def test_is_offsite(url, offsite):
    assert is_offsite(url) is offsite


def test_toc_docnames_walks_every_level(tmp_path):
    toc = tmp_path / "_toc.yml"
    toc.write_text(textwrap.dedent("""\
        format: jb-book
        root: book/intro
        parts:
          - caption: One
            chapters:
              - file: book/a.ipynb
                sections:
                  - file: book/a1
                  - url: https://example.org
                    title: elsewhere
          - caption: Two
            chapters:
              - file: book/b.md
              - glob: book/more/*
        """))
    assert toc_docnames(toc) == ["book/intro", "book/a", "book/a1", "book/b"]


def test_toc_docnames_of_this_book_start_at_the_root():
    names = toc_docnames()
    assert names[0] == yaml.safe_load((REPO / "_toc.yml").read_text())["root"]
    assert len(names) == len(set(names)) >= 2


HEAD = """<html><head>
<link rel="stylesheet" href="{up}_static/theme.css?v=1" />
<link rel="canonical" href="https://example.org/page.html" />
<link rel="next" href="https://example.org/next.html" />
<script src="{up}_static/doctools.js?v=2"></script>
{extra}
</head><body>{body}</body></html>
"""
WIDGET_HEAD = "\n".join(f'<script src="{{up}}_static/{s}"></script>' for s in WIDGET_SCRIPTS)
WIDGET_BODY = ('<script type="application/vnd.jupyter.widget-state+json">{"state": {}}</script>'
               '<script type="application/vnd.jupyter.widget-view+json">{}</script>')
MATH_HEAD = f'<script defer src="{{up}}_static/{MATHJAX_SCRIPT}"></script>'
MATH_BODY = r'<span class="math notranslate nohighlight">\(x^2\)</span>'


def _page(up="", extra="", body="<p>text</p>"):
    return HEAD.format(up=up, extra=extra.replace("{up}", up), body=body)


@pytest.fixture
def site(tmp_path):
    """A minimal well-formed built site: root, a widget page, a math page, vendored files."""
    html = tmp_path / "html"
    files = {
        "_static/theme.css": "", "_static/doctools.js": "", "_static/cmrlab-widgets.js": "",
        "_static/vendor/requirejs/require.js": "",
        "_static/vendor/jupyter-widgets/embed-amd.js": "",
        f"_static/{MATHJAX_SCRIPT}": "", "_images/fig.png": "png",
        "index.html": '<meta http-equiv="Refresh" content="0; url=book/intro.html" />',
        "book/intro.html": _page("../", body='<img src="../_images/fig.png"><img src="data:x">'),
        "book/part/widgets.html": _page("../../", WIDGET_HEAD + MATH_HEAD, WIDGET_BODY + MATH_BODY),
        "book/part/math.html": _page("../../", MATH_HEAD, MATH_BODY),
    }
    for rel, text in files.items():
        (html / rel).parent.mkdir(parents=True, exist_ok=True)
        (html / rel).write_text(text)
    toc = tmp_path / "_toc.yml"
    toc.write_text("root: book/intro\nchapters:\n  - file: book/part/widgets\n"
                   "  - file: book/part/math.md\n")
    vendored = tmp_path / "VENDORED.md"
    vendored.write_text("".join(f"| `{rel}` | 0 | `{'0' * 64}` |\n" for rel in (
        "requirejs/require.js", "jupyter-widgets/embed-amd.js", "mathjax/tex-chtml-full.js")))
    return html, toc, vendored


def test_a_well_formed_site_has_no_problems(site):
    html, toc, vendored = site
    assert check_built_site(html, toc, vendored) == []


def test_unbuilt_site_and_missing_toc_page_are_reported(site, tmp_path):
    html, toc, vendored = site
    assert check_built_site(tmp_path / "nothing", toc, vendored) == [
        f"{(tmp_path / 'nothing').resolve()}: no index.html, the site has not been built"]
    (html / "book/part/math.html").unlink()
    assert check_built_site(html, toc, vendored) == [
        "book/part/math.html: listed in _toc.yml but not built"]


def test_offsite_and_missing_assets_are_reported(site):
    html, toc, vendored = site
    (html / "book/intro.html").write_text(_page("../", extra=(
        '<script src="https://cdn.jsdelivr.net/npm/x.js"></script>\n'
        '<link rel="stylesheet" href="//cdn.example.org/x.css">\n'
        '<link rel="icon" href="../_static/favicon.ico">\n'
        '<script src="../_static/gone.js?v=3"></script>\n'
        '<script src="../../outside.js"></script>'),
        body='<img src="http://example.org/a.png"><img src="../_images/missing%20fig.png">'))
    assert check_built_site(html, toc, vendored) == [
        "book/intro.html: <script> loads https://cdn.jsdelivr.net/npm/x.js from another site",
        "book/intro.html: <link> loads //cdn.example.org/x.css from another site",
        "book/intro.html: <link> ../_static/favicon.ico does not exist in the build",
        "book/intro.html: <script> ../_static/gone.js?v=3 does not exist in the build",
        "book/intro.html: <script> ../../outside.js points outside the site",
        "book/intro.html: <img> loads http://example.org/a.png from another site",
        "book/intro.html: <img> ../_images/missing%20fig.png does not exist in the build",
    ]


def test_widget_pages_must_load_the_vendored_manager_in_order(site):
    html, toc, vendored = site
    page = html / "book/part/widgets.html"
    reordered = "\n".join(f'<script src="{{up}}_static/{s}"></script>'
                          for s in reversed(WIDGET_SCRIPTS))
    page.write_text(_page("../../", reordered + MATH_HEAD, WIDGET_BODY + MATH_BODY))
    [problem] = check_built_site(html, toc, vendored)
    assert problem.startswith("book/part/widgets.html: has ipywidget state but loads "
                              "['vendor/jupyter-widgets/embed-amd.js', 'cmrlab-widgets.js', ")
    page.write_text(_page("../../", MATH_HEAD, WIDGET_BODY + MATH_BODY))
    assert "loads [] instead of" in check_page(page, html)[0]


def test_widget_cdn_thebe_and_cdn_mathjax_are_reported(site):
    html, toc, vendored = site
    page = html / "book/part/math.html"
    page.write_text(_page("../../", extra=(
        '<script>const THEBE_JS_URL = "https://unpkg.com/thebe@0.8.2/lib/index.js"</script>\n'
        '<script data-jupyter-widgets-cdn="https://cdn.jsdelivr.net/npm/" '
        'src="../../_static/vendor/jupyter-widgets/embed-amd.js"></script>'), body=MATH_BODY))
    assert check_page(page, html) == [
        "book/part/math.html: the ipywidgets manager may fetch widget code from "
        "https://cdn.jsdelivr.net/npm/",
        "book/part/math.html: carries Thebe configuration (sphinx_thebe is enabled)",
        "book/part/math.html: has math but does not load _static/vendor/mathjax/tex-chtml-full.js "
        "(mathjax_path in _config.yml)",
    ]


def test_vendored_files_must_be_in_the_build(site):
    html, toc, vendored = site
    (html / "_static/vendor/requirejs/require.js").unlink()
    (html / "_static/cmrlab-widgets.js").unlink()
    problems = check_built_site(html, toc, vendored)
    assert problems[:2] == [
        "_static/vendor/requirejs/require.js: vendored file missing from the build",
        "_static/cmrlab-widgets.js: missing from the build",
    ]
    # ...and the widget page now names scripts that do not exist.
    assert all("does not exist in the build" in p for p in problems[2:]) and len(problems) == 4


# --- the real site -----------------------------------------------------------------------------

@pytest.mark.skipif(not (BUILT / "index.html").is_file(),
                    reason="no built site in _build/html: run "
                           "`jupyter-book build . --all -W --keep-going` first")
def test_built_site_is_complete_and_self_contained():
    assert check_built_site(BUILT) == []
