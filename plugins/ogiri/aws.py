"""AWS access shared by every pipeline.

* :func:`client`: the one boto3 client factory, built by the Amazon provider's ``AwsBaseHook`` from the
  Airflow AWS connection (``Settings.aws_conn_id``; locally its ``endpoint_url`` names the emulator),
  in ``Settings.region``.
* :func:`s3_split` / :func:`s3_uri`: the one ``s3://`` parser and builder.
* :func:`not_found` / :func:`s3_missing`: SageMaker's and S3's "it does not exist" answers, told apart
  from throttling errors (which keep their retries).
* :class:`AccessDenied`: every client raises it for a call its principal's policy does not allow; it is
  an ``AirflowFailException``, so the task fails at once (a retry cannot grant a permission).
* Idempotent S3 writes (a rerun leaves existing objects untouched: same ETag, same LastModified) and
  checked batch deletes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException
from botocore.exceptions import ClientError

from ogiri.backoff import is_throttling, with_backoff

if TYPE_CHECKING:
    from botocore.config import Config

    from ogiri.config import Settings

#: A conditional create refused because the key exists.
_EXISTS = {"PreconditionFailed", "412"}
#: A conditional write that lost to a conflicting operation in flight (e.g. a delete of the key): the
#: outcome is unknown, so it is retried (S3's advice), never taken to mean "exists".
_CONFLICT = {"ConditionalRequestConflict", "409"}
#: S3's answers for a missing object (``HeadObject`` has no body, so only the status code).
S3_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


#: AWS's "your policy does not allow this" codes (query/REST-XML and JSON spellings; HeadObject: 403).
ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "403"})


class AccessDenied(ClientError, AirflowFailException):
    """A call the principal may not make: still a ``ClientError``, but it fails the task without retries."""


def _fail_fast_on_access_denied(parsed: dict[str, Any], model: Any, **_: Any) -> None:
    if str(parsed.get("Error", {}).get("Code") or "") in ACCESS_DENIED_CODES:
        raise AccessDenied(parsed, model.name)


def connection(settings: Settings | None = None) -> Any:
    """The configured Airflow AWS connection, looked up and wrapped once (the provider's
    ``AwsConnectionWrapper``): pass it to :func:`client` so that one task builds every client from
    one lookup (one secrets-backend call, one "credentials retrieved" log line)."""
    return _hook(None, settings).conn_config


def client(service: str, *, settings: Settings | None = None, config: Config | None = None, conn: Any = None) -> Any:
    """A boto3 client for ``service`` through the configured Airflow AWS connection and region.
    ``config`` is merged over the connection's own botocore settings (proxies, retries…)."""
    hook = _hook(service, settings)
    if conn is not None:
        hook.conn_config = conn  # the provider's cached property, filled from the shared lookup
    merged = hook.config.merge(config) if config is not None else None
    return fail_fast_on_access_denied(hook.get_client_type(region_name=hook.region_name, config=merged))


def _hook(service: str | None, settings: Settings | None) -> Any:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    from ogiri.config import get_settings

    settings = settings or get_settings()
    return AwsBaseHook(aws_conn_id=settings.aws_conn_id, client_type=service, region_name=settings.region)


def fail_fast_on_access_denied(conn: Any) -> Any:
    """Make ``conn`` (a boto3 client, ours or a provider hook's) raise :class:`AccessDenied` for a
    refused call, so the task fails at once instead of retrying a permission error. Idempotent."""
    conn.meta.events.register("after-call", _fail_fast_on_access_denied, unique_id="ogiri-access-denied")
    return conn


def client_config(*, pool: int = 10, attempts: int = 5) -> Config:
    """botocore ``Config`` with a connection pool of ``pool`` and ``attempts`` standard-mode tries."""
    from botocore.config import Config

    return Config(
        max_pool_connections=max(10, pool),
        retries={"mode": "standard", "total_max_attempts": attempts},
        connect_timeout=10,
        read_timeout=60,
    )


def s3_split(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → ``(bucket, key)`` (key verbatim, possibly empty); ``ValueError`` otherwise."""
    if not isinstance(uri, str) or not uri.strip().lower().startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri.strip()[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"S3 URI {uri!r} has no bucket")
    return bucket, key


def s3_uri(bucket: str, key: str) -> str:
    """``s3://<bucket>/<key>``."""
    return f"s3://{bucket}/{key.lstrip('/')}"


def error_code(exc: ClientError) -> str:
    """The AWS error code of ``exc`` (empty when absent)."""
    return str(exc.response.get("Error", {}).get("Code") or "")


def s3_missing(exc: ClientError) -> bool:
    """Whether ``exc`` is S3's answer for a missing object."""
    return error_code(exc) in S3_MISSING_CODES


def not_found(exc: ClientError) -> bool:
    """Whether ``exc`` is SageMaker's answer for an unknown job, model, endpoint (config) or package.

    SageMaker answers ``ValidationException`` for these: "Requested resource not found." (training
    job), "Could not find requested job with name …" (processing/transform job), "Could not find
    model|endpoint|endpoint configuration "arn"." and "Model package … does not exist." /
    "ModelPackageGroup arn does not exist." (registry); other validation errors, throttling and access
    errors are not "not found".
    """
    if error_code(exc) == "ResourceNotFound":
        return True
    message = str(exc.response.get("Error", {}).get("Message") or "").lower()
    return error_code(exc) == "ValidationException" and any(
        words in message for words in ("not found", "could not find", "does not exist")
    )


def get_if_exists(s3: Any, bucket: str, key: str) -> bytes | None:
    """The body of ``s3://bucket/key``, or None when the object does not exist."""
    try:
        return read_object(s3, bucket, key)
    except ClientError as exc:
        if s3_missing(exc):
            return None
        raise


def read_uri(s3: Any, uri: str) -> bytes:
    """The whole body of the object at ``uri``."""
    return read_object(s3, *s3_split(uri))


def _retry_conditional(exc: BaseException) -> bool:
    return is_throttling(exc) or (isinstance(exc, ClientError) and error_code(exc) in _CONFLICT)


def put_if_absent(s3: Any, bucket: str, key: str, body: bytes, content_type: str) -> bool:
    """Create ``key`` unless it exists (``If-None-Match: *``, one call). Returns True when this call
    created it: of several writers of one key, exactly one gets True (S3 answers the others 412).

    Content-addressed keys make "exists" mean "same bytes", so an existing object is never rewritten.
    A ``409 ConditionalRequestConflict`` is retried with backoff like throttling.
    """
    try:
        with_backoff(
            lambda: s3.put_object(
                Bucket=bucket, Key=key, Body=body, ContentType=content_type, IfNoneMatch="*"
            ),
            retry_if=_retry_conditional,
        )
    except ClientError as exc:
        if error_code(exc) in _EXISTS:
            return False
        raise
    return True


def put_if_changed(s3: Any, bucket: str, key: str, body: bytes, content_type: str) -> bool:
    """Write ``key`` unless it already holds exactly ``body`` (ETag = MD5 of a single-part upload).

    Returns True when written.
    """
    digest = hashlib.md5(body, usedforsecurity=False).hexdigest()
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if not s3_missing(exc):
            raise
    else:
        if head.get("ETag", "").strip('"') == digest and head.get("ContentLength") == len(body):
            return False
    with_backoff(lambda: s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type))
    return True


def read_object(s3: Any, bucket: str, key: str) -> bytes:
    """The whole body of ``s3://bucket/key``."""
    return with_backoff(lambda: s3.get_object(Bucket=bucket, Key=key))["Body"].read()


def delete_keys(s3: Any, bucket: str, keys: Iterable[str]) -> int:
    """Delete ``keys`` (``DeleteObjects``, 1000 a call); returns how many. Raises ``RuntimeError`` naming
    the first failures when S3 reports per-key errors (which it does in a 200 response)."""
    keys = list(keys)
    for start in range(0, len(keys), 1000):
        batch = keys[start : start + 1000]
        errors = s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
        ).get("Errors", [])
        if errors:
            shown = "; ".join(f"{e.get('Key')}: {e.get('Code')} {e.get('Message', '')}".strip() for e in errors[:5])
            raise RuntimeError(f"could not delete {len(errors)} object(s) from s3://{bucket}: {shown}")
    return len(keys)
