"""S3 requests -> IAM actions and resource ARNs (bucket ARN for bucket operations, object ARN for
object operations; ``DeleteObjects`` is ``s3:DeleteObject`` on each key)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote
from xml.etree import ElementTree

from localaws.iam.evaluation import Check
from localaws.iam.requests import ApiRequest, read_body


class Unmodelled(Exception):
    """The emulator cannot tell which IAM action (or resource) a request needs: fail closed."""


# Bucket sub-resource -> IAM action for GET, PUT, DELETE (None: no such operation).
_BUCKET_SUBRESOURCES: dict[str, tuple[str | None, str | None, str | None]] = {
    "policy": ("GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"),
    "policyStatus": ("GetBucketPolicyStatus", None, None),
    "versioning": ("GetBucketVersioning", "PutBucketVersioning", None),
    "encryption": ("GetEncryptionConfiguration", "PutEncryptionConfiguration", "PutEncryptionConfiguration"),
    "tagging": ("GetBucketTagging", "PutBucketTagging", "PutBucketTagging"),
    "lifecycle": ("GetLifecycleConfiguration", "PutLifecycleConfiguration", "PutLifecycleConfiguration"),
    "cors": ("GetBucketCORS", "PutBucketCORS", "PutBucketCORS"),
    "acl": ("GetBucketAcl", "PutBucketAcl", None),
    "publicAccessBlock": ("GetBucketPublicAccessBlock", "PutBucketPublicAccessBlock", "PutBucketPublicAccessBlock"),
    "ownershipControls": ("GetBucketOwnershipControls", "PutBucketOwnershipControls", "PutBucketOwnershipControls"),
    "notification": ("GetBucketNotification", "PutBucketNotification", None),
    "logging": ("GetBucketLogging", "PutBucketLogging", None),
    "website": ("GetBucketWebsite", "PutBucketWebsite", "DeleteBucketWebsite"),
    "replication": ("GetReplicationConfiguration", "PutReplicationConfiguration", "PutReplicationConfiguration"),
    "object-lock": ("GetBucketObjectLockConfiguration", "PutBucketObjectLockConfiguration", None),
    "requestPayment": ("GetBucketRequestPayment", "PutBucketRequestPayment", None),
    "accelerate": ("GetAccelerateConfiguration", "PutAccelerateConfiguration", None),
    "location": ("GetBucketLocation", None, None),
    "versions": ("ListBucketVersions", None, None),
    "uploads": ("ListBucketMultipartUploads", None, None),
}
_OBJECT_SUBRESOURCES: dict[str, tuple[str | None, str | None, str | None]] = {
    "tagging": ("GetObjectTagging", "PutObjectTagging", "DeleteObjectTagging"),
    "acl": ("GetObjectAcl", "PutObjectAcl", None),
    "retention": ("GetObjectRetention", "PutObjectRetention", None),
    "legal-hold": ("GetObjectLegalHold", "PutObjectLegalHold", None),
    "attributes": ("GetObjectAttributes", None, None),
}
_METHOD_INDEX = {"GET": 0, "HEAD": 0, "PUT": 1, "DELETE": 2}


def target(req: ApiRequest) -> tuple[str | None, str | None]:
    """(bucket, key) of a request, path-style or virtual-hosted-style."""
    host = req.header("Host") or ""
    host = "" if host.startswith("[") else host.rsplit(":", 1)[0]
    path = req.path().lstrip("/")
    bucket = None
    for marker in (".s3.", ".s3-", ".localhost"):
        if marker in host and not host.startswith(("s3.", "s3-")):
            bucket = host[: host.index(marker)]
            break
    if bucket is None:
        bucket, _, key = path.partition("/")
        return bucket or None, key or None
    return bucket, path or None


def bucket_arn(bucket: str) -> str:
    """``arn:aws:s3:::bucket``."""
    return f"arn:aws:s3:::{bucket}"


def _sub(query: dict[str, list[str]], table: dict[str, tuple[str | None, ...]]) -> str | None:
    return next((name for name in table if name in query), None)


def _list_context(query: dict[str, list[str]]) -> dict[str, list[str]]:
    ctx = {}
    for param in ("prefix", "delimiter", "max-keys"):
        if param in query:
            ctx[f"s3:{param}"] = [query[param][0]]
    return ctx


def _bucket_checks(req: ApiRequest, bucket: str) -> list[Check]:
    method, query, arn = req.environ.get("REQUEST_METHOD", "GET"), req.query, bucket_arn(bucket)
    if method == "POST" and "delete" in query:
        return [Check("s3:DeleteObject", f"{arn}/{key}") for key in delete_keys(req)]
    sub = _sub(query, _BUCKET_SUBRESOURCES)
    if sub is not None:
        action = _BUCKET_SUBRESOURCES[sub][_METHOD_INDEX.get(method, 0)] if method != "POST" else None
        if action is None:
            raise Unmodelled(f"S3 {method} ?{sub} on a bucket")
        return [Check(f"s3:{action}", arn)]
    if method in ("GET", "HEAD"):
        return [Check("s3:ListBucket", arn, _list_context(query))]
    if method in ("PUT", "DELETE"):
        return [Check("s3:CreateBucket" if method == "PUT" else "s3:DeleteBucket", arn)]
    raise Unmodelled(f"S3 {method} on a bucket with query {sorted(query)}")


def _copy_source(req: ApiRequest) -> list[Check]:
    source = req.header("x-amz-copy-source")
    if not source:
        return []
    path, _, version = unquote(source).lstrip("/").partition("?versionId=")
    action = "s3:GetObjectVersion" if version else "s3:GetObject"
    return [Check(action, bucket_arn(path))]


def _object_context(req: ApiRequest) -> dict[str, list[str]]:
    ctx = {}
    for header in ("x-amz-server-side-encryption", "x-amz-acl"):
        value = req.header(header)
        if value:
            ctx[f"s3:{header}"] = [value]
    if "versionId" in req.query:
        ctx["s3:versionid"] = [req.query["versionId"][0]]
    return ctx


def _object_action(req: ApiRequest) -> str:
    method, query = req.environ.get("REQUEST_METHOD", "GET"), req.query
    sub = _sub(query, _OBJECT_SUBRESOURCES)
    if sub is not None:
        action = _OBJECT_SUBRESOURCES[sub][_METHOD_INDEX.get(method, 0)] if method != "POST" else None
        if action is None:
            raise Unmodelled(f"S3 {method} ?{sub} on an object")
        return action
    if "uploadId" in query:
        return {"DELETE": "AbortMultipartUpload", "GET": "ListMultipartUploadParts"}.get(method, "PutObject")
    versioned = "versionId" in query
    if method in ("GET", "HEAD"):
        return "GetObjectVersion" if versioned else "GetObject"
    if method == "DELETE":
        return "DeleteObjectVersion" if versioned else "DeleteObject"
    if method == "PUT" or (method == "POST" and "uploads" in query):
        return "PutObject"
    if method == "POST" and "restore" in query:
        return "RestoreObject"
    if method == "POST" and "select" in query:
        return "GetObject"
    raise Unmodelled(f"S3 {method} on an object with query {sorted(query)}")


def checks(req: ApiRequest) -> list[Check]:
    """The IAM checks an S3 request needs."""
    bucket, key = target(req)
    if bucket is None:
        if req.environ.get("REQUEST_METHOD", "GET") == "GET":
            return [Check("s3:ListAllMyBuckets", "*")]
        raise Unmodelled("S3 request without a bucket")
    if key is None:
        return _bucket_checks(req, bucket)
    action = _object_action(req)
    out = [Check(f"s3:{action}", f"{bucket_arn(bucket)}/{key}", _object_context(req))]
    extra = req.header("x-amz-tagging")
    if action == "PutObject" and extra:
        out.append(Check("s3:PutObjectTagging", out[0].resource))
    return out + _copy_source(req)


def delete_keys(req: ApiRequest) -> list[str]:
    """The keys named in a ``DeleteObjects`` body."""
    body = read_body(req.environ)
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as e:
        raise Unmodelled(f"DeleteObjects body is not XML: {e}") from e
    return [el.text or "" for el in root.iter() if _local(el.tag) == "Key"]


def _local(tag: Any) -> str:
    return str(tag).rsplit("}", 1)[-1]
