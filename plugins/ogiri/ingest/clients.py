"""boto3 clients for ingestion, built by the Amazon provider hooks from the Airflow AWS connection.

The connection (default ``aws_default``) carries credentials, region and, in local mode,
``endpoint_url`` pointing at the emulator, so the same code talks to AWS or ``localaws``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.config import Config


@dataclass
class IngestClients:
    """The three clients one ingestion chunk needs (thread-safe; share them across workers)."""

    s3: Any
    dynamodb: Any
    rekognition: Any


def _config(pool: int, attempts: int) -> Config:
    return Config(
        max_pool_connections=max(10, pool),
        retries={"mode": "standard", "total_max_attempts": attempts},
        connect_timeout=10,
        read_timeout=60,
    )


def make_clients(aws_conn_id: str, *, pool: int = 16, region_name: str | None = None) -> IngestClients:
    """Clients from ``AwsBaseHook(client_type=...)``; ``region_name`` (e.g. ``Settings.region``) overrides
    the connection's region, as it does for the training and batch DAGs' clients.

    Rekognition gets no botocore retries (``total_max_attempts=1``): :mod:`ogiri.ingest.labels`
    retries itself, so every attempt passes through the client-side rate limit.
    """
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    region = {"region_name": region_name} if region_name else {}
    s3 = S3Hook(aws_conn_id=aws_conn_id, config=_config(pool, 5), **region).get_conn()
    ddb = AwsBaseHook(aws_conn_id=aws_conn_id, client_type="dynamodb", config=_config(pool, 3), **region).get_conn()
    rek = AwsBaseHook(aws_conn_id=aws_conn_id, client_type="rekognition", config=_config(pool, 1), **region).get_conn()
    return IngestClients(s3=s3, dynamodb=ddb, rekognition=rek)
