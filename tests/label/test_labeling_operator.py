"""GroundTruthLabelingOperator on the emulator, as the template's Airflow worker (IAM enforced):
one job per run however often the task runs, re-attaching while it is in progress; killing stops it;
a failed job fails the task without retries."""

from __future__ import annotations

import time

import pytest
from label_env import BUCKET, TABLE

WORKTEAM = "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/ogiri-test"


@pytest.fixture
def job_config(aws, stack, monkeypatch):
    """The stack deployed, a 3-object rate manifest and template written, the request built."""
    from ogiri.config import get_settings
    from ogiri.label import layout
    from ogiri.label.request import labeling_request, manifest_body, worker_template
    from ogiri_local.environment import load_deploy_stack

    found = stack({"EnvironmentName": "op", "BucketName": BUCKET, "TableName": TABLE, "WorkteamArn": WORKTEAM})
    for name, value in load_deploy_stack().ogiri_settings(found.outputs).items():
        monkeypatch.setenv(name, value)
    job = layout.job_name("ogiri_label:manual__operator")
    s3 = aws.client("s3")
    objects = [{"id": f"o{i}", "task": "rate", "image_key": "k", "caption": f"c{i}",
                "source-ref": f"s3://{BUCKET}/images/00/missing{i}.jpg"} for i in range(3)]
    s3.put_object(Bucket=BUCKET, Key=layout.manifest_key(job), Body=manifest_body(objects))
    s3.put_object(Bucket=BUCKET, Key=layout.template_key(job), Body=worker_template("rate", max_caption_chars=280))
    return labeling_request(job=job, task="rate", bucket=BUCKET, run_key="k", workers_per_object=2,
                            task_time_limit_s=60, task_availability_s=600, settings=get_settings())


def _operator(config, **kwargs):
    from ogiri.label.operators import GroundTruthLabelingOperator

    return GroundTruthLabelingOperator(task_id="label_objects", config=config, check_interval=1, **kwargs)


def test_a_retry_re_attaches_to_the_job_in_progress_and_kill_stops_it(aws, workforce, job_config):
    from airflow.sdk.exceptions import TaskDeferred

    workforce(rule="constant", answer={"fit": 3, "humour": 4}, pace_seconds=5)
    with pytest.raises(TaskDeferred) as first:
        _operator(job_config).execute({})
    assert first.value.trigger.job_name == job_config["LabelingJobName"]
    with pytest.raises(TaskDeferred):  # the retry: the job is found, not created again
        _operator(job_config).execute({})
    sm = aws.client("sagemaker")
    assert [j["LabelingJobName"] for j in sm.list_labeling_jobs()["LabelingJobSummaryList"]] == [
        job_config["LabelingJobName"]]
    _operator(job_config).on_kill()
    deadline = time.monotonic() + 60
    while sm.describe_labeling_job(LabelingJobName=job_config["LabelingJobName"])["LabelingJobStatus"] != "Stopped":
        assert time.monotonic() < deadline, "the killed task's job never stopped"
        time.sleep(0.5)
    result = _operator(job_config).execute({})  # a stopped job's labels are still ingested
    assert result["LabelingJob"]["LabelingJobStatus"] == "Stopped"


def test_a_failed_job_fails_the_task_without_retries(aws, job_config):
    from airflow.sdk.exceptions import AirflowFailException

    job_config["RoleArn"] = job_config["RoleArn"].replace("-labeling", "-sagemaker-execution")
    with pytest.raises(AirflowFailException, match="ended Failed"):
        _operator(job_config, deferrable=False).execute({})
