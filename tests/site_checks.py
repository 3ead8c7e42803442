"""Checks that a built course website is complete and works with no network.

``check_built_site(html_dir)`` reads the HTML that ``jupyter-book build`` wrote and returns a list
of problems (an empty list means the site is fine). It checks that

* every page named in ``_toc.yml`` was built;
* no page loads a script, stylesheet, font, icon or image from another site (``http:``,
  ``https:`` or protocol-relative ``//`` URLs), and the ipywidgets manager is not told to fetch
  widget code from a CDN (``data-jupyter-widgets-cdn``);
* every local file that a ``<script src>``, ``<link href>`` or ``<img src>`` names exists in the
  build;
* the vendored browser code listed in ``book/_static/VENDORED.md`` is in the build, pages with
  saved widget state load the vendored require.js, ``cmrlab-widgets.js`` and ipywidgets embed
  manager in that order, pages with math load the vendored MathJax, and no page still carries
  Thebe's configuration (which breaks every page: ``const THEBE_JS_URL`` declared twice).

``check_vendored_files(vendor_dir)`` compares ``book/_static/vendor`` with the sizes and SHA-256
digests recorded in ``VENDORED.md`` (written by ``tools/vendor_web_assets.sh``).

Only the standard library and PyYAML are used, so the checks run wherever the tests run.
"""
from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml

REPO = Path(__file__).resolve().parents[1]
TOC = REPO / "_toc.yml"
STATIC = REPO / "book" / "_static"
VENDORED_MD = STATIC / "VENDORED.md"

#: Scripts a page with saved ipywidget state must load, in this order (paths under ``_static``).
WIDGET_SCRIPTS = (
    "vendor/requirejs/require.js",
    "cmrlab-widgets.js",
    "vendor/jupyter-widgets/embed-amd.js",
)
#: The MathJax component that pages with math must load (path under ``_static``).
MATHJAX_SCRIPT = "vendor/mathjax/tex-chtml-full.js"
#: ``<link rel=...>`` values that make the browser fetch the target (others, such as ``next`` or
#: ``canonical``, are plain hyperlinks).
FETCHED_LINK_RELS = {"stylesheet", "preload", "modulepreload", "prefetch", "icon",
                     "apple-touch-icon", "manifest"}
WIDGET_STATE_TYPE = "application/vnd.jupyter.widget-state+json"

_VENDORED_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*(\d+)\s*\|\s*`([0-9a-f]{64})`\s*\|\s*$")
_SOURCE_SUFFIXES = (".ipynb", ".md", ".rst")


def is_offsite(url: str) -> bool:
    """True for URLs that point to another site: ``http:``, ``https:`` or ``//host/...``."""
    url = url.strip().lower()
    return url.startswith(("http:", "https:", "//"))


def toc_docnames(toc_path: Path = TOC) -> list[str]:
    """Return the document names in a Jupyter Book ``_toc.yml`` (``root`` and every ``file``).

    Works for any nesting (parts, chapters, sections, subtrees); ``url`` and ``glob`` entries
    name no single page and are skipped. A source suffix (``.ipynb``, ``.md``) is dropped, so the
    page is ``<docname>.html`` in the build.
    """
    names: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key in ("root", "file"):
                if isinstance(node.get(key), str):
                    names.append(node[key])
            for value in node.values():
                if isinstance(value, (dict, list)):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load(Path(toc_path).read_text(encoding="utf-8")))
    stripped = []
    for name in names:
        for suffix in _SOURCE_SUFFIXES:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
        stripped.append(name)
    return list(dict.fromkeys(stripped))


def vendored_files(vendored_md: Path = VENDORED_MD) -> dict[str, tuple[int, str]]:
    """Return ``{path under vendor/: (bytes, sha256)}`` from the table in ``VENDORED.md``."""
    files = {}
    for line in Path(vendored_md).read_text(encoding="utf-8").splitlines():
        match = _VENDORED_ROW.match(line)
        if match:
            files[match.group(1)] = (int(match.group(2)), match.group(3))
    return files


def check_vendored_files(vendor_dir: Path = STATIC / "vendor",
                         vendored_md: Path = VENDORED_MD) -> list[str]:
    """Compare the files under ``vendor_dir`` with the sizes and digests in ``vendored_md``."""
    vendor_dir = Path(vendor_dir)
    expected = vendored_files(vendored_md)
    if not expected:
        return [f"{vendored_md}: lists no vendored files"]
    problems = []
    for rel, (size, digest) in expected.items():
        path = vendor_dir / rel
        if not path.is_file():
            problems.append(f"{path}: listed in {Path(vendored_md).name} but missing")
            continue
        data = path.read_bytes()
        if len(data) != size or hashlib.sha256(data).hexdigest() != digest:
            problems.append(f"{path}: differs from {Path(vendored_md).name} ({len(data)} bytes, "
                            f"expected {size}); re-run tools/vendor_web_assets.sh")
    present = {p.relative_to(vendor_dir).as_posix() for p in vendor_dir.rglob("*") if p.is_file()}
    for rel in sorted(present - set(expected)):
        problems.append(f"{vendor_dir / rel}: not listed in {Path(vendored_md).name}")
    return problems


class _PageScan(HTMLParser):
    """Collect what a page fetches: script/link/img URLs, widget state, math, Thebe leftovers."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.assets: list[tuple[str, str]] = []        # (tag, url) the browser fetches
        self.scripts: list[str] = []                   # <script src> in document order
        self.widget_cdns: list[str] = []               # data-jupyter-widgets-cdn values
        self.has_widget_state = False
        self.has_math = False
        self.has_thebe = False
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "script":
            self._in_script = True
            if a.get("type") == WIDGET_STATE_TYPE:
                self.has_widget_state = True
            if a.get("type") == "text/x-thebe-config":
                self.has_thebe = True
            if "data-jupyter-widgets-cdn" in a:
                self.widget_cdns.append(a["data-jupyter-widgets-cdn"])
            if a.get("src"):
                self.scripts.append(a["src"])
                self.assets.append(("script", a["src"]))
        elif tag == "link" and a.get("href"):
            rels = set(a.get("rel", "").lower().split())
            if rels & FETCHED_LINK_RELS:
                self.assets.append(("link", a["href"]))
        elif tag == "img" and a.get("src"):
            self.assets.append(("img", a["src"]))
        if "math" in a.get("class", "").split():
            self.has_math = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and "THEBE_JS_URL" in data:
            self.has_thebe = True


def _local_target(page: Path, url: str) -> Path | None:
    """The file a page-relative URL points to, or None for URLs that fetch no local file."""
    parts = urlsplit(url)
    if parts.scheme or not parts.path:  # data:, blob:, javascript:, mailto:, or a bare #anchor
        return None
    path = unquote(parts.path)
    return (page.parent / path).resolve()


def _static_path(page: Path, html_dir: Path, url: str) -> str | None:
    """The path under ``_static/`` that a local URL on ``page`` names, else None."""
    target = _local_target(page, url)
    static = (html_dir / "_static").resolve()
    if target is None or not target.is_relative_to(static):
        return None
    return target.relative_to(static).as_posix()


def check_page(page: Path, html_dir: Path) -> list[str]:
    """Return the problems of one built HTML page (see the module docstring)."""
    html_dir = Path(html_dir).resolve()
    page = Path(page).resolve()
    rel = page.relative_to(html_dir).as_posix()
    scan = _PageScan()
    scan.feed(page.read_text(encoding="utf-8", errors="replace"))
    problems = []
    for tag, url in scan.assets:
        if is_offsite(url):
            problems.append(f"{rel}: <{tag}> loads {url} from another site")
            continue
        target = _local_target(page, url)
        if target is None:
            continue
        if not target.is_relative_to(html_dir):
            problems.append(f"{rel}: <{tag}> {url} points outside the site")
        elif not target.is_file():
            problems.append(f"{rel}: <{tag}> {url} does not exist in the build")
    for cdn in scan.widget_cdns:
        if is_offsite(cdn):
            problems.append(f"{rel}: the ipywidgets manager may fetch widget code from {cdn}")
    if scan.has_thebe:
        problems.append(f"{rel}: carries Thebe configuration (sphinx_thebe is enabled)")
    static_scripts = [_static_path(page, html_dir, src) for src in scan.scripts]
    if scan.has_widget_state:
        loaded = [s for s in static_scripts if s in WIDGET_SCRIPTS]
        if loaded != list(WIDGET_SCRIPTS):
            problems.append(f"{rel}: has ipywidget state but loads {loaded} instead of "
                            f"{list(WIDGET_SCRIPTS)} (nb_ipywidgets_js in _config.yml)")
    if scan.has_math and MATHJAX_SCRIPT not in static_scripts:
        problems.append(f"{rel}: has math but does not load _static/{MATHJAX_SCRIPT} "
                        "(mathjax_path in _config.yml)")
    return problems


def check_built_site(html_dir: str | Path, toc_path: str | Path = TOC,
                     vendored_md: str | Path = VENDORED_MD) -> list[str]:
    """Return every problem found in the website built at ``html_dir`` (empty list: all good).

    ``toc_path`` is the ``_toc.yml`` the site was built from and ``vendored_md`` the list of
    vendored files; both default to the ones in this repository.
    """
    html_dir = Path(html_dir).resolve()
    if not (html_dir / "index.html").is_file():
        return [f"{html_dir}: no index.html, the site has not been built"]
    problems = []
    for name in toc_docnames(Path(toc_path)):
        if not (html_dir / f"{name}.html").is_file():
            problems.append(f"{name}.html: listed in _toc.yml but not built")
    static = html_dir / "_static"
    vendored = list(vendored_files(Path(vendored_md)))
    missing = [rel for rel in vendored if not (static / "vendor" / rel).is_file()]
    if vendored and len(missing) == len(vendored):
        problems.append("_static/vendor: none of the vendored files is in the build "
                        "(html_static_path in _config.yml)")
    else:
        problems.extend(f"_static/vendor/{rel}: vendored file missing from the build"
                        for rel in missing)
    if not (static / "cmrlab-widgets.js").is_file():
        problems.append("_static/cmrlab-widgets.js: missing from the build")
    for page in sorted(html_dir.rglob("*.html")):
        if page.resolve().is_relative_to(static.resolve()):
            continue  # theme templates (e.g. webpack-macros.html), not pages
        problems.extend(check_page(page, html_dir))
    return problems
