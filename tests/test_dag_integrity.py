"""Tier 1: every DAG file imports cleanly, fast, and follows the house rules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DAG_FILES = sorted((REPO / "dags").glob("*.py"))
#: Never imported by a DAG file itself (module level).
HEAVY = {"torch", "torchvision", "sagemaker", "pandas", "boto3", "botocore", "PIL", "numpy", "localaws"}
#: Never loaded while parsing, even indirectly. boto3/botocore are absent here on purpose: the Amazon
#: provider's operator modules import them, and using the provider's operators is the point.
HEAVY_AT_PARSE = HEAVY - {"boto3", "botocore"}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_there_are_dags():
    assert DAG_FILES, "dags/ has no DAG files"


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_dag_id_equals_file_name(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert Path(dag.fileloc).stem == dag_id


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_every_file_defines_its_dag(dagbag, path):
    assert path.stem in dagbag.dags, f"{path.name} does not define a DAG named {path.stem}"


def test_owner_retries_tags_docs(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md and dag.doc_md.strip(), f"{dag_id} has no doc_md"
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id} has the default owner"
            assert task.retries >= 1 or getattr(task, "is_teardown", False) or task.task_id.startswith(
                ("decide_", "choose_")
            ), f"{dag_id}.{task.task_id} has no retries"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_no_heavy_or_aws_imports_at_module_level(path):
    tree = ast.parse(path.read_text())
    for node in tree.body:  # module level only; imports inside tasks are fine
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            assert name.split(".")[0] not in HEAVY, f"{path.name} imports {name} at module level"
            assert not name.startswith("airflow.operators."), f"{path.name}: Airflow 2 import {name}"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_no_airflow2_idioms(path):
    text = path.read_text()
    for idiom in ("schedule_interval", "execution_date", "Variable.get(", "airflow.models.dagbag"):
        assert idiom not in text, f"{path.name} uses {idiom}"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_parsing_loads_no_heavy_module(path):
    """Parsing a DAG file in a fresh interpreter must not pull in torch, boto3, sagemaker or PIL."""
    code = (
        "import sys, runpy; sys.path[:0] = ['plugins', '.']; "
        f"runpy.run_path({str(path)!r}); "
        f"print(sorted(m for m in {sorted(HEAVY_AT_PARSE)!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr
