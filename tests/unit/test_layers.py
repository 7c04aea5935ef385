"""Which package may import what (issue 19): checked over the source's `import` statements,
function-level ones included (docs/architecture.md draws the layers).

- `shopstream.tools` (downloads, builds, tool venvs) is the ground floor: it imports nothing of
  shopstream.
- `shopstream.stack` (starting and watching the services) is imported only by the two
  applications that run on top of everything, the CLI and the dashboard (whose Health page shows
  the stack's service table), and by itself.
- No two packages import each other, directly or around a loop.
- The document store is reached through `shopstream.store` only: no module of the source, the
  benchmarks or the tests imports pymongo or bson, but the store package itself and its own
  tests (`tests/unit/store/`, `tests/integration/store/`: the driver's errors, the FerretDB
  layout).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = (ROOT / "src", ROOT / "bench", ROOT / "tests")
MAY_IMPORT_PYMONGO = ("src/shopstream/store/", "tests/unit/store/", "tests/integration/store/")

# What the store layer may build on: the domain's names and the settings, nothing that uses it
# (and the failpoints, a leaf importing nothing of ours).
STORE_MAY_IMPORT = {
    "shopstream.store", "shopstream.domain", "shopstream.config", "shopstream.failpoints"
}  # fmt: skip


def imports(path: Path) -> set[str]:
    """Every module `path` imports, at any depth of its code (function-level imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules() -> dict[str, set[str]]:
    return {
        str(path.relative_to(ROOT)): imports(path)
        for source in SOURCES
        for path in sorted(source.rglob("*.py"))
    }


def test_only_the_store_layer_and_its_own_tests_import_pymongo() -> None:
    importing = {
        name
        for name, found in modules().items()
        if any(m.split(".")[0] in {"pymongo", "bson", "gridfs"} for m in found)
        and not name.startswith(MAY_IMPORT_PYMONGO)
    }
    assert importing == set(), "go through shopstream.store's Protocols instead"


def test_the_store_layer_builds_on_nothing_that_uses_it() -> None:
    for name, found in modules().items():
        if not name.startswith("src/shopstream/store/"):
            continue
        ours = {m for m in found if m.split(".")[0] == "shopstream"}
        wrong = {m for m in ours if not any(m.startswith(ok) for ok in STORE_MAY_IMPORT)}
        assert wrong == set(), f"{name} imports {sorted(wrong)}"


def package_of(module: str) -> str | None:
    """`shopstream.x` for any `shopstream.x...` module (None outside shopstream)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "shopstream" and len(parts) > 1 else None


def package_edges() -> dict[str, set[str]]:
    """Which shopstream package imports which other ones (src only)."""
    edges: dict[str, set[str]] = {}
    for name, found in modules().items():
        if not name.startswith("src/shopstream/"):
            continue
        parts = Path(name).with_suffix("").parts[1:]
        here = ".".join(parts[:2]) if len(parts) > 2 else ".".join(parts)
        here = here.removesuffix(".__init__")
        for module in found:
            there = package_of(module)
            if there is not None and there != here:
                edges.setdefault(here, set()).add(there)
    return edges


def test_tools_are_the_ground_floor() -> None:
    assert package_edges().get("shopstream.tools", set()) == set()


def test_only_the_applications_and_the_stack_itself_import_the_stack() -> None:
    importers = {p for p, to in package_edges().items() if "shopstream.stack" in to}
    assert importers <= {"shopstream.cli", "shopstream.dashboard"}


def test_no_two_packages_import_each_other_even_around_a_loop() -> None:
    edges = package_edges()

    def reaches(start: str, goal: str) -> list[str] | None:
        stack, seen = [(start, [start])], {start}
        while stack:
            node, path = stack.pop()
            for nxt in sorted(edges.get(node, ())):
                if nxt == goal:
                    return [*path, nxt]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
        return None

    loops = [loop for p in edges if (loop := reaches(p, p))]
    assert loops == [], " ; ".join(" -> ".join(loop) for loop in loops)


def test_the_checker_sees_function_level_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import os\n\ndef f():\n    from pymongo import errors\n    import bson.json_util\n"
    )
    assert imports(module) == {"os", "pymongo", "bson.json_util"}


def test_module_names_are_unique_but_the_two_applications_entry_points() -> None:
    """A name says what a module is without its folder (`serving.py` twice told nothing)."""
    seen: dict[str, list[str]] = {}
    for path in sorted((ROOT / "src").rglob("*.py")):
        seen.setdefault(path.name, []).append(str(path.relative_to(ROOT)))
    twice = {n: p for n, p in seen.items() if len(p) > 1 and n not in {"__init__.py", "app.py"}}
    assert twice == {}


def test_a_function_level_import_says_why_it_is_not_at_the_top() -> None:
    """Imports belong at the top; one inside a function is a measured start-up saving (or
    must resolve where the function runs) and the comment above it says so (issue 19)."""
    silent = []
    for path in sorted((ROOT / "src").rglob("*.py")):
        lines = path.read_text().splitlines()
        for fn in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if not isinstance(node, (ast.Import, ast.ImportFrom)):
                    continue
                above = node.lineno - 2
                while above >= 0 and (
                    not lines[above].strip()
                    or lines[above].strip().startswith(("import ", "from "))
                ):
                    above -= 1  # a block of imports (in groups) shares one comment
                if above < 0 or not lines[above].strip().startswith("#"):
                    silent.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert silent == []
