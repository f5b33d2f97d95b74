"""Fixtures for the ingestion pipeline tests: a synthetic image site on 127.0.0.1, and an
emulated account with the bucket, table and a SQLite ledger wired through ``OGIRI_*`` settings."""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ingest_dag_env import BUCKET, DAG_FILE, TABLE

from ogiri_captioner.synthetic import random_scene, render
from ogiri_local.image_server import ImageServer


@dataclass
class Site:
    """Images served at ``base_url``; ``images[i] = (path, captions)``."""

    server: ImageServer
    root: Path
    images: list[tuple[str, list[str]]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def url(self, i: int) -> str:
        return f"{self.base_url}/{self.images[i][0]}"


def write_site(root: Path, n: int, seed: int = 0) -> list[tuple[str, list[str]]]:
    """``n`` distinct synthetic scenes (coloured shapes) as JPEG and some PNG files under ``root``."""
    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < n:
        scene = random_scene(rng)
        img = render(scene, rng, size=rng.choice((64, 96, 128)))
        fmt = "PNG" if len(out) % 5 == 4 else "JPEG"
        buf = io.BytesIO()
        img.save(buf, format=fmt)
        data = buf.getvalue()
        if data in seen:
            continue
        seen.add(data)
        name = f"img/{len(out):04d}.{fmt.lower().replace('jpeg', 'jpg')}"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
        out.append((name, scene.captions()))
    return out


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """40 synthetic images over HTTP on 127.0.0.1 (session-wide)."""
    root = tmp_path_factory.mktemp("site")
    images = write_site(root, 40)
    (root / "page.html").write_text("<html><body>not an image</body></html>")
    (root / "truncated.jpg").write_bytes((root / images[0][0]).read_bytes()[:200])
    with ImageServer(root) as server:
        yield Site(server, root, images)


@dataclass
class Account:
    """The emulated account, with clients built by the provider hooks."""

    emulator: object
    clients: object
    bucket: str = BUCKET
    table: str = TABLE
    ledger_path: Path | None = None

    producer: object = None  #: the producer principal's S3 client (lands CSVs) where the stack is deployed

    def put_csv(self, key: str, text: str | bytes) -> None:
        body = text.encode("utf-8") if isinstance(text, str) else text
        (self.producer or self.clients.s3).put_object(Bucket=self.bucket, Key=key, Body=body)

    def items(self) -> list[dict]:
        """Every table item (typed), sorted by key."""
        items, kwargs = [], {"TableName": self.table, "ConsistentRead": True}
        while True:
            page = self.clients.dynamodb.scan(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted(items, key=lambda i: (i["ImageKey"]["S"], i["CaptionId"]["S"]))

    def objects(self, prefix: str = "") -> dict[str, tuple[str, int, str]]:
        """``key -> (ETag, size, LastModified)`` for every object under ``prefix``."""
        out = {}
        for page in self.clients.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            for o in page.get("Contents", []):
                out[o["Key"]] = (o["ETag"], o["Size"], o["LastModified"].isoformat())
        return out

    def read_jsonl(self, key: str) -> list[dict]:
        body = self.clients.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode("utf-8")
        return [json.loads(line) for line in body.split("\n") if line]  # not splitlines(): U+2028 is data


def _ingest_settings(site, monkeypatch, tmp_path) -> Path:
    """Settings pointing at the test bucket and table, the image site allowed, a SQLite ledger (its path)."""
    ledger = tmp_path / "ledger.db"
    monkeypatch.setenv("OGIRI_BUCKET", BUCKET)
    monkeypatch.setenv("OGIRI_TABLE", TABLE)
    monkeypatch.setenv("OGIRI_PRIVATE_HOST_ALLOWLIST", site.server.allowlist_entry)
    monkeypatch.setenv("OGIRI_REKOGNITION_TPS", "0")
    monkeypatch.setenv("OGIRI_FETCH_CONCURRENCY", "8")
    monkeypatch.setenv("AIRFLOW_CONN_OGIRI_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(ledger)}))
    return ledger


@pytest.fixture
def account(aws, site, monkeypatch, tmp_path):
    """Fresh emulated account with bucket + table, settings pointing at them, SQLite ledger."""
    from ogiri.ingest.tasks import chunk_clients
    from ogiri.provision import ensure_resources
    from ogiri.runs import Run

    ledger = _ingest_settings(site, monkeypatch, tmp_path)
    clients = chunk_clients(Run.for_key("ogiri_ingest:test"), pool=16)
    ensure_resources(clients.s3, clients.dynamodb, BUCKET, TABLE)
    return Account(aws, clients, ledger_path=ledger)


@pytest.fixture
def stack_account(aws, stack, site, monkeypatch, tmp_path):
    """infra/ogiri.yaml deployed into the emulator (IAM enforced) for DAG runs as its principals: the
    DAG as the worker (``aws_default``), CSVs landed as the producer; ``clients`` are the admin's, for
    set-up and assertions only."""
    from types import SimpleNamespace

    ledger = _ingest_settings(site, monkeypatch, tmp_path)
    found = stack({"EnvironmentName": "test", "BucketName": BUCKET, "TableName": TABLE})
    admin = SimpleNamespace(**{name: aws.client(name) for name in ("s3", "dynamodb", "rekognition")})
    producer = aws.client("s3", **found.principals["producer"])
    return Account(aws, admin, ledger_path=ledger, producer=producer)


@pytest.fixture
def dag_bundle(tmp_path, monkeypatch):
    """A bundle folder holding only this DAG, so dag.test() syncs just it to the metadata DB."""
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / DAG_FILE.name).symlink_to(DAG_FILE)
    monkeypatch.setenv(
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST",
        json.dumps(
            [
                {
                    "name": "dags-folder",
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {"path": str(folder)},
                }
            ]
        ),
    )
    return folder
