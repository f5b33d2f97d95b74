"""The Amazon provider's SageMaker hook and operator work against the emulator unchanged."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).with_name("fixtures")))
from sm_helpers import make_bucket, training_request, upload_training_inputs  # noqa: E402


@pytest.fixture
def bucket(aws):
    s3 = aws.client("s3")
    name = make_bucket(s3)
    upload_training_inputs(s3, name)
    return name


def test_training_operator_waits_for_completion(bucket):
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTrainingOperator

    train = SageMakerTrainingOperator(
        task_id="train",
        config=training_request("op-train", bucket, {"epochs": 2}),
        wait_for_completion=True,
        print_log=False,
        check_interval=1,
        aws_conn_id="aws_default",
    )
    result = train.execute({})
    training = result["Training"]
    assert training["TrainingJobName"] == "op-train"
    assert training["TrainingJobStatus"] == "Completed"
    assert training["ModelArtifacts"]["S3ModelArtifacts"].endswith("/op-train/output/model.tar.gz")

    # A retry of the task finds the job and, with action_if_job_exists="fail", refuses a second one.
    retry = SageMakerTrainingOperator(
        task_id="retry",
        config=training_request("op-train", bucket, {"epochs": 2}),
        action_if_job_exists="fail",
        aws_conn_id="aws_default",
    )
    with pytest.raises(Exception, match="already exists"):
        retry.execute({})


def test_training_operator_raises_on_failed_job(bucket):
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTrainingOperator

    crash = SageMakerTrainingOperator(
        task_id="crash",
        config=training_request("op-crash", bucket, {"fail": "exploded"}),
        wait_for_completion=True,
        print_log=False,
        check_interval=1,
        aws_conn_id="aws_default",
    )
    with pytest.raises(Exception, match="ValueError: exploded"):
        crash.execute({})


def test_hook_prints_cloudwatch_logs_of_training_job(bucket, caplog):
    from airflow.providers.amazon.aws.hooks.sagemaker import LogState, SageMakerHook

    hook = SageMakerHook(aws_conn_id="aws_default")
    hook._log = logging.getLogger("sagemaker-hook-test")
    hook.get_conn().create_training_job(**training_request("hook-logs", bucket, {"epochs": 2}))
    positions: dict = {}
    state, description = LogState.TAILING, hook.describe_training_job("hook-logs")
    deadline = time.monotonic() + 120
    with caplog.at_level(logging.INFO, logger="sagemaker-hook-test"):
        while state != LogState.COMPLETE and time.monotonic() < deadline:
            # last_describe_job_call=-inf makes the hook describe the job on every call (it waits 30 s).
            state, description, _ = hook.describe_training_job_with_log(
                "hook-logs", positions, [], 1, state, description, float("-inf")
            )
            time.sleep(0.2)
    assert state == LogState.COMPLETE
    assert description["TrainingJobStatus"] == "Completed"
    messages = [r.getMessage() for r in caplog.records]
    assert "rows=3" in messages and "epoch=2 train_loss=0.5000 val_acc=0.70" in messages and "done" in messages
    assert messages.count("done") == 1  # positions keep the hook from printing a line twice
