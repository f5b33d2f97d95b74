"""Units of the labeling pipeline: selection, manifest, answer validation, accounting, report, ledger."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from label_env import BUCKET, TABLE

from ogiri import catalog
from ogiri.label import layout
from ogiri.label.answers import caption_problem, counts, judge, judge_all, parse_output_manifest
from ogiri.label.report import histogram, pictures, summarize, task_times
from ogiri.label.request import labeling_request, manifest_body, worker_template
from ogiri.label.selection import Choice, SelectionError, check_dates, select

A = "a" * 64
B = "b" * 64
C = "c" * 64


def _put(dynamodb, image_key, caption, day="2026-12-06"):
    dynamodb.put_item(TableName=TABLE, Item={
        catalog.IMAGE_KEY: {"S": image_key}, catalog.CAPTION_ID: {"S": catalog.caption_id(caption)},
        catalog.CAPTION: {"S": caption}, catalog.INGEST_DATE: {"S": day},
        catalog.S3_URI: {"S": f"s3://{BUCKET}/{catalog.image_s3_key(image_key)}"}, catalog.WIDTH: {"N": "64"}})


def test_caption_selection_takes_images_with_too_few_captions(moto_aws):
    db = moto_aws["dynamodb"]
    _put(db, A, "one")
    _put(db, B, "one")
    _put(db, B, "two")
    _put(db, C, "other day", day="2026-12-01")
    objects = select(Choice("caption", 10, ("2026-12-06",), min_captions=2), dynamodb=db, table=TABLE,
                     bucket=BUCKET, run_key="ogiri_label:r1")
    assert [o["image_key"] for o in objects] == [A]
    assert objects[0]["source-ref"] == f"s3://{BUCKET}/{catalog.image_s3_key(A)}"


def test_rate_selection_lowest_batch_scores_then_a_deterministic_audit_sample(moto_aws):
    db = moto_aws["dynamodb"]
    for i in range(10):
        _put(db, f"{i:064x}", f"caption {i}")
    batch = [{"image_key": A, "caption": "bad", "score": -9.0, "model_name": "m"},
             {"image_key": B, "caption": "meh", "score": -5.0, "model_name": "m"},
             {"image_key": C, "caption": "ok", "score": -1.0, "model_name": "m"}]
    choice = Choice("rate", 4, ("2026-12-06",), audit_fraction=0.5)

    def pick(key):
        return select(choice, dynamodb=db, table=TABLE, bucket=BUCKET, run_key=key, batch_rows=batch)

    first = pick("ogiri_label:r1")
    assert [o["caption"] for o in first[:2]] == ["bad", "meh"]
    assert [o["origin"] for o in first] == ["batch", "batch", "audit", "audit"]
    assert pick("ogiri_label:r1") == first


def test_batch_captions_are_rated_on_the_image_their_row_names(moto_aws):
    """``ogiri_batch_caption`` records the image's S3 key (``images/ab/<sha>.jpg``), or the full URI of an
    image in another bucket, as ``image_key``: the worker must see that very image."""
    batch = [{"image_key": catalog.image_s3_key(A), "caption": "bad", "score": -9.0, "model_name": "m"},
             {"image_key": "s3://elsewhere/photos/b.jpg", "caption": "meh", "score": -5.0, "model_name": "m"}]
    objects = select(Choice("rate", 2, ("2026-12-06",), audit_fraction=0.0), dynamodb=moto_aws["dynamodb"],
                     table=TABLE, bucket=BUCKET, run_key="ogiri_label:r1", batch_rows=batch)
    assert [o["source-ref"] for o in objects] == [f"s3://{BUCKET}/{catalog.image_s3_key(A)}",
                                                   "s3://elsewhere/photos/b.jpg"]
    assert [o["image_key"] for o in objects] == [catalog.image_s3_key(A), "s3://elsewhere/photos/b.jpg"]


def test_bad_source_date_is_refused():
    with pytest.raises(SelectionError):
        check_dates(["2026-13-01"])


def test_manifest_template_and_request():
    objects = [{"id": f"{A}:x", "task": "rate", "image_key": A, "caption_id": "x", "caption": "a cat",
                "source-ref": "s3://b/images/aa/a.jpg", "origin": "batch"}]
    line = json.loads(manifest_body(objects))
    assert line == {"source-ref": "s3://b/images/aa/a.jpg", "ogiri-id": f"{A}:x", "ogiri-task": "rate",
                    "image-key": A, "caption-id": "x", "caption": "a cat"}
    assert 'name="fit"' in worker_template("rate", max_caption_chars=280)
    assert 'max-length="280"' in worker_template("caption", max_caption_chars=280)

    class S:
        labeling_role_arn, workteam_arn = "arn:role", "arn:team"
        labeling_pre_lambda_arn, labeling_consolidation_lambda_arn = "arn:pre", "arn:acs"

    job = layout.job_name("ogiri_label:manual__1")
    req = labeling_request(job=job, task="rate", bucket="b", run_key="k", workers_per_object=3, task_time_limit_s=60,
                           task_availability_s=600, settings=S)
    assert req["LabelingJobName"] == job == layout.job_name("ogiri_label:manual__1") and len(job) <= 63
    assert req["HumanTaskConfig"]["NumberOfHumanWorkersPerDataObject"] == 3
    assert req["OutputConfig"]["S3OutputPath"] == f"s3://b/labeling/{job}/output"


def _obj(task="caption", i=0):
    return {"id": f"o{i}", "task": task, "image_key": A, "caption_id": "c", "caption": "x", "origin": "audit",
            "source-ref": "s3://b/i.jpg"}


@pytest.mark.parametrize(("text", "reason"), [
    ("", "empty_answer"), ("   ", "empty_answer"), ("x" * 281, "caption_too_long"), ("a\x1bb", "caption_control_character"),
    ("a\u202eb", "caption_bidi_control"), ("\u200b\u200d", "caption_invisible"), (3, "malformed_answer"),
    ("a fine caption", None)])
def test_caption_rules(text, reason):
    assert caption_problem(text, 280) == reason


def test_judge_caption_keeps_valid_captions_and_rejects_the_rest():
    label = {"captions": [{"workerId": "w1", "caption": "a cat on a mat"}, {"workerId": "w2", "caption": "a cat"},
                          {"workerId": "w3", "caption": "x" * 400}],
             "ratings": [], "invalid": [{"workerId": "w4", "reason": "answer is not JSON"}]}
    out = judge(_obj(), {layout.LABEL_ATTRIBUTE: label}, max_caption_chars=280)
    assert out.status == "labeled"
    assert [c for c, _ in out.captions] == ["a cat on a mat", "a cat"]
    assert 0 < out.agreement < 1
    assert sorted(r["reason"] for r in out.rejects) == ["caption_too_long", "malformed_answer"]


def test_judge_rating_medians_and_bad_answers():
    label = {"ratings": [{"workerId": "w1", "fit": 4, "humour": 2}, {"workerId": "w2", "fit": 5, "humour": 3},
                         {"workerId": "w3", "fit": 9, "humour": 3}], "captions": [], "invalid": []}
    out = judge(_obj("rate"), {layout.LABEL_ATTRIBUTE: label}, max_caption_chars=280)
    assert (out.fit, out.humour, out.rating) == (4.5, 2.5, 3.5)
    assert out.agreement < 1 and [r["reason"] for r in out.rejects] == ["malformed_answer"]


def test_accounting_labeled_rejected_expired():
    objs = [_obj("rate", i) for i in range(3)]
    lines = parse_output_manifest("\n".join([
        json.dumps({"ogiri-id": "o0", layout.LABEL_ATTRIBUTE: {"ratings": [{"workerId": "w", "fit": 3, "humour": 3}]}}),
        json.dumps({"ogiri-id": "o1", layout.LABEL_ATTRIBUTE: {"ratings": [], "invalid": [{"workerId": "w"}]}}),
        "{not json", json.dumps({"ogiri-id": "o2", f"{layout.LABEL_ATTRIBUTE}-metadata": {
            "failure-reason": "ClientError: The data object expired: 0 of 3 workers submitted"}}),
        json.dumps({"ogiri-id": "o3", f"{layout.LABEL_ATTRIBUTE}-metadata": {
            "failure-reason": "ClientError: The annotation consolidation Lambda failed"}})]))
    outcomes = judge_all([*objs, _obj("rate", 3), _obj("rate", 4)], lines, max_caption_chars=280)
    assert counts(outcomes) == {"in": 5, "labeled": 1, "rejected": 2, "expired": 2}
    assert [r["reason"] for r in outcomes[3].rejects] == ["labeling_failed"]


def test_report_summary_and_pictures():
    label = {"ratings": [{"workerId": "w1", "fit": 4, "humour": 2}, {"workerId": "w2", "fit": 2, "humour": 1}]}
    outcomes = [judge(_obj("rate", i), {layout.LABEL_ATTRIBUTE: label}, max_caption_chars=280) for i in range(2)]
    times = task_times([{"answers": [{"timeSpentInSeconds": 12.5}, {"acceptanceTime": "2026-12-07T10:00:00Z",
                                                                      "submissionTime": "2026-12-07T10:01:00Z"}]}])
    summary = summarize(job="j", task="rate", status="Completed", outcomes=outcomes, objects=counts(outcomes),
                        times=times)
    assert summary["objects"] == {"in": 2, "labeled": 2, "rejected": 0, "expired": 0}
    assert summary["per_worker"] == {"w1": 2, "w2": 2}
    assert summary["ratings"]["fit"] == {"1": 0, "2": 2, "3": 0, "4": 2, "5": 0}
    assert summary["time_per_task_s"]["median"] == pytest.approx(36.25)
    assert summary["gallery"]["best"][0]["rating"] == 2.25
    for body in pictures(summary).values():
        ET.fromstring(body)
    assert histogram([0, 0.5, 1.0], [0, 0.5, 1.0]) == [1, 2]


def test_ledger_labeling_job_row_and_batch_ratings(sqlite_ledger):
    from ogiri.ledger import BatchCaption, LabelingJob, LedgerError

    sqlite_ledger.record_batch_captions([BatchCaption(image_key=A, model_name="m", caption="x", score=-1.0,
                                                      job_name="t", run_key="r")])
    assert [r["image_key"] for r in sqlite_ledger.latest_batch_captions()] == [A]
    sqlite_ledger.rate_batch_captions([{"image_key": A, "model_name": "m", "rating_fit": 4, "rating_humour": 2,
                                        "rating": 3.0, "rating_count": 3, "rating_job": "j"}])
    assert sqlite_ledger.latest_batch_captions()[0]["rating"] == 3.0
    sqlite_ledger.record_labeling_job(LabelingJob(job_name="j", task_type="rate", status="Completed", objects_in=3,
                                                  labeled=1, rejected=1, expired=1, mean_agreement=0.5))
    assert sqlite_ledger.get_labeling_job("j")["expired"] == 1
    with pytest.raises(LedgerError):
        LabelingJob(job_name="j", task_type="rate", status="Completed", objects_in=3, labeled=1)


def test_demo_summary_lines():
    from ogiri_local.labeling_demo import format_summary

    label = {"ratings": [{"workerId": "w1", "fit": 4, "humour": 2}]}
    outcomes = [judge({**_obj("rate"), "caption": "a cat"}, {layout.LABEL_ATTRIBUTE: label}, max_caption_chars=280)]
    text = format_summary(summarize(job="j", task="rate", status="Completed", outcomes=outcomes,
                                    objects=counts(outcomes), times=[]))
    assert "1 objects = 1 labeled + 0 rejected + 0 expired" in text and "'a cat'" in text


def test_empty_source_dates_mean_the_lookback_days_before_the_run():
    from datetime import UTC, datetime

    from ogiri.label.params import form_defaults
    from ogiri.label.tasks import choice_of
    from ogiri.runs import Run

    run = Run.for_key("ogiri_label:scheduled__x", form_defaults(lookback_days=3))
    run.logical_date = datetime(2026, 3, 9, 6, tzinfo=UTC)
    assert choice_of(run).dates == ("2026-03-06", "2026-03-07", "2026-03-08")
    run.params["source_dates"] = ["2026-01-02"]
    assert choice_of(run).dates == ("2026-01-02",)
