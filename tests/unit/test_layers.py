"""The import graph of the package matches docs/internals.md's layer table: no module imports
a module of a higher layer (function-level imports included), and every module has a layer."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "pyscan"
DOC = ROOT / "docs" / "internals.md"


def documented_layers() -> dict[str, int]:
    """{module prefix: layer} from the table under '## Layers' in docs/internals.md."""
    text = DOC.read_text()
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    layers: dict[str, int] = {}
    for row in re.finditer(r"^\| (\d+) \| ([^|]+) \|", section, flags=re.M):
        for name in re.findall(r"`([\w.]+)`", row.group(2)):
            layers[name] = int(row.group(1))
    return layers


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """pyscan modules ``path`` imports anywhere in the file; ``from pyscan import x`` counts
    as importing ``pyscan.x``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("pyscan"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.startswith("pyscan"):
            if node.module == "pyscan":
                found.update(f"pyscan.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
    return found


def layer_of(module: str, layers: dict[str, int]) -> int | None:
    """The layer of the longest documented prefix of ``module`` (None when undocumented)."""
    candidates = [name for name in layers if module == name or module.startswith(name + ".")]
    return layers[max(candidates, key=len)] if candidates else None


def test_the_table_is_found_and_plausible() -> None:
    layers = documented_layers()
    # The parse must see the whole table, or the import check below would check nothing.
    assert layers["pyscan._native"] == 0 and layers["pyscan.native"] == 1
    assert layers["pyscan.cli"] == max(layers.values())
    assert len(layers) >= 20


def test_every_module_has_a_layer() -> None:
    layers = documented_layers()
    unplaced = sorted(module_name(path) for path in PACKAGE.rglob("*.py")
                      if layer_of(module_name(path), layers) is None)
    assert unplaced == [], "add these to the layer table in docs/internals.md"


def test_no_module_imports_upwards() -> None:
    layers = documented_layers()
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = module_name(path)
        own = layer_of(importer, layers)
        for imported in sorted(imported_modules(path)):
            target = layer_of(imported, layers)
            if own is not None and target is not None and target > own:
                upward.append(f"{importer} (layer {own}) imports {imported} (layer {target})")
    assert upward == []


@pytest.mark.parametrize("module, forbidden", [
    ("pyscan.cli", "pyscan._native"),
    ("pyscan.scanner", "pyscan._native"),
    ("pyscan.drivers", "pyscan._native"),
])
def test_only_the_native_package_reaches_the_compiled_lib(module: str, forbidden: str) -> None:
    paths = [p for p in PACKAGE.rglob("*.py") if module_name(p).startswith(module)]
    assert paths
    assert all(forbidden not in imported_modules(p) for p in paths)
