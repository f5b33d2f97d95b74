"""
### ogiri_train — dataset version → GPU training → champion/challenger → safe endpoint deploy

Runs when the ingestion DAG updates the caption table (Asset `ogiri_captions`) **or** when
`ogiri_monitor` finds drift on the endpoint (Asset `ogiri_drift`; the condition
`ogiri_captions | ogiri_drift`), or from the UI with the form below (epochs, instance type,
hyperparameters, gate margins, force deploy, Managed Spot). A drift-triggered run says so in its
ledger rows (`training_runs.triggered_by = drift`) and trains even below `min_new_images`.

1. **build_dataset** — a dataset version from DynamoDB: hash split by `ImageKey`, frozen test split,
   manifests under `s3://<bucket>/datasets/<version>/`. **check_new_data**: too little new data ⇒
   **skip_training** runs (green, the reason is its return value and a ledger row) and every
   training task is skipped, so a run that trained nothing says so in its grid.
2. **package_code** — `include/training` as a deterministic `sourcedir.tar.gz` at a content-hashed key.
3. **train_model** — one SageMaker training job per entry of the `candidates` Param (mapped; at
   most `OGIRI_MAX_PARALLEL_TRAINING` at once; PyTorch DLC resolved for the region, GPU by default,
   Managed Spot with checkpoints, metric definitions). A retry re-attaches to the job it started; it
   never pays for a second one. A failed candidate is recorded and left out; **record_training**
   fails the run only when every candidate failed. With the `tuning` Param, **tune_model** runs one
   SageMaker hyperparameter tuning job instead (objective `val_cider`) and its best training job is
   the candidate.
4. **evaluate_models** — one Processing job runs `evaluate.py` on every completed candidate and the
   serving champion against the same frozen test manifest.
5. **decide_deployment** — picks the best candidate by CIDEr-D, then deploys it when there is no
   champion, when CIDEr-D improves by the margin without a BLEU-4 regression beyond tolerance, or
   when forced; otherwise **record_skip**.
6. **create_model → create_endpoint_config → put_rollback_alarms → create/update_endpoint →
   smoke_test_endpoint** — an update is a guarded blue/green deployment (Params
   `deployment_strategy` canary/linear/all_at_once, sizes, baking wait, timeouts): SageMaker shifts
   traffic step by step and rolls back by itself when the 5XX-rate or p99-latency alarm on the new
   fleet fires (the task log shows each step; a retry waits for this run's update instead of calling
   again). The first deploy (create) has no traffic to shift. Then held-out images must come back as
   sane captions in time, else the endpoint is pointed back at the previous config and the run fails
   loudly. Then **register_model** (Model Registry, with metrics).
7. Ledger rows: one training run per candidate (billable seconds, cost), the evaluation (naming the
   winner and why), deployment (strategy, alarms, outcome) or skip reason.
   **delete_unused_resources** (teardown, runs whatever happened) removes this run's model and
   endpoint config when they are not serving; it does not decide the run's state.

Every resource name derives from one run key (`ogiri.naming.run_key`); `max_active_runs=1`.
The form (`ogiri.train.params`) holds every per-run default; empty fields use the `OGIRI_*` settings.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import TriggerRule, chain, dag, task, teardown

from ogiri.assets import captions_asset, drift_asset
from ogiri.config import get_settings, parse_knobs
from ogiri.jobs import (
    ReattachingEndpointOperator,
    ReattachingProcessingOperator,
    ReattachingTrainingOperator,
    ReattachingTuningOperator,
    ReusingEndpointConfigOperator,
    ReusingModelOperator,
)
from ogiri.train.params import PARAMS

DAG_ID = "ogiri_train"
#: How often operators and triggers poll SageMaker (seconds; ``OGIRI_SAGEMAKER_POLL_SECONDS``, small
#: locally). Operator arguments, so read at parse time by the parse-safe reader.
POLL_SECONDS = parse_knobs().sagemaker_poll_seconds
#: At most this many candidate training jobs of one run at once (``OGIRI_MAX_PARALLEL_TRAINING``):
#: ``max_active_tis_per_dagrun`` is read by the scheduler from the serialized DAG, not templated, so it
#: is a deployment knob read at parse time rather than a per-run Param.
MAX_PARALLEL_TRAINING = parse_knobs().max_parallel_training
SAGEMAKER_POOL = parse_knobs().sagemaker_pool  # caps SageMaker jobs account-wide (OGIRI_SAGEMAKER_POOL)
TRAINING_TIMEOUT = timedelta(hours=12)
#: The SageMaker operators use the same AWS connection and region as the task bodies
#: (``OGIRI_AWS_CONN_ID``, ``OGIRI_REGION``), rendered when each task runs.
AWS_ARGS = {"aws_conn_id": "{{ ogiri_settings().aws_conn_id }}", "region_name": "{{ ogiri_settings().region }}"}


@dag(
    dag_id=DAG_ID,
    # captions: emitted by the ingestion DAG after each run; drift: by ogiri_monitor on a violation
    schedule=(captions_asset() | drift_asset()),
    catchup=False,
    max_active_runs=1,
    params=PARAMS,
    doc_md=__doc__,
    tags=["ogiri", "training", "sagemaker"],
    # Deployment settings are read when a task runs (templates), never at parse time.
    user_defined_macros={"ogiri_settings": get_settings},
    default_args={"owner": "ogiri-ml", "retries": 2, "retry_delay": timedelta(minutes=1)},
)
def ogiri_train():
    from ogiri.train import steps

    @task(multiple_outputs=False)
    def build_dataset() -> dict:
        return steps.build_dataset(steps.run_for())

    @task.branch
    def check_new_data(dataset: dict) -> str:
        return steps.check_new_data(dataset)

    @task
    def skip_training(dataset: dict) -> str:
        return steps.skip_training(steps.run_for(), dataset)

    @task(multiple_outputs=False)
    def package_code() -> dict:
        return steps.package_code(steps.run_for())

    @task(multiple_outputs=False)
    def configure_training(dataset: dict, source: dict) -> list:
        return steps.configure_training(steps.run_for(), dataset, source)

    @task(multiple_outputs=False)
    def configure_tuning(dataset: dict, source: dict) -> dict:
        return steps.configure_tuning(steps.run_for(), dataset, source)

    @task(multiple_outputs=False, trigger_rule=TriggerRule.ALL_DONE)
    def record_training(dataset: dict | None) -> dict:
        return steps.record_training(steps.run_for(), dataset)

    @task(multiple_outputs=False)
    def configure_evaluation(dataset: dict, source: dict) -> dict:
        return steps.configure_evaluation(steps.run_for(), dataset, source)

    @task.branch
    def decide_deployment() -> str:
        return steps.decide_deployment(steps.run_for())

    @task
    def record_skip() -> str:
        return steps.record_skip(steps.run_for())

    @task(multiple_outputs=True)
    def configure_deployment() -> dict:
        return steps.configure_deployment(steps.run_for())

    @task
    def put_rollback_alarms(plan: dict) -> list:
        return steps.put_rollback_alarms(steps.run_for(), plan)

    @task.branch
    def choose_endpoint_operation(plan: dict) -> str:
        return steps.choose_endpoint_operation(plan)

    @task(multiple_outputs=False, trigger_rule=TriggerRule.ALL_DONE)
    def smoke_test_endpoint(plan: dict | None, dataset: dict) -> dict:
        return steps.smoke_test_endpoint(steps.run_for(), plan, dataset)

    @task
    def register_model(plan: dict, dataset: dict) -> str:
        return steps.register_model(steps.run_for(), plan, dataset)

    @teardown
    def delete_unused_resources() -> list:
        return steps.delete_unused_resources(steps.run_for())

    dataset = build_dataset()
    new_data = check_new_data(dataset)
    no_training = skip_training(dataset)
    source = package_code()
    training_config = configure_training(dataset, source)
    train_model = ReattachingTrainingOperator.partial(  # one mapped instance (and job) per candidate
        task_id="train_model",
        pool=SAGEMAKER_POOL,
        deferrable=True,
        check_interval=POLL_SECONDS,
        max_attempts=int(TRAINING_TIMEOUT.total_seconds() // max(POLL_SECONDS, 1)),
        execution_timeout=TRAINING_TIMEOUT,
        max_active_tis_per_dagrun=MAX_PARALLEL_TRAINING,
        **AWS_ARGS,
    ).expand(config=training_config)
    tuning_config = configure_tuning(dataset, source)
    tune_model = ReattachingTuningOperator(  # skipped unless the tuning param is set
        task_id="tune_model",
        pool=SAGEMAKER_POOL,
        config=tuning_config,
        deferrable=True,
        check_interval=POLL_SECONDS,
        max_attempts=int(TRAINING_TIMEOUT.total_seconds() // max(POLL_SECONDS, 1)),
        execution_timeout=TRAINING_TIMEOUT,
        **AWS_ARGS,
    )
    training_record = record_training(dataset)
    evaluation_config = configure_evaluation(dataset, source)
    evaluate_models = ReattachingProcessingOperator(
        task_id="evaluate_models",
        pool=SAGEMAKER_POOL,
        config=evaluation_config,
        deferrable=True,
        check_interval=POLL_SECONDS,
        max_attempts=int(timedelta(hours=2).total_seconds() // max(POLL_SECONDS, 1)),
        **AWS_ARGS,
    )
    decision = decide_deployment()
    skip = record_skip()
    plan = configure_deployment()
    create_model = ReusingModelOperator(task_id="create_model", config=plan["model"], **AWS_ARGS)
    create_endpoint_config = ReusingEndpointConfigOperator(
        task_id="create_endpoint_config", config=plan["endpoint_config"], **AWS_ARGS
    )
    alarms = put_rollback_alarms(plan)
    operation = choose_endpoint_operation(plan)
    endpoint_ops = [
        ReattachingEndpointOperator(
            task_id=f"{op}_endpoint",
            config=plan["endpoint"],
            operation=op,
            check_interval=POLL_SECONDS,
            max_ingestion_time=3600,
            **AWS_ARGS,
        )
        for op in ("create", "update")
    ]
    smoke = smoke_test_endpoint(plan, dataset)
    registered = register_model(plan, dataset)
    cleanup = delete_unused_resources()

    chain(dataset, new_data, [training_config, no_training])
    chain(
        [dataset, source],
        training_config,
        train_model,
        training_record,
        evaluation_config,
        evaluate_models,
        decision,
        [skip, plan],
    )
    chain(plan, create_model, create_endpoint_config, alarms, operation, endpoint_ops, smoke, registered, cleanup)
    chain(skip, cleanup)
    chain(no_training, cleanup)
    chain(training_config, tuning_config, tune_model, training_record)


ogiri_train()
