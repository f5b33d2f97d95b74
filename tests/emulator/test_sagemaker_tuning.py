"""Hyperparameter tuning jobs in the emulator run real training jobs (boto3 → localaws), issue 17."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).with_name("fixtures")))
from sm_helpers import make_bucket, make_role, poll, training_request, upload_training_inputs  # noqa: E402

TUNING_TERMINAL = ("Completed", "Failed", "Stopped")


@pytest.fixture
def sm(aws):
    s3 = aws.client("s3")
    bucket = make_bucket(s3)
    make_role(aws.client("iam"))
    upload_training_inputs(s3, bucket)
    return aws, s3, aws.client("sagemaker"), bucket


def tuning_request(name: str, bucket: str, *, max_jobs: int | None = 3, parallel: int = 2, strategy: str = "Random",
                   static: dict | None = None, ranges: dict | None = None, **config) -> dict:
    """A tuning job over the fixture script: tune ``scale``, maximise ``score`` (= scale x epochs)."""
    job = training_request("unused", bucket, {"epochs": 2, **(static or {})})
    job["AlgorithmSpecification"]["MetricDefinitions"].append({"Name": "score", "Regex": r"score=([0-9.]+)"})
    definition = {k: job[k] for k in ("AlgorithmSpecification", "RoleArn", "InputDataConfig", "OutputDataConfig",
                                      "ResourceConfig", "StoppingCondition")}
    definition["StaticHyperParameters"] = job["HyperParameters"]
    limits = {"MaxParallelTrainingJobs": parallel}
    if max_jobs is not None:
        limits["MaxNumberOfTrainingJobs"] = max_jobs
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy,
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "score"},
            "ResourceLimits": limits,
            "ParameterRanges": ranges if ranges is not None else {
                "ContinuousParameterRanges": [{"Name": "scale", "MinValue": "0.5", "MaxValue": "5.0",
                                               "ScalingType": "Linear"}]},
            "TrainingJobEarlyStoppingType": "Off",
            **config,
        },
        "TrainingJobDefinition": definition,
    }


def describe(client, name):
    return lambda: client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)


def test_a_tuning_job_runs_three_real_training_jobs_two_at_a_time_and_names_the_best(sm):
    aws, s3, client, bucket = sm
    req = tuning_request("tune-ok", bucket, static={"sleep": 1.0}, RandomSeed=7)
    client.create_hyper_parameter_tuning_job(**req)
    desc, seen = poll(describe(client, "tune-ok"), "HyperParameterTuningJobStatus", until=TUNING_TERMINAL)
    assert seen[0] == "InProgress" and seen[-1] == "Completed", desc.get("FailureReason")
    assert desc["TrainingJobStatusCounters"] == {"Completed": 3, "InProgress": 0, "RetryableError": 0,
                                                 "NonRetryableError": 0, "Stopped": 0}
    assert desc["ObjectiveStatusCounters"] == {"Succeeded": 3, "Pending": 0, "Failed": 0}
    assert desc["HyperParameterTuningEndTime"] >= desc["CreationTime"]

    jobs = client.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune-ok")
    rows = jobs["TrainingJobSummaries"]
    names = [r["TrainingJobName"] for r in rows]
    assert names == sorted(names) and len(names) == 3  # default order: Name, ascending
    assert all(n.startswith("tune-ok-00") and len(n.rsplit("-", 1)[1]) == 8 for n in names)
    # each one a real training job that ran our script with its sampled scale
    scales = {}
    for row in rows:
        job = client.describe_training_job(TrainingJobName=row["TrainingJobName"])
        assert job["TrainingJobStatus"] == "Completed"
        scale = float(row["TunedHyperParameters"]["scale"])
        assert 0.5 <= scale <= 5.0 and row["TuningJobName"] == "tune-ok"
        assert json.loads(job["HyperParameters"]["epochs"]) == 2 and job["HyperParameters"]["scale"] == \
            row["TunedHyperParameters"]["scale"]
        metric = row["FinalHyperParameterTuningJobObjectiveMetric"]
        assert metric["MetricName"] == "score" and metric["Value"] == pytest.approx(2 * scale, abs=1e-3)
        scales[row["TrainingJobName"]] = scale
    assert len(set(scales.values())) == 3  # sampled, not one point three times

    best = desc["BestTrainingJob"]
    assert best["TrainingJobName"] == max(scales, key=scales.get)
    assert best["ObjectiveStatus"] == "Succeeded" and best["TrainingJobStatus"] == "Completed"
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == pytest.approx(2 * max(scales.values()),
                                                                                        abs=1e-3)
    # at most two at once: the third job was created only after one of the first two had ended
    by_creation = sorted(rows, key=lambda r: r["CreationTime"])
    assert by_creation[2]["CreationTime"] >= min(r["TrainingEndTime"] for r in by_creation[:2])
    assert by_creation[1]["CreationTime"] < by_creation[0]["TrainingEndTime"]  # ...and two did run together

    by_value = client.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="tune-ok", SortBy="FinalObjectiveMetricValue", SortOrder="Descending",
        MaxResults=2)
    assert by_value["TrainingJobSummaries"][0]["TrainingJobName"] == best["TrainingJobName"]
    assert len(by_value["TrainingJobSummaries"]) == 2 and by_value["NextToken"]

    # the emulator's page of the tuning job (the task's "SageMaker job" link in local mode)
    import urllib.request

    with urllib.request.urlopen(f"{aws.url}/_localaws/sagemaker/tuning/tune-ok?region=us-east-1", timeout=10) as r:
        page = r.read().decode()
    assert "Completed" in page and best["TrainingJobName"] in page

    # the same seed samples the same points
    again = copy.deepcopy(req)
    again["HyperParameterTuningJobName"] = "tune-again"
    again["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"] = 1
    client.create_hyper_parameter_tuning_job(**again)
    poll(describe(client, "tune-again"), "HyperParameterTuningJobStatus", until=TUNING_TERMINAL)
    first = client.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="tune-again")["TrainingJobSummaries"][0]["TunedHyperParameters"]
    assert first == min(rows, key=lambda r: r["TrainingJobName"])["TunedHyperParameters"]


def test_failed_training_jobs_are_counted_and_a_tuning_job_without_any_objective_fails(sm):
    aws, s3, client, bucket = sm
    ranges = {"CategoricalParameterRanges": [{"Name": "fail", "Values": ["boom", "bang"]}]}
    client.create_hyper_parameter_tuning_job(**tuning_request("tune-bad", bucket, max_jobs=None, parallel=2,
                                                              strategy="Grid", ranges=ranges))
    desc, _ = poll(describe(client, "tune-bad"), "HyperParameterTuningJobStatus", until=TUNING_TERMINAL)
    assert desc["HyperParameterTuningJobStatus"] == "Failed"
    assert desc["TrainingJobStatusCounters"]["NonRetryableError"] == 2
    assert desc["ObjectiveStatusCounters"] == {"Succeeded": 0, "Pending": 0, "Failed": 2}
    assert "BestTrainingJob" not in desc and "score" in desc["FailureReason"]
    rows = client.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune-bad")[
        "TrainingJobSummaries"]
    assert sorted(r["TunedHyperParameters"]["fail"] for r in rows) == ["bang", "boom"]  # the grid, each once
    assert all("boom" in r["FailureReason"] or "bang" in r["FailureReason"] for r in rows)
    assert client.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="tune-bad", SortBy="FinalObjectiveMetricValue")["TrainingJobSummaries"] == []


def test_stop_stops_the_running_training_jobs(sm):
    aws, s3, client, bucket = sm
    client.create_hyper_parameter_tuning_job(**tuning_request("tune-stop", bucket, max_jobs=4, parallel=1,
                                                              static={"sleep": 60}))
    poll(lambda: {"n": str(len(client.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="tune-stop")["TrainingJobSummaries"]))}, "n", until=("1",))
    client.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune-stop")
    desc, seen = poll(describe(client, "tune-stop"), "HyperParameterTuningJobStatus", until=TUNING_TERMINAL)
    assert seen[-1] == "Stopped" and ("Stopping" in seen or seen == ["Stopped"])
    assert desc["TrainingJobStatusCounters"]["Stopped"] == 1 and desc["TrainingJobStatusCounters"]["InProgress"] == 0
    rows = client.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune-stop")[
        "TrainingJobSummaries"]
    assert [r["TrainingJobStatus"] for r in rows] == ["Stopped"]  # nothing launched after the stop
    with pytest.raises(ClientError) as err:
        client.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune-stop")
    assert err.value.response["Error"]["Code"] == "ValidationException"


def _refused(client, req) -> ClientError:
    with pytest.raises(ClientError) as err:
        client.create_hyper_parameter_tuning_job(**req)
    return err.value


def test_bad_requests_are_refused_as_sagemaker_refuses_them_and_nothing_starts(sm):
    aws, s3, client, bucket = sm
    client.create_hyper_parameter_tuning_job(**tuning_request("tune-dup", bucket, max_jobs=1, parallel=1))
    dup = _refused(client, tuning_request("tune-dup", bucket))
    assert dup.response["Error"]["Code"] == "ResourceInUse"
    assert "A hyperparameter tuning job with the name, tune-dup, already exists" in str(dup)

    cases = {
        "x" * 33: ("hyperParameterTuningJobName", {}),
        "tune-range": ("must be less than or equal", {"ranges": {"IntegerParameterRanges": [
            {"Name": "epochs2", "MinValue": "5", "MaxValue": "1"}]}}),
        "tune-log": ("Logarithmic scaling", {"ranges": {"ContinuousParameterRanges": [
            {"Name": "scale", "MinValue": "0", "MaxValue": "1", "ScalingType": "Logarithmic"}]}}),
        "tune-metric": ("is not defined", {"HyperParameterTuningJobObjective": {"Type": "Maximize",
                                                                                "MetricName": "val_cider"}}),
        "tune-static": ("both static and tunable", {"ranges": {"IntegerParameterRanges": [
            {"Name": "epochs", "MinValue": "1", "MaxValue": "3"}]}}),
        "tune-hyperband": ("does not emulate the Hyperband", {"strategy": "Hyperband"}),
        "tune-grid": ("only CategoricalParameterRanges", {"strategy": "Grid", "max_jobs": None}),
    }
    for name, (words, overrides) in cases.items():
        err = _refused(client, tuning_request(name, bucket, **overrides))
        assert err.response["Error"]["Code"] == "ValidationException" and words in str(err), (name, str(err))
    listed = {j["HyperParameterTuningJobName"] for j in client.list_hyper_parameter_tuning_jobs()[
        "HyperParameterTuningJobSummaries"]}
    assert listed == {"tune-dup"}

    for call in (client.describe_hyper_parameter_tuning_job, client.stop_hyper_parameter_tuning_job,
                 client.list_training_jobs_for_hyper_parameter_tuning_job):
        with pytest.raises(ClientError) as err:
            call(HyperParameterTuningJobName="tune-nope")
        assert err.value.response["Error"]["Code"] == "ResourceNotFound"
        assert "Amazon SageMaker can't find a tuning job called tune-nope" in str(err.value)
