"""The module structure the engines keep: no import circle, no recorder classes in engines."""

import ast
import pathlib

ENGINES = pathlib.Path(__file__).resolve().parents[1] / "eventsim" / "engines"


def _imports(path):
    """Every module a file imports (relative imports resolved within eventsim), at any depth."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = ["eventsim", "engines"][: 3 - node.level] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_engines_never_import_the_recorders():
    for path in ENGINES.glob("*.py"):
        assert not any(m.startswith("eventsim.record") for m in _imports(path)), path.name


def test_no_import_circle_between_the_clock_plan_and_its_cuda_backend():
    cuda = _imports(ENGINES / "clock_cuda.py")
    assert not any(m.startswith("eventsim.engines.plan") for m in cuda), sorted(cuda)
    assert "eventsim.engines.clock_cuda" in _imports(ENGINES / "plan.py")  # (the one direction)


def test_the_import_scan_sees_relative_imports():
    imports = _imports(ENGINES / "plan.py")
    assert "eventsim.config" in imports and "eventsim.engines.clock_cpu" in imports


def test_test_files_have_distinct_basenames():
    """pytest imports test modules by basename (no packages under tests/): a second test_x.py in a
    subfolder stops the whole suite at collection."""
    tests = pathlib.Path(__file__).resolve().parent
    seen = {}
    for path in sorted(tests.rglob("test_*.py")):
        assert path.name not in seen, f"{path.relative_to(tests)} and {seen[path.name].relative_to(tests)}"
        seen[path.name] = path
    assert len(seen) > 20
