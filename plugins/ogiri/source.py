"""Package ``include/training`` as a deterministic ``sourcedir.tar.gz`` at a content-hashed S3 key (shared by
the pipelines that run that code in SageMaker: training, evaluation and monitoring jobs).

Entries are sorted and carry fixed mtimes, uids and modes, and gzip gets ``mtime=0``, so unchanged code
gives the same bytes, the same hash and the same key (a re-upload is skipped).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: Directory names never shipped to SageMaker.
EXCLUDED_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".ipynb_checkpoints"})
#: File suffixes never shipped.
EXCLUDED_SUFFIXES = (".pyc", ".pyo")


def source_files(root: str | Path) -> list[Path]:
    """Files under ``root`` that belong in the bundle, sorted by their POSIX relative path."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"training source directory {root} does not exist")
    files = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part in EXCLUDED_DIRS or part.startswith(".") for part in rel.parts):
            continue
        if path.is_file() and not path.name.endswith(EXCLUDED_SUFFIXES):
            files.append(path)
    if not files:
        raise ValueError(f"training source directory {root} has no files to package")
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def build_sourcedir(root: str | Path) -> bytes:
    """The gzipped tar of :func:`source_files`, byte-for-byte reproducible."""
    root = Path(root)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path in source_files(root):
            data = path.read_bytes()
            info = tarfile.TarInfo(path.relative_to(root).as_posix())
            info.size = len(data)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=out, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def content_hash(data: bytes, length: int = 16) -> str:
    """Hex SHA-256 prefix of ``data``."""
    return hashlib.sha256(data).hexdigest()[:length]


@dataclass(frozen=True)
class SourceBundle:
    """Where one version of the training code lives in S3."""

    code_hash: str
    sourcedir_uri: str  #: ``s3://…/code/<hash>/sourcedir.tar.gz`` for training jobs (script mode)
    files_uri: str  #: ``s3://…/code/<hash>/files/`` the same files unpacked, for processing jobs
    uploaded: bool  #: False when this code version was already in S3

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (XCom-friendly)."""
        return asdict(self)


def upload_source(s3_client: Any, bucket: str, root: str | Path, prefix: str = "code") -> SourceBundle:
    """Upload the bundle (and its unpacked files) under ``<prefix>/<hash>/`` unless already there."""
    from botocore.exceptions import ClientError

    root = Path(root)
    data = build_sourcedir(root)
    digest = content_hash(data)
    base = f"{prefix.strip('/')}/{digest}"
    key = f"{base}/sourcedir.tar.gz"
    bundle = SourceBundle(
        code_hash=digest,
        sourcedir_uri=f"s3://{bucket}/{key}",
        files_uri=f"s3://{bucket}/{base}/files/",
        uploaded=False,
    )
    try:
        s3_client.head_object(Bucket=bucket, Key=key)
        return bundle
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchKey", "NotFound"}:
            raise
    # Unpacked files first, the tarball last: its presence marks a complete upload.
    for path in source_files(root):
        s3_client.put_object(
            Bucket=bucket, Key=f"{base}/files/{path.relative_to(root).as_posix()}", Body=path.read_bytes()
        )
    s3_client.put_object(Bucket=bucket, Key=key, Body=data, ContentType="application/gzip")
    return SourceBundle(**{**bundle.as_dict(), "uploaded": True})
