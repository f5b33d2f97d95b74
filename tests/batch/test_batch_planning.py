"""Input-set planning: locations, manifests, splitting, request files, transform configs."""

from __future__ import annotations

import json

import pytest

from ogiri.batch import layout
from ogiri.batch.planning import (
    ImageRef,
    InputSet,
    PlanError,
    TransformOptions,
    is_image_key,
    parse_manifest,
    parse_s3_location,
    read_request_ids,
    request_files,
    split_into_sets,
    transform_config,
)

BUCKET = "ogiri-mlops"


def refs(*keys: str, bucket: str = BUCKET) -> list[ImageRef]:
    return [ImageRef(bucket, k) for k in keys]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("s3://other/a/b.jpg", ("other", "a/b.jpg")),
        ("s3://other", ("other", "")),
        ("images/ab/x.jpg", (BUCKET, "images/ab/x.jpg")),
        ("/images/", (BUCKET, "images/")),
        ("  s3://b/k  ", ("b", "k")),
    ],
)
def test_parse_s3_location(text, expected):
    assert parse_s3_location(text, BUCKET) == expected


@pytest.mark.parametrize("bad", ["", "   ", "https://example.com/x.jpg", "s3:///key", 42])
def test_parse_s3_location_refuses_non_s3(bad):
    with pytest.raises(PlanError):
        parse_s3_location(bad, BUCKET)


def test_image_key_is_the_key_in_the_home_bucket_else_the_uri():
    assert ImageRef(BUCKET, "images/ab/x.jpg").image_key(BUCKET) == "images/ab/x.jpg"
    assert ImageRef("elsewhere", "x.jpg").image_key(BUCKET) == "s3://elsewhere/x.jpg"


@pytest.mark.parametrize(
    ("key", "ok"), [("a.jpg", True), ("A.JPEG", True), ("b.png", True), ("c.txt", False), ("d/", False)]
)
def test_is_image_key(key, ok):
    assert is_image_key(key) is ok


def test_manifest_accepts_uris_keys_and_json_objects_in_order():
    text = "\ufeff# a comment\ns3://b/1.jpg\n\nimages/2.jpg\n" + "\n".join(
        json.dumps(o)
        for o in [{"s3_uri": "s3://b/3.jpg"}, {"image_key": "images/4.jpg", "caption": "x"}, {"key": "5.jpg"}]
    )
    assert parse_manifest(text, BUCKET) == [
        ImageRef("b", "1.jpg"),
        ImageRef(BUCKET, "images/2.jpg"),
        ImageRef("b", "3.jpg"),
        ImageRef(BUCKET, "images/4.jpg"),
        ImageRef(BUCKET, "5.jpg"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("s3://b/1.jpg\n{not json", "line 2: not valid JSON"),
        ('{"caption": "x"}', "line 1: needs one of the fields"),
        ("s3://b/1.jpg\nhttp://x/y.jpg", "line 2: only s3://"),
    ],
)
def test_manifest_errors_name_the_line(text, message):
    with pytest.raises(PlanError, match=message):
        parse_manifest(text, BUCKET)


def test_split_into_sets_one_per_source_split_by_size_and_deduplicated():
    a = refs("a1.jpg", "a2.jpg", "a3.jpg", "a1.jpg")
    b = refs("b1.jpg", "a2.jpg")
    empty: list[ImageRef] = []
    sets = split_into_sets([a, empty, b], max_set_size=2)
    assert sets == [refs("a1.jpg", "a2.jpg"), refs("a3.jpg"), refs("b1.jpg")]


def test_split_refuses_bad_size():
    with pytest.raises(PlanError, match="max_set_size"):
        split_into_sets([refs("a.jpg")], 0)


def test_request_files_hold_batch_size_lines_in_the_model_contract():
    key = "ogiri_batch_caption:manual__x"
    images = refs("images/1.jpg", "images/2.jpg", "images/3.jpg") + refs("k.jpg", bucket="other")
    files = list(request_files(key, "set-000", images, BUCKET, beam_width=4, batch_size=3))
    assert [k for k, _ in files] == [layout.request_file_key(key, "set-000", p) for p in (0, 1)]
    first = [json.loads(line) for line in files[0][1].decode().splitlines()]
    assert first[0] == {"id": "images/1.jpg", "s3_uri": f"s3://{BUCKET}/images/1.jpg", "beam_width": 4}
    assert len(first) == 3
    assert read_request_ids(files[1][1]) == ["s3://other/k.jpg"]


def test_options_are_validated_with_clear_messages():
    TransformOptions(model_name="m", instance_type="ml.m5.xlarge")
    with pytest.raises(PlanError, match="model name"):
        TransformOptions(model_name="", instance_type="ml.m5.xlarge")
    with pytest.raises(PlanError, match="instance type"):
        TransformOptions(model_name="m", instance_type="m5.xlarge")
    with pytest.raises(PlanError, match=r"beam_width must be an integer in \[1, 16\], got 0"):
        TransformOptions(model_name="m", instance_type="ml.m5.xlarge", beam_width=0)
    with pytest.raises(PlanError, match="batch_size"):
        TransformOptions(model_name="m", instance_type="ml.m5.xlarge", batch_size="32")


def test_transform_config_reads_whole_request_files_as_jsonlines():
    key = "ogiri_batch_caption:manual__x"
    s = InputSet(
        name="set-000",
        job_name=layout.transform_job_name(key, "set-000"),
        bucket=BUCKET,
        input_prefix=layout.input_prefix(key, "set-000"),
        output_prefix=layout.output_prefix(key, "set-000"),
        items=3,
        files=1,
    )
    assert InputSet.from_dict(s.to_dict()) == s
    opts = TransformOptions(
        model_name="champ", instance_type="ml.c5.xlarge", instance_count=2, max_concurrent_transforms=4
    )
    cfg = transform_config(s, opts, run_key=key)
    assert cfg["TransformJobName"] == s.job_name and cfg["ModelName"] == "champ"
    assert cfg["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{BUCKET}/{s.input_prefix}"
    assert cfg["TransformInput"]["SplitType"] == "None"
    assert cfg["TransformInput"]["ContentType"] == cfg["TransformOutput"]["Accept"] == "application/jsonlines"
    assert cfg["TransformOutput"]["S3OutputPath"] == f"s3://{BUCKET}/{s.output_prefix}"
    assert cfg["TransformResources"] == {"InstanceType": "ml.c5.xlarge", "InstanceCount": 2}
    assert cfg["MaxConcurrentTransforms"] == 4
    assert {"Key": "ogiri:run-key", "Value": key} in cfg["Tags"]


def test_plan_errors_fail_the_task_without_retries():
    """Issue 13: a nonexistent manifest or a bad option is user input; Airflow must not retry it
    with a delay like a transient error (AirflowFailException fails the task at once)."""
    from airflow.sdk.exceptions import AirflowFailException

    assert issubclass(PlanError, AirflowFailException) and issubclass(PlanError, ValueError)
