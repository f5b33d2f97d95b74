"""The whole local environment: emulator, resources from the CloudFormation template, the
synthetic captioned image set served over loopback HTTP, and the settings that wire Airflow to it.

Shared by ``make demo``, ``make up`` and the end-to-end tests, so all three run the same thing.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import sys
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from datetime import date
from pathlib import Path

from ogiri_local.emulator import REPO, Emulator
from ogiri_local.image_server import ImageServer

STACK_NAME = "ogiri-local"
#: The private work team of local labeling jobs: the emulator's simulated workforce serves any
#: ``workteam/private-crowd/<name>`` of its account and region (docs/interfaces.md).
LOCAL_WORKTEAM_ARN = "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/ogiri-local"


def load_deploy_stack():
    """``infra/deploy_stack.py`` as a module (``infra/`` is not a package)."""
    spec = importlib.util.spec_from_file_location("ogiri_deploy_stack", REPO / "infra" / "deploy_stack.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _synthetic():
    training = str(REPO / "include" / "training")
    if training not in sys.path:
        sys.path.insert(0, training)
    from ogiri_captioner import synthetic

    return synthetic


#: ``OGIRI_TRAIN_*`` for local mode: a CPU trains this in a few minutes (production: 10 epochs of
#: ResNet-50 at 224 px on Spot).
LOCAL_TRAINING_DEFAULTS = {
    "OGIRI_TRAIN_EPOCHS": "8",
    "OGIRI_TRAIN_IMAGE_SIZE": "64",
    "OGIRI_TRAIN_ENCODER": "resnet18",
    "OGIRI_TRAIN_USE_SPOT": "false",
}


class LocalEnvironment:
    """Start everything under ``root``; ``env`` holds the variables Airflow processes need.

    ``n_images`` synthetic images are generated deterministically from ``seed`` (same inputs ⇒
    byte-identical images ⇒ the same content-addressed keys on every run).
    """

    def __init__(self, root: Path, *, n_images: int = 240, seed: int = 0, emulator_port: int | None = None):
        self.root = Path(root)
        self.n_images = n_images
        self.seed = seed
        self.emulator_port = emulator_port
        self._stack = ExitStack()
        self.emulator: Emulator | None = None
        self.images: ImageServer | None = None
        self.dataset: dict[str, Path] = {}
        self.settings: dict[str, str] = {}
        #: Access keys per principal of the stack (``airflow-worker``, ``producer``).
        self.principals: dict[str, dict[str, str]] = {}
        self.env: dict[str, str] = {}

    def __enter__(self) -> LocalEnvironment:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        """Emulator → stack from ``infra/ogiri.yaml`` → synthetic images → loopback image server."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.emulator = self._stack.enter_context(
            Emulator(self.root / "localaws", port=self.emulator_port, enforce_iam=True)
        )
        import boto3

        deploy_stack = load_deploy_stack()
        admin = {
            "endpoint_url": self.emulator.url,
            "region": "us-east-1",
            "session": boto3.session.Session(
                aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
            ),
        }
        outputs = deploy_stack.deploy(
            STACK_NAME, {"EnvironmentName": "local", "WorkteamArn": LOCAL_WORKTEAM_ARN}, poll_s=0.5, timeout_s=120,
            **admin
        )
        self.settings = deploy_stack.ogiri_settings(outputs)
        self.principals = deploy_stack.local_principals(outputs, STACK_NAME, **admin)
        data_root = self.root / "synthetic"
        self.dataset = _synthetic().generate(data_root, n=self.n_images, seed=self.seed)
        self.images = self._stack.enter_context(ImageServer(data_root))
        ledger_path = self.root / "ledger.db"
        worker = self.principals["airflow-worker"]
        self.env = {
            **self.settings,
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(self.emulator.aws_connection(keys=worker)),
            "AIRFLOW_CONN_OGIRI_LEDGER": json.dumps({"conn_type": "sqlite", "host": str(ledger_path)}),
            "OGIRI_PRIVATE_HOST_ALLOWLIST": self.images.allowlist_entry,
            # Small training on this CPU for runs that leave the form empty (asset-triggered runs
            # of `make up`): deployment defaults, not a code branch.
            **LOCAL_TRAINING_DEFAULTS,
            "AWS_ACCESS_KEY_ID": worker["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": worker["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def producer_client(self, service: str = "s3"):
        """A client signed by the producer principal (may only land CSVs under ``landing/``)."""
        return self.emulator.client(service, **self.principals["producer"])

    def write_csv(self, path: Path, splits: tuple[str, ...] = ("train", "val", "test")) -> int:
        """An ``image_url,caption`` CSV of the synthetic set as served here; returns the row count."""
        return _synthetic().write_url_csv(self.dataset["root"], self.images.base_url, path, splits=splits)

    def synthetic_rows(self, path: Path) -> list[list[str]]:
        """The synthetic set's ``[image_url, caption]`` rows (also written to ``path`` as a CSV)."""
        self.write_csv(path)
        return list(csv.reader(path.read_text(encoding="utf-8").splitlines()))[1:]

    def land(self, day: date, rows: Iterable[Sequence[str]]) -> str:
        """Land ``rows`` as the producer does: ``landing/dt=<day>/captions.csv``; returns the key."""
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["image_url", "caption"])
        writer.writerows(rows)
        key = f"landing/dt={day.isoformat()}/captions.csv"
        self.producer_client("s3").put_object(
            Bucket=self.settings["OGIRI_BUCKET"], Key=key, Body=buf.getvalue().encode("utf-8")
        )
        return key

    def stop(self) -> None:
        """Stop the image server and the emulator (which stops its jobs and endpoints)."""
        self._stack.close()
