"""Deterministic sourcedir packaging and offline image URI resolution."""

from __future__ import annotations

import io
import os
import tarfile
import time

import boto3
import pytest
from moto import mock_aws

from ogiri.config import get_settings
from ogiri.images import inference_image_uri, pytorch_image_uri, training_image_uri
from ogiri.source import build_sourcedir, content_hash, source_files, upload_source


@pytest.fixture
def src(tmp_path):
    root = tmp_path / "training"
    (root / "pkg").mkdir(parents=True)
    (root / "train.py").write_text("print('hi')\n")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "model.py").write_text("X = 1\n")
    (root / "pkg" / "__pycache__").mkdir()
    (root / "pkg" / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"junk")
    (root / ".hidden").write_text("secret")
    return root


def test_same_code_same_bytes_even_after_touching_files(src):
    first = build_sourcedir(src)
    later = time.time() + 1000
    for path in src.rglob("*"):
        os.utime(path, (later, later))
    assert build_sourcedir(src) == first


def test_changed_code_changes_the_hash(src):
    before = content_hash(build_sourcedir(src))
    (src / "pkg" / "model.py").write_text("X = 2\n")
    assert content_hash(build_sourcedir(src)) != before


def test_bundle_is_sorted_clean_and_anonymous(src):
    with tarfile.open(fileobj=io.BytesIO(build_sourcedir(src))) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["pkg/__init__.py", "pkg/model.py", "train.py"]
    assert all(m.mtime == 0 and m.uid == 0 and m.uname == "" for m in members)


def test_empty_or_missing_dir_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        source_files(tmp_path / "nope")
    with pytest.raises(ValueError, match="no files"):
        source_files(tmp_path)


def test_upload_is_content_addressed_and_skipped_when_present(src):
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="code-bucket")
        first = upload_source(s3, "code-bucket", src)
        again = upload_source(s3, "code-bucket", src)
        assert first.uploaded and not again.uploaded
        assert first.sourcedir_uri == again.sourcedir_uri == f"s3://code-bucket/code/{first.code_hash}/sourcedir.tar.gz"
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="code-bucket")["Contents"])
        assert f"code/{first.code_hash}/files/pkg/model.py" in keys
        (src / "train.py").write_text("print('changed')\n")
        assert upload_source(s3, "code-bucket", src).code_hash != first.code_hash


def test_real_training_package_bundles():
    from ogiri.train.steps import TRAINING_SOURCE_DIR

    names = [p.relative_to(TRAINING_SOURCE_DIR).as_posix() for p in source_files(TRAINING_SOURCE_DIR)]
    assert "train.py" in names and not any("__pycache__" in n for n in names)


def test_image_uris_resolve_offline_for_region_and_processor():
    settings = get_settings()
    train = training_image_uri(settings)
    assert train.startswith("763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:")
    assert "gpu" in train and settings.framework_version in train
    assert "pytorch-inference" in inference_image_uri(settings)
    cpu = pytorch_image_uri("training", "eu-west-1", "2.5", "py311", "ml.m5.xlarge")
    assert ".eu-west-1." in cpu and "-cpu-" in cpu


def test_image_uri_errors_are_clear():
    with pytest.raises(ValueError, match="scope"):
        pytorch_image_uri("serving", "us-east-1", "2.5", "py311", "ml.g5.xlarge")
    with pytest.raises(ValueError, match="no PyTorch 0.0.1"):
        pytorch_image_uri("training", "us-east-1", "0.0.1", "py311", "ml.g5.xlarge")
