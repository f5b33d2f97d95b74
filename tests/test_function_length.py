"""No function over ~60 lines outside DAG wiring (ARCHITECTURE: split by phase).

Walks every Python file of the product (plugins, localaws, include, ogiri_local, infra,
bench, scripts) and fails on any function or method whose body spans more than
``LIMIT`` lines. DAG files (``dags/``) are wiring and exempt. A planted long function
proves the check can fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ("plugins", "localaws", "include", "ogiri_local", "infra", "bench", "scripts")
LIMIT = 60


def long_functions(source: str, path: str = "<src>") -> list[tuple[str, int, int]]:
    """(qualified name, first line, length) of every function longer than LIMIT lines."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                length = child.end_lineno - child.lineno + 1
                name = f"{prefix}{child.name}"
                if length > LIMIT:
                    found.append((name, child.lineno, length))
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(ast.parse(source, filename=path), "")
    return found


def product_files() -> list[Path]:
    files = []
    for top in CHECKED:
        files += [p for p in (ROOT / top).rglob("*.py") if ".venv" not in p.parts]
    return sorted(files)


def test_the_check_catches_a_long_function():
    body = "\n".join(f"        x{i} = {i}" for i in range(LIMIT + 5))
    planted = f"def short():\n    return 1\n\n\nclass K:\n    def long(self):\n{body}\n"
    assert long_functions(planted) == [("K.long", 6, LIMIT + 6)]


def test_no_function_is_over_the_limit():
    offenders = [
        f"{path.relative_to(ROOT)}:{line} {name} ({length} lines)"
        for path in product_files()
        for name, line, length in long_functions(path.read_text(), str(path))
    ]
    assert not offenders, f"functions over {LIMIT} lines (split by phase):\n" + "\n".join(offenders)
