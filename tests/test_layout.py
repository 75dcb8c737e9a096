"""The layout is the architecture: which package may import which (docs/ARCHITECTURE.md,
"Layout"). Read from the source, every import, at any depth in a module."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "livehub"
LOADTEST = ROOT / "tools" / "loadtest" / "livehub_loadtest"

# What each part of livehub may import of livehub (itself always).
ALLOWED = {
    "core": {"core"},
    "config": set(),
    "actors": {"core", "config"},
    "db": {"core", "config"},
    "identity": {"core", "config"},
    "node": {"core", "config", "actors", "db", "identity", "http"},
    "http": {"core", "config", "actors", "identity", "node"},
    "__main__": {"config", "core", "db", "identity", "node", "http"},
    "asgi": {"node", "http"},
}
# Third-party code each part may not import: the pure core does no I/O, the actors
# know no HTTP and no database driver.
FORBIDDEN = {
    "core": {"trio", "trio_asyncio", "asyncpg", "quart", "quart_trio", "hypercorn", "h11"},
    "actors": {"asyncpg", "trio_asyncio", "quart", "quart_trio", "hypercorn", "h11", "wsproto"},
}


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def part_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def test_every_module_belongs_to_a_known_part():
    parts = {part_of(p) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert parts == set(ALLOWED)


def test_each_part_imports_only_what_it_may():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        part = part_of(path)
        if part == "__init__":
            continue
        for name in sorted(imports(path)):
            top, _, rest = name.partition(".")
            if top == "livehub" and rest:
                target = rest.split(".")[0]
                if target != part and target not in ALLOWED[part]:
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
            elif top in FORBIDDEN.get(part, ()):
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
            elif top == "livehub_loadtest":
                wrong.append(f"{path.relative_to(ROOT)} imports the load tester")
    assert wrong == []


def test_the_load_tester_does_not_import_the_server_except_to_start_one():
    users = {
        path.name
        for path in LOADTEST.rglob("*.py")
        if any(name.split(".")[0] == "livehub" for name in imports(path))
    }
    assert users <= {"stack.py"}
