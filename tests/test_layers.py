"""cmrlab's layers import downward only (DESIGN §3): a lower layer never imports a higher one."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cmrlab"

#: Layer of each top-level part of cmrlab, lowest first.
LAYERS = {
    "errors": 0, "checks": 0, "files": 0, "config": 1, "viz": 2, "physics": 3, "phantoms": 4, "data": 5, "nn": 6,
    "train": 7, "explain": 8, "cli": 9, "labs": 9, "notebooks": 9, "__main__": 9,
}


def _part(module: str) -> str:
    return module.split(".")[1]


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names if node.module == "cmrlab")


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES])
def test_imports_point_downward(path):
    rel = path.relative_to(PACKAGE)
    own = rel.parts[0].removesuffix(".py")
    assert own in LAYERS, f"{rel}: add its layer to LAYERS (and to DESIGN §3)"
    for name in _imports(path):
        if name.startswith("cmrlab.") and _part(name) in LAYERS:
            other = _part(name)
            assert LAYERS[other] <= LAYERS[own], f"{rel} imports {name}: {own} is below {other}"
