"""Helpers of the SageMaker emulator: batching, assembling, key layout, path rewriting, metrics, S3 sources."""

from __future__ import annotations

import json

import pytest

from localaws.sagemaker.common import hp_to_str, relative_key, s3_data_objects, unquote_hp
from localaws.sagemaker.jobs import path_rewriter, scrape_metrics
from localaws.sagemaker.transform import RecordError, assemble, split_requests


def test_split_none_sends_whole_object_and_enforces_max_payload():
    assert split_requests(b"a\nb\n", "None", "MultiRecord", 100) == [b"a\nb\n"]
    with pytest.raises(RecordError, match="MaxPayloadInMB"):
        split_requests(b"x" * 11, None, "SingleRecord", 10)


def test_split_line_single_and_multi_record():
    data = b"aaaa\nbbbb\n\ncccc\n"
    assert split_requests(data, "Line", "SingleRecord", 100) == [b"aaaa", b"bbbb", b"cccc"]
    # 10-byte payloads hold two 5-byte records ("aaaa\n") each
    assert split_requests(data, "Line", "MultiRecord", 10) == [b"aaaa\nbbbb\n", b"cccc\n"]
    with pytest.raises(RecordError, match="RecordIO"):
        split_requests(data, "RecordIO", "SingleRecord", 100)


def test_assemble_line_adds_missing_newlines():
    assert assemble([b"1", b"2\n"], "Line") == b"1\n2\n"
    assert assemble([b"1", b"2"], None) == b"12"


def test_relative_key_layout():
    assert relative_key("in/a/b.txt", "in/") == "a/b.txt"
    assert relative_key("in/a/b.txt", "in") == "a/b.txt"
    assert relative_key("in/a/b.txt", "in/a/b.txt") == "b.txt"


def test_hyperparameters_are_unquoted_like_the_sdk_sends_them():
    assert unquote_hp('"train.py"') == "train.py"
    assert unquote_hp("3") == 3 and unquote_hp("plain") == "plain"
    assert hp_to_str(unquote_hp(json.dumps({"a": 1}))) == '{"a": 1}'
    assert hp_to_str(unquote_hp('"大喜利"')) == "大喜利"


def test_path_rewriter_maps_longest_prefix_once():
    rewrite = path_rewriter({"/opt/ml/processing": "/w/fs/opt/ml/processing", "/data": "/w/fs/data"})
    assert rewrite("--in=/opt/ml/processing/input/x") == "--in=/w/fs/opt/ml/processing/input/x"
    assert rewrite("/data/a:/data/b") == "/w/fs/data/a:/w/fs/data/b"
    assert rewrite("/elsewhere") == "/elsewhere"


def test_scrape_metrics_keeps_last_value_and_skips_bad_regexes():
    lines = ["epoch=1 loss=0.9", "noise", "epoch=2 loss=0.4"]
    definitions = [
        {"Name": "loss", "Regex": r"loss=([0-9.]+)"},
        {"Name": "broken", "Regex": r"([unclosed"},
        {"Name": "absent", "Regex": r"acc=([0-9.]+)"},
    ]
    assert [(m["MetricName"], m["Value"]) for m in scrape_metrics(lines, definitions)] == [("loss", 0.4)]


def test_s3_data_objects_lists_prefixes_and_manifests(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="data")
    for key in ("in/a.txt", "in/sub/b.txt", "in/", "other/c.txt"):
        s3.put_object(Bucket="data", Key=key, Body=b"x")
    assert sorted(s3_data_objects(s3, "s3://data/in/")) == [
        ("data", "in/a.txt", "a.txt"),
        ("data", "in/sub/b.txt", "sub/b.txt"),
    ]
    manifest = [{"prefix": "s3://data/other/"}, "c.txt"]
    s3.put_object(Bucket="data", Key="m.json", Body=json.dumps(manifest).encode())
    assert s3_data_objects(s3, "s3://data/m.json", "ManifestFile") == [("data", "other/c.txt", "c.txt")]
    s3.put_object(Bucket="data", Key="bad.json", Body=b'["c.txt"]')
    with pytest.raises(ValueError, match="must be a JSON list starting with"):
        s3_data_objects(s3, "s3://data/bad.json", "ManifestFile")
    with pytest.raises(ValueError, match="AugmentedManifestFile"):
        s3_data_objects(s3, "s3://data/in/", "AugmentedManifestFile")
