"""``ogiri_train`` end to end with ``dag.test()`` against the emulator and synthetic data.

One module, four runs in order (they share the endpoint, like consecutive nights):

1. first run: trains (its first ``train_model`` attempt fails after the job started, the retry
   re-attaches: still one training job), evaluates, deploys (no champion), endpoint answers captions;
2. a deliberately weaker candidate: deployment skipped with the reason in the ledger, champion serves;
3. a candidate whose model cannot load: the endpoint rolls back, the run fails, and the old model
   answers every request made during the run;
4. too little new data: the run skips at ``build_dataset`` with the reason in the ledger.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

FAST = {
    "encoder": "resnet18",
    "image_size": 64,
    "batch_size": 32,
    "lr": 0.003,
    "epochs": 4,
    "extra_hyperparameters": {"grid": 2, "embed_dim": 96, "hidden_dim": 192, "num_workers": 0, "max_len": 24,
                              "beam_width": 2},
    "min_new_images": 0,
    "smoke_samples": 3,
    "smoke_max_latency_seconds": 60,
    "poll_seconds": 1,
}
DATES = [datetime(2026, 5, d, tzinfo=UTC) for d in (1, 2, 3)]


@pytest.fixture(scope="module")
def stack(emulator, airflow_db, tmp_path_factory):
    """infra/ogiri.yaml deployed into the reset emulator (IAM enforced): the DAG runs as the template's
    worker and its jobs and endpoint as the template's execution role. Synthetic captions seeded with
    the admin keys (as ingest would have written them), ledger on SQLite, the DAG parsed."""
    from ogiri.config import Settings, get_settings
    from ogiri_captioner.synthetic import generate
    from ogiri_local.environment import load_deploy_stack

    emulator.reset()
    emulator.enforce_iam(True)
    deploy_stack, admin = load_deploy_stack(), {"endpoint_url": emulator.url, "region": "us-east-1"}
    defaults = Settings()
    outputs = deploy_stack.deploy("ogiri-train-e2e", {"EnvironmentName": "e2e", "BucketName": defaults.bucket,
                                                      "TableName": defaults.table}, poll_s=0.1, timeout_s=60, **admin)
    worker = deploy_stack.local_principals(outputs, "ogiri-train-e2e", **admin)["airflow-worker"]
    tmp = tmp_path_factory.mktemp("train-e2e")
    env = {
        **deploy_stack.ogiri_settings(outputs),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(emulator.aws_connection(keys=worker)),
        "OGIRI_SAGEMAKER_POLL_SECONDS": "1",
        "AIRFLOW_CONN_OGIRI_LEDGER": json.dumps({"conn_type": "sqlite", "host": str(tmp / "ledger.db")}),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    settings = get_settings()
    s3, ddb = emulator.client("s3"), emulator.client("dynamodb")
    data = generate(tmp / "synthetic", n=90, seed=3, size=64)
    for split in ("train", "val", "test"):
        for line in (data[split] / f"{split}.jsonl").read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            s3.put_object(Bucket=settings.bucket, Key=rec["image"], Body=(data["root"] / rec["image"]).read_bytes())
            ddb.put_item(TableName=settings.table, Item={
                "ImageKey": {"S": rec["image_key"]},
                "CaptionId": {"S": f"c{rec['caption_id']}"},
                "Caption": {"S": rec["caption"]},
                "S3Uri": {"S": f"s3://{settings.bucket}/{rec['image']}"},
                "Labels": {"L": [{"M": {"Name": {"S": n}, "Confidence": {"N": "99"}}} for n in rec["labels"]]},
                "IngestDate": {"S": "2026-05-01"},
            })

    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags" / "ogiri_train.py"))
    assert bag.import_errors == {}
    dag = bag.dags["ogiri_train"]
    dag.task_dict["train_model"].retry_delay = timedelta(seconds=1)
    try:
        yield {"emu": emulator, "dag": dag, "settings": settings, "sm": emulator.client("sagemaker"),
               "runtime": emulator.client("sagemaker-runtime"), "s3": s3, "data": data}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def states(dr) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dr.get_task_instances()}


def ledger():
    from ogiri.ledger import Ledger

    return Ledger.from_connection()


def invoke(stack) -> str:
    image = next((stack["data"]["images"]).rglob("*.jpg")).read_bytes()
    resp = stack["runtime"].invoke_endpoint(
        EndpointName=stack["settings"].endpoint_name, ContentType="application/json",
        Body=json.dumps({"image_b64": base64.b64encode(image).decode()}),
    )
    return json.loads(resp["Body"].read())["caption"]


def training_jobs(stack) -> list[str]:
    return [j["TrainingJobName"] for j in stack["sm"].list_training_jobs()["TrainingJobSummaries"]]


def fail_first_describe_after_job_starts(stack) -> threading.Thread:
    """Once the training job exists, make the next DescribeTrainingJob fail (an error botocore does
    not retry and that is not AccessDenied, which fails without retry), so the ``train_model``
    attempt that created the job fails and Airflow retries the task."""

    def run():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not training_jobs(stack):
            time.sleep(0.2)
        stack["emu"].inject(service="sagemaker", operation="DescribeTrainingJob", error="ValidationException",
                            message="injected: the describe failed", count=1)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _log_lines(capfd) -> list[str]:
    """What Airflow's (structlog) task and trigger loggers printed so far."""
    out, err = capfd.readouterr()
    return (out + err).splitlines()


def test_first_run_trains_evaluates_deploys_and_a_retry_reattaches(stack, capfd):
    from ogiri.naming import run_key
    from ogiri.train.configs import RunNames

    injector = fail_first_describe_after_job_starts(stack)
    dr = stack["dag"].test(logical_date=DATES[0], run_conf=FAST)
    injector.join(timeout=5)
    # Issue 13: while the deferred train_model waits, the job's own epoch lines reach the log
    # (TrainingLogTrigger tails its CloudWatch streams), then one line of final metrics.
    lines = _log_lines(capfd)
    epochs = [line for line in lines if "[algo-1" in line and "train_loss=" in line]
    assert [f"epoch={n} " in e for n, e in enumerate(epochs, 1)] == [True] * FAST["epochs"], epochs
    assert any("training job " in line and " Completed: " in line and "val_cider=" in line for line in lines)
    st = states(dr)
    assert dr.state == "success", st
    assert st["create_endpoint"] == "success" and st["update_endpoint"] == "skipped"
    assert st["record_skip"] == "skipped" and st["register_model"] == "success"
    assert st["skip_training"] == "skipped", "a run that trains must not show the no-training branch"

    train_ti = next(ti for ti in dr.get_task_instances() if ti.task_id == "train_model")
    assert train_ti.try_number == 2, "the first attempt should have failed after starting the job"
    names = RunNames.for_run(run_key("ogiri_train", dr.run_id, dr.logical_date))
    assert training_jobs(stack) == [names.training_job]  # the retry re-attached, no second job

    book = ledger()
    run = book.get_training_run(names.training_job)
    assert run["status"] == "Completed" and run["billable_seconds"] > 0 and run["cost_usd"] > 0
    assert run["instance_type"] == "ml.g5.xlarge" and run["hyperparameters"]["epochs"] == 4
    evaluation = book.get_evaluation(names.training_job)
    assert evaluation["decision"] == "deploy" and evaluation["champion_metrics"] is None
    assert book.champion(stack["settings"].endpoint_name)["model_name"] == names.model
    packages = stack["sm"].list_model_packages(ModelPackageGroupName="ogiri-captioner-models")
    assert len(packages["ModelPackageSummaryList"]) == 1

    caption = invoke(stack)
    assert isinstance(caption, str) and caption.strip()

    # Issue 13: the task's "SageMaker job" extra link points at the emulator's page of the job
    # (the AWS console on AWS), and that page shows the job and its log.
    link = _xcom(dr, "train_model", "_link_SageMakerResourceLink")
    assert link == f"{stack['emu'].url}/_localaws/sagemaker/training/{names.training_job}?region=us-east-1", link
    with urllib.request.urlopen(link, timeout=10) as resp:
        page = resp.read().decode()
    assert "Completed" in page and "train_loss=" in page, page[:500]


def test_training_log_trigger_streams_every_line_once_and_fires_the_provider_event(stack, capfd):
    import asyncio

    from ogiri.training_logs import TrainingLogTrigger

    job = training_jobs(stack)[0]
    trigger = TrainingLogTrigger(job_name=job, poll_seconds=0.1, max_attempts=5)
    classpath, kwargs = trigger.serialize()
    assert classpath == "ogiri.training_logs.TrainingLogTrigger" and kwargs["job_name"] == job

    async def first_event():
        async for event in trigger.run():
            return event.payload

    capfd.readouterr()
    payload = asyncio.run(first_event())
    assert payload == {"status": "success", "job_name": job, "message": f"training job {job} Completed"}
    lines = _log_lines(capfd)
    epoch_lines = [line for line in lines if "train_loss=" in line and "[algo-1" in line]
    assert len(epoch_lines) == FAST["epochs"], epoch_lines  # each line once, though drained twice
    summary = [line for line in lines if f"training job {job} Completed: " in line]
    assert summary and "epoch=" in summary[0], lines[-20:]


def test_training_log_trigger_runs_on_the_worker_grants_under_iam_enforcement(stack, capfd, monkeypatch):
    """The trigger's calls (DescribeTrainingJob, logs:DescribeLogStreams, logs:GetLogEvents) are
    what the template's worker role grants; the producer, which has none of them, is refused."""
    import asyncio

    from botocore.exceptions import ClientError

    from ogiri.training_logs import TrainingLogTrigger
    from ogiri_local.environment import load_deploy_stack

    emu, job = stack["emu"], training_jobs(stack)[0]
    admin = {"endpoint_url": emu.url, "region": "us-east-1"}
    deploy_stack = load_deploy_stack()
    outputs = deploy_stack.deploy("ogiri-logs", {"EnvironmentName": "logs", "BucketName": "ogiri-logs-test",
                                                 "TableName": "ogiri-logs-test"}, poll_s=0.1, timeout_s=60, **admin)
    keys = deploy_stack.local_principals(outputs, "ogiri-logs", **admin)
    for principal in ("airflow-worker", "producer"):
        conn = json.dumps(emu.aws_connection(keys=keys[principal]))
        monkeypatch.setenv(f"AIRFLOW_CONN_{principal.upper().replace('-', '_')}", conn)

    async def first_event(conn_id):
        async for event in TrainingLogTrigger(job_name=job, poll_seconds=0.1, max_attempts=5,
                                              aws_conn_id=conn_id).run():
            return event.payload

    capfd.readouterr()
    assert asyncio.run(first_event("airflow_worker"))["status"] == "success"
    assert len([line for line in _log_lines(capfd) if "train_loss=" in line and "[algo-1" in line]) == FAST["epochs"]
    with pytest.raises(ClientError) as err:
        asyncio.run(first_event("producer"))
    assert "sagemaker:DescribeTrainingJob" in str(err.value)


def test_weaker_candidate_is_not_deployed_and_the_champion_keeps_serving(stack):
    from ogiri.naming import run_key
    from ogiri.train.configs import RunNames

    champion = ledger().champion(stack["settings"].endpoint_name)
    weak = {**FAST, "epochs": 1, "lr": 1e-7}
    dr = stack["dag"].test(logical_date=DATES[1], run_conf=weak)
    st = states(dr)
    assert dr.state == "success", st
    assert st["decide_deployment"] == "success" and st["record_skip"] == "success"
    assert st["configure_deployment"] == "skipped" and st["create_model"] == "skipped"

    key = run_key("ogiri_train", dr.run_id, dr.logical_date)
    evaluation = ledger().get_evaluation(RunNames.for_run(key).training_job)
    assert evaluation["decision"] == "skip" and evaluation["champion_metrics"] is not None
    assert "CIDEr-D improvement below" in evaluation["reason"] or "BLEU-4 regressed" in evaluation["reason"]
    skip = next(d for d in ledger().deployment_history(stack["settings"].endpoint_name) if d["run_key"] == key)
    assert skip["action"] == "skip" and skip["reason"].startswith("deployment skipped:")
    assert ledger().champion(stack["settings"].endpoint_name)["model_name"] == champion["model_name"]
    serving = stack["sm"].describe_endpoint(EndpointName=stack["settings"].endpoint_name)
    assert serving["EndpointConfigName"] == champion["endpoint_config"]
    assert invoke(stack).strip()


def test_model_that_fails_to_load_rolls_back_and_the_old_model_answers_throughout(stack):
    from ogiri.naming import run_key
    from ogiri.train.configs import RunNames

    champion = ledger().champion(stack["settings"].endpoint_name)
    answers, errors, stop = [], [], threading.Event()

    def keep_asking():
        while not stop.is_set():
            try:
                answers.append(invoke(stack))
            except Exception as exc:  # recorded and asserted below
                errors.append(repr(exc))
            time.sleep(0.5)

    asker = threading.Thread(target=keep_asking, daemon=True)
    asker.start()
    broken = {**FAST, "epochs": 1, "force_deploy": True, "model_env": {"SAGEMAKER_PROGRAM": "missing_inference.py"}}
    try:
        dr = stack["dag"].test(logical_date=DATES[2], run_conf=broken)
    finally:
        stop.set()
        asker.join(timeout=30)
    st = states(dr)
    assert dr.state == "failed", st
    assert st["update_endpoint"] == "success" and st["smoke_test_endpoint"] == "failed"
    assert st["register_model"] == "upstream_failed" and st["delete_unused_resources"] == "success"

    names = RunNames.for_run(run_key("ogiri_train", dr.run_id, dr.logical_date))
    row = next(d for d in ledger().deployment_history(stack["settings"].endpoint_name)
               if d["run_key"] == names.run_key)
    assert row["action"] == "rollback" and row["status"] == "succeeded"
    # as in sagemaker-inference, a SAGEMAKER_PROGRAM module that does not exist is not an error by
    # itself: the PyTorch container's default model_fn runs, and our model.pt is not TorchScript
    assert "Please ensure model is saved using torchscript" in row["reason"]
    assert ledger().champion(stack["settings"].endpoint_name)["model_name"] == champion["model_name"]
    serving = stack["sm"].describe_endpoint(EndpointName=stack["settings"].endpoint_name)
    assert serving["EndpointConfigName"] == champion["endpoint_config"]
    # The broken candidate's model and config were cleaned up; the champion's were not.
    models = {m["ModelName"] for m in stack["sm"].list_models()["Models"]}
    assert names.model not in models and champion["model_name"] in models
    assert errors == [] and len(answers) > 3 and all(a.strip() for a in answers)


def _xcom(dag_run, task_id: str, key: str = "return_value"):
    """An XCom of the task (``return_value``: what it returned), as the UI's XCom tab shows it."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=task_id, key=key)
        ).first()
        assert row is not None, f"no XCom {key!r} of {task_id}"
        return XComModel.deserialize_value(row)


def test_too_little_new_data_is_a_visible_skip_with_the_reason_recorded(stack):
    from ogiri.naming import run_key

    jobs_before = training_jobs(stack)
    dr = stack["dag"].test(logical_date=datetime(2026, 5, 4, tzinfo=UTC), run_conf={**FAST, "min_new_images": 10_000})
    st = states(dr)
    assert dr.state == "success", st
    # Visible in the grid: a green skip_training (its XCom is the reason), training tasks skipped.
    assert st["build_dataset"] == st["check_new_data"] == st["skip_training"] == "success", st
    assert st["configure_training"] == st["train_model"] == "skipped", st
    assert st["record_training"] == "skipped" and st["smoke_test_endpoint"] == "skipped"
    reason = _xcom(dr, "skip_training")
    assert reason.startswith("training skipped: too little new data"), reason
    key = run_key("ogiri_train", dr.run_id, dr.logical_date)
    row = next(d for d in ledger().deployment_history(stack["settings"].endpoint_name) if d["run_key"] == key)
    assert row["action"] == "skip" and "too little new data" in row["reason"] and "minimum 10000" in row["reason"]
    assert training_jobs(stack) == jobs_before


def test_candidates_train_as_mapped_jobs_one_evaluation_scores_all_and_a_failed_one_is_left_out(stack):
    """Issue 17: three candidates (LSTM, Transformer, and one whose job fails inside the container):
    three training jobs, one evaluation job over the two that completed and the champion, the gate's
    evaluation row names the winner and why, and the failed one is recorded, not fatal."""
    from ogiri.naming import run_key
    from ogiri.train.configs import RunNames

    candidates = [{"decoder": "lstm"}, {"decoder": "transformer"}, {"decoder": "transformer", "embed_dim": 98}]
    evaluations_before = {j["ProcessingJobName"] for j in stack["sm"].list_processing_jobs()["ProcessingJobSummaries"]}
    book = ledger()
    book.ensure_schema()  # (when this test runs alone, no run has written the ledger yet)
    champion_before = book.champion(stack["settings"].endpoint_name)
    # (dag.test keeps an earlier run's conf values in the DAG's params: say every deploy choice)
    # (the gate may deploy the winner as a canary update: bake 2 s a step, not the 300 s default)
    conf = {**FAST, "epochs": 2, "candidates": candidates, "force_deploy": False, "model_env": {},
            "wait_interval_seconds": 2}
    dr = stack["dag"].test(logical_date=datetime(2026, 5, 6, tzinfo=UTC), run_conf=conf)
    st = states(dr)
    assert dr.state == "success", st
    mapped = sorted((ti.map_index, ti.state) for ti in dr.get_task_instances() if ti.task_id == "train_model")
    assert mapped == [(0, "success"), (1, "success"), (2, "failed")], mapped
    assert st["record_training"] == st["evaluate_models"] == st["decide_deployment"] == "success", st

    names = RunNames.for_run(run_key("ogiri_train", dr.run_id, dr.logical_date))
    jobs = names.candidate_jobs(3)
    assert set(jobs) <= set(training_jobs(stack))
    book = ledger()
    rows = [book.get_training_run(j) for j in jobs]
    assert [r["status"] for r in rows] == ["Completed", "Completed", "Failed"]
    assert [r["hyperparameters"]["decoder"] for r in rows] == ["lstm", "transformer", "transformer"]
    assert rows[2]["hyperparameters"]["embed_dim"] == 98 and "divisible" in rows[2]["failure_reason"]
    assert all(r["run_key"] == names.run_key and r["cost_usd"] > 0 for r in rows)

    # one evaluation job, scoring both completed candidates and the champion on the same test set
    new_evaluations = {j["ProcessingJobName"] for j in stack["sm"].list_processing_jobs()[
        "ProcessingJobSummaries"]} - evaluations_before
    assert new_evaluations == {names.evaluation_job}
    report = json.loads(stack["s3"].get_object(
        Bucket=stack["settings"].bucket, Key=f"evaluations/{names.training_job}/evaluation.json")["Body"].read())
    assert set(report["models"]) == {jobs[0], jobs[1]} | ({"champion"} if champion_before else set())
    cider = {j: report["models"][j]["metrics"]["cider"] for j in jobs[:2]}
    winner = max(jobs[:2], key=lambda j: (cider[j], -jobs.index(j)))

    evaluation = book.latest_evaluation_for_run(names.run_key)
    assert evaluation["candidate_job"] == winner
    assert (evaluation["champion_metrics"] is not None) == (champion_before is not None)
    assert evaluation["candidate_metrics"]["cider"] == cider[winner]
    assert f"winner best of 2 scored candidate(s) by CIDEr-D: {winner}" in evaluation["reason"]
    assert f"left out: {jobs[2]} (not evaluated" in evaluation["reason"]
    if evaluation["decision"] == "deploy":  # the gate deployed the winner, not the first candidate
        champion = book.champion(stack["settings"].endpoint_name)
        assert champion["training_job"] == winner and champion["run_key"] == names.run_key
    else:
        assert st["record_skip"] == "success"


def test_tuning_runs_one_tuning_job_whose_best_training_job_is_the_candidate(stack):
    """Issue 17: the tuning Param: one real tuning job (two training jobs at once), no plain training,
    every trial in the ledger, and its best job (by val_cider) is what the evaluation scores."""
    from ogiri.naming import run_key
    from ogiri.train.configs import RunNames

    tuning = {"strategy": "Random", "max_jobs": 2, "max_parallel": 2,
              "ranges": {"lr": {"min": 0.001, "max": 0.01, "scaling": "Logarithmic"}}}
    conf = {**FAST, "epochs": 2, "candidates": [{}], "tuning": tuning, "force_deploy": False, "model_env": {},
            "wait_interval_seconds": 2}  # a deploy (when the best trial beats the champion) bakes 2 s a step
    dr = stack["dag"].test(logical_date=datetime(2026, 5, 7, tzinfo=UTC), run_conf=conf)
    st = states(dr)
    assert dr.state == "success", st
    assert st["tune_model"] == "success" and st["train_model"] == "skipped", st  # no plain training job

    names = RunNames.for_run(run_key("ogiri_train", dr.run_id, dr.logical_date))
    tuned = stack["sm"].describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=names.tuning_job)
    assert tuned["HyperParameterTuningJobStatus"] == "Completed"
    assert tuned["TrainingJobStatusCounters"]["Completed"] == 2
    best = tuned["BestTrainingJob"]["TrainingJobName"]
    trials = [r["TrainingJobName"] for r in stack["sm"].list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=names.tuning_job)["TrainingJobSummaries"]]
    assert best in trials and names.training_job not in training_jobs(stack)

    book = ledger()
    rows = {t: book.get_training_run(t) for t in trials}
    assert all(r["status"] == "Completed" and r["run_key"] == names.run_key for r in rows.values())
    assert len({r["hyperparameters"]["lr"] for r in rows.values()}) == 2  # each trial with its sampled lr
    report = json.loads(stack["s3"].get_object(
        Bucket=stack["settings"].bucket, Key=f"evaluations/{names.training_job}/evaluation.json")["Body"].read())
    assert set(report["models"]) - {"champion"} == {best}
    evaluation = book.latest_evaluation_for_run(names.run_key)
    assert evaluation["candidate_job"] == best and f"winner best of 1 scored candidate(s) by CIDEr-D: {best}" in \
        evaluation["reason"]


def test_an_unknown_hyperparameter_fails_the_run_before_any_job_starts(stack):
    jobs_before = training_jobs(stack)
    conf = {**FAST, "candidates": [{"decoder": "lstm"}, {"warp_factor": 9}], "tuning": None}
    dr = stack["dag"].test(logical_date=datetime(2026, 5, 8, tzinfo=UTC), run_conf=conf)
    st = states(dr)
    assert dr.state == "failed", st
    assert st["configure_training"] == "failed" and st["record_training"] == "failed", st
    assert st["train_model"] == "upstream_failed" and st["evaluate_models"] == "upstream_failed", st
    assert training_jobs(stack) == jobs_before  # nothing was started, nothing paid
    train_ti = next(ti for ti in dr.get_task_instances() if ti.task_id == "configure_training")
    assert train_ti.try_number == 1  # a bad form is not retried


def test_ratings_filter_the_dataset_weigh_the_training_and_score_the_evaluation(stack):
    """Issue 16: after a rating job (half the images' captions rated 1.5, the rest 4), a run with
    ``min_rating`` 2 and ``rating_weight`` 1 trains without the 1.5s, passes the weight to the job,
    and its evaluation row holds the rated-test-set mean rating."""
    from ogiri.naming import run_key
    from ogiri.train.configs import RunNames

    ddb, settings = stack["emu"].client("dynamodb"), stack["settings"]
    keys = [{k: i[k] for k in ("ImageKey", "CaptionId")} for i in ddb.scan(TableName=settings.table)["Items"]]
    images = sorted({k["ImageKey"]["S"] for k in keys})
    for key in keys:
        rating = "1.5" if images.index(key["ImageKey"]["S"]) % 2 else "4"
        ddb.update_item(TableName=settings.table, Key=key,
                        UpdateExpression="SET Rating = :r, RatingFit = :r, RatingHumour = :r, RatingCount = :n",
                        ExpressionAttributeValues={":r": {"N": rating}, ":n": {"N": "3"}})
    conf = {**FAST, "epochs": 2, "candidates": [{}], "tuning": None, "force_deploy": False, "model_env": {},
            "min_rating": 2, "rating_weight": 1.0}
    dr = stack["dag"].test(logical_date=datetime(2026, 5, 9, tzinfo=UTC), run_conf=conf)
    st = states(dr)
    assert dr.state == "success", st

    dataset = _xcom(dr, "build_dataset")
    assert dataset["min_rating"] == 2 and dataset["dropped_captions"] > 0
    train = stack["s3"].get_object(Bucket=settings.bucket, Key=f"datasets/{dataset['version']}/train.jsonl")
    assert {json.loads(x)["rating"] for x in train["Body"].read().decode().splitlines()} == {4.0}
    names = RunNames.for_run(run_key("ogiri_train", dr.run_id, dr.logical_date))
    job = stack["sm"].describe_training_job(TrainingJobName=names.training_job)
    assert json.loads(job["HyperParameters"]["rating_weight"]) == 1.0
    metrics = ledger().latest_evaluation_for_run(names.run_key)["candidate_metrics"]
    assert metrics["rated_test_images"] == len({json.loads(x)["image_key"] for x in stack["s3"].get_object(
        Bucket=settings.bucket, Key=f"datasets/{dataset['version']}/test.jsonl")["Body"].read().decode().splitlines()})
    assert 1.5 <= metrics["rated_mean_rating"] <= 4
