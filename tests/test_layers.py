"""The layer rule of DESIGN.md: lgt/ is pure logic, schemas/ imports nothing of ours."""

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


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


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


def test_rule_catches_a_dagster_import(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import os\nfrom dagster import asset\n")
    assert "dagster" in imports(f)
