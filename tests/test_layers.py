"""The layer rule (docs/architecture.md): lgt/ is pure, lgt/engines/ is a leaf, schemas/ imports nothing of ours."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"lgt", "lgt_assets", "resources", "schemas", "definitions"}
ALLOWED = {  # package -> our packages it may import
    "lgt": {"lgt", "schemas"},
    "schemas": {"schemas"},
    "resources": {"resources", "lgt", "schemas"},
    "lgt_assets": {"lgt_assets", "lgt", "resources", "schemas"},
}


def modules(path: Path) -> set[str]:
    """Every module a file imports, dotted (`lgt.engines.types`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def imports(path: Path) -> set[str]:
    return {m.split(".")[0] for m in modules(path)}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_layer_rule(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no modules"
    for f in files:
        found = imports(f)
        if package == "lgt":
            assert not {n for n in found if n.startswith("dagster")}, f"{f.relative_to(ROOT)} imports dagster"
        bad = (found & OURS) - ALLOWED[package]
        assert not bad, f"{f.relative_to(ROOT)} imports {sorted(bad)}"


def test_engines_are_a_leaf_library():
    files = sorted((ROOT / "lgt" / "engines").rglob("*.py"))
    assert files
    for f in files:
        bad = {m for m in modules(f) if m.split(".")[0] in OURS and not m.startswith("lgt.engines")}
        assert not bad, f"{f.relative_to(ROOT)} imports {sorted(bad)}: lgt/engines/ may import only itself"


def test_rule_catches_a_dagster_import(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import os\nfrom dagster import asset\n")
    assert "dagster" in imports(f)
