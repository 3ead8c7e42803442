#!/usr/bin/env bash
# Vendor the browser assets the course website needs, so the built site works with no network.
#
# What and why (see book/_static/VENDORED.md, which this script rewrites):
#   requirejs                        AMD loader that the ipywidgets embed bundle needs
#   @jupyter-widgets/html-manager    renders saved ipywidget state in a static page
#                                    (dist/embed-amd.js + the Font Awesome 5 woff2 fonts its CSS uses)
#   mathjax (v3)                     renders $...$ math (tex-chtml-full component + its woff-v2 fonts)
#
# Packages come from the npm registry at pinned versions (`npm pack` checks each tarball against the
# registry's integrity hash). Only the files a browser actually loads are copied, unmodified.
# Usage: tools/vendor_web_assets.sh            (from anywhere; needs npm and tar)
set -euo pipefail

REQUIREJS_VERSION=2.3.8
HTML_MANAGER_VERSION=1.0.15   # matches ipywidgets 8.1.x (ipywidgets asks for html-manager ^1.0.1)
MATHJAX_VERSION=3.2.2
MATHJAX_COMPONENT=tex-chtml-full.js

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
static="$repo/book/_static"
dest="$static/vendor"
python="$repo/.venv/bin/python"; [ -x "$python" ] || python=python3

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

unpack() {  # unpack <npm spec> <dir>: npm pack the package and extract it into $work/<dir>
    local tgz
    tgz="$(cd "$work" && npm pack --silent "$1" 2>/dev/null | tail -n 1)"
    mkdir -p "$work/$2"
    tar -xzf "$work/$tgz" -C "$work/$2" --strip-components=1
}
unpack "requirejs@$REQUIREJS_VERSION" requirejs
unpack "@jupyter-widgets/html-manager@$HTML_MANAGER_VERSION" html-manager
unpack "mathjax@$MATHJAX_VERSION" mathjax

rm -rf "$dest"
mkdir -p "$dest/requirejs" "$dest/jupyter-widgets" "$dest/mathjax/output/chtml/fonts/woff-v2"

# require.js carries its MIT licence header in the file itself.
cp "$work/requirejs/require.js" "$dest/requirejs/"

# The embed bundle (base, controls, output and the manager in one file) and the Font Awesome 5
# fonts that its CSS references. Browsers take the woff2 entry of each @font-face, so the
# eot/woff/ttf/svg fallbacks are left out.
hm="$work/html-manager/dist"
cp "$hm/embed-amd.js" "$dest/jupyter-widgets/"
for font in $(grep -o '[0-9a-f]\{20\}\.woff2' "$hm/embed-amd.js" | sort -u); do
    cp "$hm/$font" "$dest/jupyter-widgets/"
done
cp "$hm/embed.js.LICENSE.txt" "$dest/jupyter-widgets/THIRD-PARTY-NOTICES.txt"
# html-manager is part of ipywidgets (BSD-3-Clause); its npm package ships no licence file,
# so take the identical text from the installed ipywidgets distribution.
"$python" - "$dest/jupyter-widgets/LICENSE" <<'PY'
import sys
from importlib.metadata import distribution
dist = distribution("ipywidgets")
lic = next(f for f in dist.files if f.name == "LICENSE")
open(sys.argv[1], "w").write(dist.locate_file(lic).read_text())
PY

mj="$work/mathjax"
cp "$mj/es5/$MATHJAX_COMPONENT" "$dest/mathjax/"
cp "$mj/es5/output/chtml/fonts/woff-v2/"*.woff "$dest/mathjax/output/chtml/fonts/woff-v2/"
cp "$mj/LICENSE" "$dest/mathjax/"

# Record what was vendored: versions, licences, exact sizes and sha256 of every file.
"$python" - "$static" "$REQUIREJS_VERSION" "$HTML_MANAGER_VERSION" "$MATHJAX_VERSION" \
    "$MATHJAX_COMPONENT" <<'PY'
import hashlib, sys
from pathlib import Path
static, rjs, hm, mj, mj_component = Path(sys.argv[1]), *sys.argv[2:]
vendor = static / "vendor"
files = sorted(p for p in vendor.rglob("*") if p.is_file())
total = sum(p.stat().st_size for p in files)
lines = [
    "# Vendored web assets",
    "",
    "Written by `tools/vendor_web_assets.sh`; do not edit by hand, re-run the script.",
    "The files are copied unmodified from the npm packages below, so that the built website",
    "works with no network (see `book/_ext/cmrlab_book.py` for how they are wired in).",
    "",
    "| npm package | version | licence | files used |",
    "|---|---|---|---|",
    f"| `requirejs` | {rjs} | MIT (header of `require.js`) | `require.js` |",
    f"| `@jupyter-widgets/html-manager` | {hm} | BSD-3-Clause (`LICENSE`); bundled third-party code: "
    "see `THIRD-PARTY-NOTICES.txt`; Font Awesome 5 Free fonts: SIL OFL 1.1 | "
    "`dist/embed-amd.js`, the three `dist/*.woff2` fonts its CSS loads |",
    f"| `mathjax` | {mj} | Apache-2.0 (`LICENSE`) | "
    f"`es5/{mj_component}`, `es5/output/chtml/fonts/woff-v2/*.woff` |",
    "",
    f"Total: {len(files)} files, {total} bytes.",
    "",
    "| file (under `book/_static/vendor/`) | bytes | sha256 |",
    "|---|---:|---|",
]
for p in files:
    digest = hashlib.sha256(p.read_bytes()).hexdigest()
    lines.append(f"| `{p.relative_to(vendor).as_posix()}` | {p.stat().st_size} | `{digest}` |")
(static / "VENDORED.md").write_text("\n".join(lines) + "\n")
print(f"vendored {len(files)} files, {total} bytes into {vendor}")
PY
