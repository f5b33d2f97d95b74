"""Turn what a run should caption into input sets, request files and transform job configs.

A *source* is one S3 prefix, one manifest, or the images ingested on one day. Each source becomes
one input set (one transform job); a source with more than ``max_set_size`` images is split into
several sets. An image listed twice in a run is captioned once (its first occurrence wins).

A set's request files are JSON Lines in the model's ``application/jsonlines`` batch contract, one
image per line — ``{"id": <image key>, "s3_uri": "s3://…", "beam_width": N}`` — with ``batch_size``
lines per file. The transform reads each file whole (``SplitType=None``), so ``batch_size`` is the
number of images per inference request.

The *image key* recorded for an image is its S3 key when it lives in the product bucket
(``images/ab/ab….jpg``, the ingestion's content address) and its full ``s3://`` URI otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from ogiri.aws import delete_keys, s3_split
from ogiri.batch import layout

#: Object suffixes (lower-case) taken as images when listing a prefix.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: Manifest fields that may name an image, in order of preference.
MANIFEST_FIELDS = ("s3_uri", "image_key", "key", "image")
CONTENT_TYPE = "application/jsonlines"
#: SageMaker's limits for the parameters we pass through.
MAX_BEAM_WIDTH = 16
MAX_BATCH_SIZE = 1024
MAX_CONCURRENT_TRANSFORMS = 256


class PlanError(AirflowFailException, ValueError):
    """The run's inputs or options are not usable (bad prefix, missing manifest, option…): user
    input that no retry can fix, so the task fails at once instead of retrying."""


@dataclass(frozen=True, order=True)
class ImageRef:
    """One image in S3."""

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        """``s3://bucket/key``."""
        return f"s3://{self.bucket}/{self.key}"

    def image_key(self, home_bucket: str) -> str:
        """The key recorded in the ledger: the S3 key in the product bucket, else the full URI."""
        return self.key if self.bucket == home_bucket else self.uri


def parse_s3_location(text: str, default_bucket: str) -> tuple[str, str]:
    """``s3://bucket/key`` → (bucket, key); a bare ``key`` is taken in ``default_bucket``."""
    if not isinstance(text, str) or not text.strip():
        raise PlanError(f"expected an S3 URI or key, got {text!r}")
    text = text.strip()
    if text.lower().startswith("s3://"):
        try:
            return s3_split(text)
        except ValueError as exc:
            raise PlanError(str(exc)) from exc
    if "://" in text:
        raise PlanError(f"only s3:// locations can be captioned, got {text!r}")
    return default_bucket, text.lstrip("/")


def is_image_key(key: str) -> bool:
    """Whether an object key looks like an image we can caption."""
    return key.lower().endswith(IMAGE_SUFFIXES)


def list_prefix(s3: Any, location: str, default_bucket: str) -> list[ImageRef]:
    """Every image object under an S3 prefix (sorted by key). Raises :class:`PlanError` when the
    bucket is missing; an existing prefix with no images gives an empty list."""
    bucket, prefix = parse_s3_location(location, default_bucket)
    refs = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            refs.extend(
                ImageRef(bucket, o["Key"]) for o in page.get("Contents", []) if is_image_key(o["Key"])
            )
    except s3.exceptions.NoSuchBucket as exc:
        raise PlanError(f"input prefix {location!r}: bucket {bucket!r} does not exist") from exc
    return sorted(refs)


def parse_manifest(text: str, default_bucket: str, *, source: str = "manifest") -> list[ImageRef]:
    """Images named by a manifest, in order.

    Each non-blank line is either an S3 URI / key, or a JSON object with one of
    :data:`MANIFEST_FIELDS` (``s3_uri``, ``image_key``, ``key``, ``image``). ``#`` starts a comment line.
    """
    refs = []
    for number, raw in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source} line {number}"
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PlanError(f"{where}: not valid JSON ({exc.msg})") from exc
            value = next((record[f] for f in MANIFEST_FIELDS if record.get(f)), None)
            if value is None:
                raise PlanError(f"{where}: needs one of the fields {', '.join(MANIFEST_FIELDS)}")
        else:
            value = line
        try:
            refs.append(ImageRef(*parse_s3_location(value, default_bucket)))
        except PlanError as exc:
            raise PlanError(f"{where}: {exc}") from exc
    return refs


def read_manifest(s3: Any, location: str, default_bucket: str) -> list[ImageRef]:
    """Download and parse a manifest (see :func:`parse_manifest`)."""
    bucket, key = parse_s3_location(location, default_bucket)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except (s3.exceptions.NoSuchKey, s3.exceptions.NoSuchBucket) as exc:
        raise PlanError(f"manifest s3://{bucket}/{key} does not exist") from exc
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlanError(f"manifest s3://{bucket}/{key} is not UTF-8") from exc
    return parse_manifest(text, default_bucket, source=f"manifest s3://{bucket}/{key}")


def split_into_sets(sources: Sequence[Sequence[ImageRef]], max_set_size: int) -> list[list[ImageRef]]:
    """One set per non-empty source, split into chunks of at most ``max_set_size``; duplicates
    (within and across sources) are dropped, keeping the first occurrence."""
    if max_set_size < 1:
        raise PlanError(f"max_set_size must be >= 1, got {max_set_size}")
    seen: set[ImageRef] = set()
    sets = []
    for refs in sources:
        unique = []
        for ref in refs:
            if ref not in seen:
                seen.add(ref)
                unique.append(ref)
        sets.extend(unique[i : i + max_set_size] for i in range(0, len(unique), max_set_size))
    return sets


@dataclass(frozen=True)
class TransformOptions:
    """Per-run transform settings (from the DAG's Params, defaults from :mod:`ogiri.config`)."""

    model_name: str
    instance_type: str
    instance_count: int = 1
    beam_width: int = 3
    batch_size: int = 32
    max_concurrent_transforms: int = 1
    max_payload_mb: int = 6

    def __post_init__(self) -> None:
        if not self.model_name:
            raise PlanError("a model name is required")
        if not self.instance_type.startswith("ml."):
            raise PlanError(f"instance type must look like 'ml.m5.xlarge', got {self.instance_type!r}")
        _check_range("instance_count", self.instance_count, 1, 100)
        _check_range("beam_width", self.beam_width, 1, MAX_BEAM_WIDTH)
        _check_range("batch_size", self.batch_size, 1, MAX_BATCH_SIZE)
        _check_range(
            "max_concurrent_transforms", self.max_concurrent_transforms, 1, MAX_CONCURRENT_TRANSFORMS
        )
        _check_range("max_payload_mb", self.max_payload_mb, 1, 100)


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PlanError(f"{name} must be an integer in [{low}, {high}], got {value!r}")


@dataclass(frozen=True)
class InputSet:
    """One transform job's worth of images, as planned (JSON-serialisable via :meth:`to_dict`)."""

    name: str
    job_name: str
    bucket: str
    input_prefix: str
    output_prefix: str
    items: int
    files: int

    @property
    def input_uri(self) -> str:
        return f"s3://{self.bucket}/{self.input_prefix}"

    @property
    def output_uri(self) -> str:
        return f"s3://{self.bucket}/{self.output_prefix}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputSet:
        return cls(**data)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> InputSet:
        """The set a :func:`transform_config` request was made for (``items``/``files`` are 0: unknown)."""
        bucket, input_prefix = parse_s3_location(
            config["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"], ""
        )
        out_bucket, output_prefix = parse_s3_location(config["TransformOutput"]["S3OutputPath"], "")
        if out_bucket != bucket:
            raise PlanError(
                f"transform {config['TransformJobName']} reads s3://{bucket} but writes s3://{out_bucket}"
            )
        tags = {t["Key"]: t["Value"] for t in config.get("Tags", [])}
        return cls(
            name=tags.get("ogiri:input-set") or config["TransformJobName"],
            job_name=config["TransformJobName"],
            bucket=bucket,
            input_prefix=input_prefix,
            output_prefix=output_prefix,
            items=0,
            files=0,
        )


def request_line(ref: ImageRef, home_bucket: str, beam_width: int) -> dict[str, Any]:
    """The JSON object one image becomes in a request file."""
    return {"id": ref.image_key(home_bucket), "s3_uri": ref.uri, "beam_width": beam_width}


def request_files(
    run_key: str, set_: str, refs: Sequence[ImageRef], home_bucket: str, beam_width: int, batch_size: int
) -> Iterator[tuple[str, bytes]]:
    """``(key, body)`` of each request file of a set: ``batch_size`` JSON lines per file."""
    for part, start in enumerate(range(0, len(refs), batch_size)):
        lines = (
            json.dumps(request_line(r, home_bucket, beam_width), ensure_ascii=False)
            for r in refs[start : start + batch_size]
        )
        yield layout.request_file_key(run_key, set_, part), ("\n".join(lines) + "\n").encode("utf-8")


def transform_config(input_set: InputSet, options: TransformOptions, *, run_key: str) -> dict[str, Any]:
    """The ``CreateTransformJob`` request for one input set (a whole request file per invocation)."""
    return {
        "TransformJobName": input_set.job_name,
        "ModelName": options.model_name,
        "MaxConcurrentTransforms": options.max_concurrent_transforms,
        "MaxPayloadInMB": options.max_payload_mb,
        "BatchStrategy": "MultiRecord",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_set.input_uri}},
            "ContentType": CONTENT_TYPE,
            "SplitType": "None",
            "CompressionType": "None",
        },
        "TransformOutput": {
            "S3OutputPath": input_set.output_uri,
            "Accept": CONTENT_TYPE,
            "AssembleWith": "Line",
        },
        "TransformResources": {
            "InstanceType": options.instance_type,
            "InstanceCount": options.instance_count,
        },
        "Tags": [
            {"Key": "ogiri:run-key", "Value": run_key[:256]},
            {"Key": "ogiri:input-set", "Value": input_set.name},
        ],
    }


def _clear_stale(s3: Any, bucket: str, prefix: str, keep: set[str]) -> None:
    stale = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        stale.extend(o["Key"] for o in page.get("Contents", []) if o["Key"] not in keep)
    delete_keys(s3, bucket, stale)


def write_input_sets(
    s3: Any,
    *,
    bucket: str,
    run_key: str,
    sets: Sequence[Sequence[ImageRef]],
    options: TransformOptions,
    upload_threads: int = 8,
) -> list[InputSet]:
    """Write every set's request files under ``batch/<run>/input/<set>/`` (replacing files a
    previous plan of the same run left there) and return the planned sets."""
    planned = []
    uploads: list[tuple[str, bytes]] = []
    for index, refs in enumerate(sets):
        set_ = layout.set_name(index)
        files = list(request_files(run_key, set_, refs, bucket, options.beam_width, options.batch_size))
        uploads.extend(files)
        planned.append(
            InputSet(
                name=set_,
                job_name=layout.transform_job_name(run_key, set_),
                bucket=bucket,
                input_prefix=layout.input_prefix(run_key, set_),
                output_prefix=layout.output_prefix(run_key, set_),
                items=len(refs),
                files=len(files),
            )
        )
    # Files (or whole sets) a previous plan of this run wrote and this one does not must not linger.
    _clear_stale(s3, bucket, f"{layout.run_prefix(run_key)}/input/", {k for k, _ in uploads})

    def put(item: tuple[str, bytes]) -> None:
        s3.put_object(Bucket=bucket, Key=item[0], Body=item[1], ContentType=CONTENT_TYPE)

    with ThreadPoolExecutor(max_workers=max(1, upload_threads)) as pool:
        list(pool.map(put, uploads))
    return planned


def read_request_ids(body: bytes | str) -> list[str]:
    """The ``id`` of every line of a request file, in order."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    return [json.loads(line)["id"] for line in text.splitlines() if line.strip()]
