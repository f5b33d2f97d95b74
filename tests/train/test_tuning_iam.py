"""Issue 17: ``tune_model`` (the re-attaching ``SageMakerTuningOperator``) under IAM enforcement, as the
template's worker: it starts a real tuning job in the emulator, a retry re-attaches instead of starting
another, the run's calls on it are granted, and a principal without the grants is refused."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "emulator" / "fixtures"))
from sm_helpers import sourcedir, training_request  # noqa: E402

PARAMS = {"EnvironmentName": "test", "BucketName": "ogiri-test", "TableName": "ogiri-test-captions"}
BUCKET = PARAMS["BucketName"]


def tuning_config(name: str, role: str) -> dict:
    job = training_request("unused", BUCKET, {"epochs": 2}, RoleArn=role)
    job["HyperParameters"]["sagemaker_submit_directory"] = json.dumps(f"s3://{BUCKET}/code/tune/sourcedir.tar.gz")
    job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = f"s3://{BUCKET}/datasets/tune/train/"
    job["OutputDataConfig"] = {"S3OutputPath": f"s3://{BUCKET}/models/"}
    job["AlgorithmSpecification"]["MetricDefinitions"].append({"Name": "score", "Regex": r"score=([0-9.]+)"})
    definition = {k: job[k] for k in ("AlgorithmSpecification", "RoleArn", "InputDataConfig", "OutputDataConfig",
                                      "ResourceConfig", "StoppingCondition")}
    definition["StaticHyperParameters"] = job["HyperParameters"]
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Random",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "score"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "scale", "MinValue": "1", "MaxValue": "3"}]},
            "TrainingJobEarlyStoppingType": "Off",
        },
        "TrainingJobDefinition": definition,
        "Tags": [{"Key": "ogiri:run-key", "Value": "test"}],
    }


@pytest.fixture
def worker_stack(aws, stack):
    found = stack(PARAMS)
    s3 = aws.client("s3")  # admin: the inputs a run would have uploaded
    s3.put_object(Bucket=BUCKET, Key="code/tune/sourcedir.tar.gz", Body=sourcedir())
    s3.put_object(Bucket=BUCKET, Key="datasets/tune/train/a.txt", Body=b"one\ntwo\n")
    return found


def operator(config: dict, conn: str = "aws_default"):
    from ogiri.jobs import ReattachingTuningOperator

    return ReattachingTuningOperator(task_id="tune_model", config=config, aws_conn_id=conn, region_name="us-east-1",
                                     deferrable=False, check_interval=1)


def test_tuning_runs_as_the_worker_and_a_retry_reattaches_to_the_same_job(aws, worker_stack, monkeypatch):
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    from ogiri.aws import AccessDenied

    role = worker_stack.outputs["OgiriSageMakerRoleArn"]
    config = tuning_config("ogiri-hpo-iamtest", role)
    result = operator(json.loads(json.dumps(config))).execute({})
    described = result["Tuning"]
    assert described["HyperParameterTuningJobStatus"] == "Completed", described.get("FailureReason")
    assert described["TrainingJobStatusCounters"]["Completed"] == 2
    best = described["BestTrainingJob"]["TrainingJobName"]

    again = operator(json.loads(json.dumps(config))).execute({})  # the retry: describe first, start nothing
    assert again["Tuning"]["BestTrainingJob"]["TrainingJobName"] == best
    admin = aws.client("sagemaker")
    assert [j["HyperParameterTuningJobName"] for j in admin.list_hyper_parameter_tuning_jobs()[
        "HyperParameterTuningJobSummaries"]] == ["ogiri-hpo-iamtest"]
    assert len(admin.list_training_jobs()["TrainingJobSummaries"]) == 2

    # what record_training does next, with the worker's keys: list the trials, describe the best
    sm = AwsBaseHook("aws_default", client_type="sagemaker").conn
    rows = sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName="ogiri-hpo-iamtest")
    assert best in {r["TrainingJobName"] for r in rows["TrainingJobSummaries"]}
    assert sm.describe_training_job(TrainingJobName=best)["TrainingJobStatus"] == "Completed"

    # another team's name is outside the worker's grants; the producer may not even look
    with pytest.raises(AccessDenied) as err:
        operator(tuning_config("other-team-hpo", role)).execute({})
    assert "sagemaker:DescribeHyperParameterTuningJob" in err.value.response["Error"]["Message"]
    monkeypatch.setenv("AIRFLOW_CONN_PRODUCER_AWS",
                       json.dumps(aws.aws_connection(keys=worker_stack.principals["producer"])))
    with pytest.raises(AccessDenied):
        operator(config, conn="producer_aws").execute({})
