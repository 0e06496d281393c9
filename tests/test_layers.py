"""The layer rule (docs/architecture.md): lgt/ is pure, lgt/engines/ is a leaf, schemas/ imports nothing of ours;
inside lgt/ nothing imports a layer above its own, and no module of ours imports itself through others."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"lgt", "lgt_assets", "resources", "schemas", "definitions", "oracle"}
ALLOWED = {  # package -> our packages it may import
    "lgt": {"lgt", "schemas"},
    "schemas": {"schemas"},
    "resources": {"resources", "lgt", "schemas"},
    "lgt_assets": {"lgt_assets", "lgt", "resources", "schemas"},
    "oracle": {"oracle", "lgt"},  # the tests' and benchmarks' independent checks: never imported by the product
}


LGT_LAYERS = (  # lower first: a module imports its own layer and those below, never one above
    ("engines",),  # the inference library, a leaf
    ("settings", "paths", "partitions", "ids", "language", "results", "prompts", "plots", "storage", "roles")
    + ("base_model", "answers", "preview"),  # what every stage shares
    ("images",),
    ("questions",),
    ("traces",),
    ("datasets",),
    ("training",),
    ("evaluation",),
    ("recipe",),  # assembles every package's settings into the recipe
)


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(path: Path, root: Path = ROOT) -> set[str]:
    """Every module a file imports, dotted (`lgt.engines.types`), anywhere in it (inside functions too); a relative
    import is resolved against the file's package; `from pkg import name` yields `pkg.name` (a submodule, or a name
    that `import_graph` maps to the module defining it)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    me = module_name(path, root) if path.is_relative_to(root) else path.stem
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            names |= {f"{base}.{a.name}" for a in node.names}  # a submodule, or a name its module defines
    return names


def our_modules() -> dict[str, Path]:
    files = [ROOT / "definitions.py", *(f for pkg in ALLOWED for f in (ROOT / pkg).rglob("*.py"))]
    return {module_name(f): f for f in files}


def import_graph(files: dict[str, Path], root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the modules of ours it imports (a name that is not a module maps to the module defining it)."""

    def owner(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    return {m: {o for n in modules(f, root) if (o := owner(n)) and o != m} for m, f in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (its modules in order, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return path[path.index(n) :] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        state[m] = 2
        path.pop()
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def lgt_layer(module: str) -> int:
    top = module.split(".")[1]
    for i, names in enumerate(LGT_LAYERS):
        if top in names:
            return i
    raise AssertionError(f"{module} is in no layer of LGT_LAYERS: add it to tests/test_layers.py")


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


def test_no_import_cycles():
    cycle = find_cycle(import_graph(our_modules()))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_upward_imports_in_lgt():
    graph = import_graph(our_modules())
    for m, targets in sorted(graph.items()):
        if not m.startswith("lgt."):
            continue
        up = sorted(t for t in targets if t.startswith("lgt.") and lgt_layer(t) > lgt_layer(m))
        assert not up, f"{m} imports {up}, a layer above its own (LGT_LAYERS)"


def test_cycle_finder_catches_a_cycle_through_a_function_level_import(tmp_path):
    assert find_cycle({"lgt.a": {"lgt.b"}, "lgt.b": {"lgt.c"}, "lgt.c": {"lgt.a"}, "lgt.d": {"lgt.a"}}) == [
        "lgt.a",
        "lgt.b",
        "lgt.c",
        "lgt.a",
    ]
    assert find_cycle({"lgt.a": {"lgt.b"}, "lgt.b": set()}) is None
    # the kind of loop the old recipe -> sources -> coco -> storage -> recipe chain hid in a function-level import
    (tmp_path / "lgt").mkdir()
    (tmp_path / "lgt" / "a.py").write_text("from lgt.b import x\n")
    (tmp_path / "lgt" / "b.py").write_text("def x():\n    from . import a\n")
    files = {f"lgt.{f.stem}": f for f in (tmp_path / "lgt").glob("*.py")}
    assert find_cycle(import_graph(files, tmp_path)) == ["lgt.a", "lgt.b", "lgt.a"]


def test_benchmarks_and_tests_do_not_import_each_other():
    """What both need (the gold checker, the COCO fixture) lives in oracle/; a benchmark's own tests live beside it."""
    for folder, other in (("benchmarks", "tests"), ("tests", "benchmarks")):
        # an import, a sys.path entry or a file path into the other folder: "tests" / ..., "benchmarks/x.py"
        pattern = re.compile(rf"^\s*(from|import)\s+{other}\b|[\"']{other}(/[^\"'\s]*)?[\"']", re.M)
        files = [f for f in (ROOT / folder).rglob("*.py") if f.resolve() != Path(__file__).resolve()]
        found = sorted(str(f.relative_to(ROOT)) for f in files if pattern.search(f.read_text()))
        assert not found, f"{folder}/ reads {other}/: {found}"
