"""The layering rule of docs/architecture.md, checked on every import statement (module level and
inside functions), so it stays true:

* the core (``plugins/ogiri/*.py``) imports no pipeline package;
* a pipeline package (``ogiri.ingest``, ``ogiri.train``, ``ogiri.batch``, …) imports the core and
  itself, never a sibling pipeline;
* the reader package ``ogiri.ui`` (the plugin pages) may import the core and any pipeline (to read
  their outputs with their own layout helpers); nothing imports it but the plugin entry modules
  ``plugins/*.py``;
* DAG files import the product (``ogiri``) and Airflow, never the emulator, the local-mode glue or
  the model code;
* the product never imports the emulator or the local-mode glue;
* the code SageMaker runs (``include/training``) imports neither Airflow nor the product nor the
  emulator;
* the emulator does not import the product or Airflow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PLUGINS = REPO / "plugins" / "ogiri"
#: Packages under plugins/ogiri that read every pipeline's outputs (the UI); no pipeline imports them.
READERS = frozenset({"ui"})
PIPELINES = sorted(p.name for p in PLUGINS.iterdir() if p.is_dir() and (p / "__init__.py").exists())


def imported_modules(path: Path) -> set[str]:
    """Every absolute module name ``path`` imports, anywhere in the file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _top(name: str, depth: int = 1) -> str:
    return ".".join(name.split(".")[:depth])


def owner_of(path: Path) -> str:
    """``core``, a pipeline name, or the top-level area of ``path``."""
    rel = path.relative_to(REPO)
    if rel.parts[:2] == ("plugins", "ogiri"):
        return rel.parts[2] if len(rel.parts) > 3 else "core"
    return rel.parts[0]


def _files(*roots: str) -> list[Path]:
    return sorted(p for root in roots for p in (REPO / root).rglob("*.py"))


def violations() -> list[str]:
    """Every import that breaks the rule, as ``file: module (why)``."""
    found = []
    forbidden_for_area = {
        "dags": ("localaws", "ogiri_local", "ogiri_captioner"),
        "include": ("airflow", "ogiri", "localaws", "ogiri_local"),
        "localaws": ("ogiri", "airflow"),
    }
    for path in _files("plugins", "dags", "include", "localaws"):
        owner = owner_of(path)
        for module in imported_modules(path):
            rel = path.relative_to(REPO)
            if owner in forbidden_for_area and _top(module) in forbidden_for_area[owner]:
                found.append(f"{rel}: {module} ({owner} may not import {_top(module)})")
            if rel.parts[0] == "plugins" and _top(module) in {"localaws", "ogiri_local"}:
                found.append(f"{rel}: {module} (the product never imports the emulator or local glue)")
            if _top(module) == "ogiri" and module.count(".") >= 1:
                target = module.split(".")[1]
                reader_ok = owner in READERS or (owner == "plugins" and target in READERS)
                if target in PIPELINES and owner not in {target, "dags"} and rel.parts[0] == "plugins" and not reader_ok:
                    kind = "the core" if owner == "core" else f"pipeline {owner}"
                    found.append(f"{rel}: {module} ({kind} may not import pipeline {target})")
    return sorted(set(found))


def test_the_layout_has_the_pipelines_named_after_their_dags():
    dags = {p.stem.removeprefix("ogiri_") for p in (REPO / "dags").glob("ogiri_*.py")}
    assert {"ingest", "train"} <= set(PIPELINES)
    assert "batch" in PIPELINES and "batch_caption" in dags  # ogiri_batch_caption → ogiri.batch


def test_imports_follow_the_layering_rule():
    assert violations() == []


@pytest.mark.parametrize(
    ("source", "where", "expected"),
    [
        ("from ogiri.train import steps\n", "plugins/ogiri/ingest/x.py", "pipeline ingest may not import pipeline train"),
        ("from ogiri.ingest.assets import a\n", "plugins/ogiri/x.py", "the core may not import pipeline ingest"),
        ("import localaws\n", "plugins/ogiri/x.py", "never imports the emulator"),
        ("def f():\n    import airflow\n", "include/training/x.py", "include may not import airflow"),
        ("from ogiri.ui import app\n", "plugins/ogiri/train/x.py", "pipeline train may not import pipeline ui"),
        ("from ogiri.ui.data import Reader\n", "plugins/ogiri/x.py", "the core may not import pipeline ui"),
        ("from ogiri.train import gate\n", "plugins/other_plugin.py", "plugins may not import pipeline train"),
    ],
)
def test_the_check_catches_each_kind_of_violation(tmp_path, monkeypatch, source, where, expected):
    """The checker itself: a planted import of each forbidden kind is reported."""
    fake = tmp_path / where
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_text(source)
    (tmp_path / "plugins" / "ogiri").mkdir(parents=True, exist_ok=True)
    _fake_layout(tmp_path, monkeypatch)
    assert any(expected in v for v in violations()), violations()


def _fake_layout(tmp_path, monkeypatch):
    for name in ("ingest", "train", "ui"):
        (tmp_path / "plugins" / "ogiri" / name).mkdir(parents=True, exist_ok=True)
        (tmp_path / "plugins" / "ogiri" / name / "__init__.py").write_text("")
    for area in ("dags", "include", "localaws"):
        (tmp_path / area).mkdir(exist_ok=True)
    monkeypatch.setitem(globals(), "REPO", tmp_path)
    monkeypatch.setitem(globals(), "PIPELINES", ["ingest", "train", "ui"])


@pytest.mark.parametrize(
    ("source", "where"),
    [
        ("from ogiri.train.gate import CIDER_KEYS\nfrom ogiri.ingest import plan\n", "plugins/ogiri/ui/x.py"),
        ("from ogiri.ui.app import create_app\n", "plugins/ogiri_ui_plugin.py"),
    ],
)
def test_the_reader_package_may_read_every_pipeline(tmp_path, monkeypatch, source, where):
    """The UI reads several pipelines' outputs; only the plugin entry module imports the UI."""
    fake = tmp_path / where
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_text(source)
    _fake_layout(tmp_path, monkeypatch)
    assert violations() == []
