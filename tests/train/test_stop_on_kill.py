"""A user who kills a task waiting on a SageMaker job (mark failed or success, clear) stops the job, so
it does not keep running on paid instances: the operator's ``on_kill`` while it waits in the worker,
the trigger's ``on_kill`` while the task is deferred. The stop is made with the worker's keys of the
deployed template (``sagemaker:Stop*Job`` on ``ogiri-*`` jobs), under IAM enforcement."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import pytest

from ogiri.jobs import ReattachingTrainingOperator, StoppingSageMakerTrigger, stop_job
from ogiri.training_logs import TrainingLogTrigger

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "emulator" / "fixtures"))
from sm_helpers import ROLE, make_bucket, make_role, poll, training_request, upload_training_inputs  # noqa: E402

PARAMS = {"EnvironmentName": "test", "BucketName": "ogiri-test", "TableName": "ogiri-test-captions"}
LOG = logging.getLogger(__name__)


@pytest.fixture
def running_job(aws, stack):
    """A training job (named ogiri-*, as the DAGs name theirs) that runs until it is stopped."""
    stack(PARAMS)
    admin = aws.client("sagemaker")
    s3 = aws.client("s3")
    bucket = make_bucket(s3, "sm-stop-test")
    upload_training_inputs(s3, bucket)
    make_role(aws.client("iam"))
    counter = iter(range(100))

    def start() -> str:
        name = f"ogiri-train-stop-{next(counter)}"
        admin.create_training_job(**training_request(name, bucket, {"sleep": 120}, RoleArn=ROLE))
        poll(lambda: admin.describe_training_job(TrainingJobName=name), "TrainingJobStatus", until={"InProgress"})
        return name

    yield start, admin
    for job in admin.list_training_jobs(StatusEquals="InProgress")["TrainingJobSummaries"]:
        admin.stop_training_job(TrainingJobName=job["TrainingJobName"])


def _ends_stopped(admin, name: str) -> None:
    desc, seen = poll(lambda: admin.describe_training_job(TrainingJobName=name), "TrainingJobStatus")
    assert desc["TrainingJobStatus"] == "Stopped", (seen, desc.get("FailureReason"))


def test_operator_on_kill_stops_the_job_it_waits_on(running_job):
    start, admin = running_job
    name = start()
    op = ReattachingTrainingOperator(task_id="train_model", config={"TrainingJobName": name, "RoleArn": ROLE},
                                     region_name="us-east-1", deferrable=False, print_log=False)
    op.on_kill()  # signed with the worker's keys (aws_default)
    _ends_stopped(admin, name)


@pytest.mark.parametrize("trigger_kind", ["waiter", "log-tailing"])
def test_deferred_task_killed_by_a_user_stops_the_job(running_job, trigger_kind):
    start, admin = running_job
    name = start()
    if trigger_kind == "waiter":
        trigger = StoppingSageMakerTrigger(job_name=name, job_type="Training", region_name="us-east-1")
    else:
        trigger = TrainingLogTrigger(job_name=name, region_name="us-east-1")
    classpath, kwargs = trigger.serialize()
    assert classpath.startswith("ogiri.")  # the triggerer rebuilds our class, not the provider's
    asyncio.run(trigger.on_kill())
    _ends_stopped(admin, name)


def test_a_job_that_already_ended_or_never_started_is_left_alone(running_job, aws):
    start, admin = running_job
    name = start()
    admin.stop_training_job(TrainingJobName=name)
    _ends_stopped(admin, name)
    sm = aws.client("sagemaker")
    assert stop_job(sm, "Training", name, LOG) is False
    assert stop_job(sm, "Training", "ogiri-train-never-created", LOG) is False


def test_killing_the_tuning_task_stops_the_tuning_job_and_its_training_jobs(running_job, aws):
    from ogiri.jobs import ReattachingTuningOperator

    _, admin = running_job
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "emulator"))
    from test_sagemaker_tuning import TUNING_TERMINAL, tuning_request

    admin.create_hyper_parameter_tuning_job(**tuning_request("ogiri-hpo-kill", "sm-stop-test", max_jobs=2,
                                                             parallel=1, static={"sleep": 120}))
    poll(lambda: admin.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="ogiri-hpo-kill"),
         "HyperParameterTuningJobStatus", until={"InProgress"})
    op = ReattachingTuningOperator(task_id="tune_model", config={"HyperParameterTuningJobName": "ogiri-hpo-kill"},
                                   region_name="us-east-1")
    op.on_kill()  # as the worker (sagemaker:StopHyperParameterTuningJob on ogiri-* tuning jobs)
    desc, _ = poll(lambda: admin.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="ogiri-hpo-kill"),
                   "HyperParameterTuningJobStatus", until=TUNING_TERMINAL)
    assert desc["HyperParameterTuningJobStatus"] == "Stopped"
    assert desc["TrainingJobStatusCounters"]["InProgress"] == 0


def test_the_provider_trigger_is_swapped_for_the_stopping_one(monkeypatch):
    from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
    from airflow.sdk.exceptions import TaskDeferred

    op = ReattachingTrainingOperator(task_id="train_model", config={"TrainingJobName": "ogiri-x"},
                                     region_name="us-east-1", deferrable=True, print_log=False)
    with pytest.raises(TaskDeferred) as deferred:
        op.defer(trigger=SageMakerTrigger(job_name="ogiri-x", job_type="Training", waiter_delay=7,
                                          waiter_max_attempts=11, region_name="us-east-1"),
                 method_name="execute_complete")
    trigger = deferred.value.trigger
    assert type(trigger) is StoppingSageMakerTrigger
    _, kwargs = trigger.serialize()
    assert kwargs | {"job_name": "ogiri-x", "job_type": "Training", "waiter_delay": 7,
                     "waiter_max_attempts": 11} == kwargs
