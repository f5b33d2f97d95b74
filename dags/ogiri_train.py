"""
### ogiri_train — dataset version → GPU training → champion/challenger → safe endpoint deploy

Runs when the ingestion DAG updates the caption table (Asset `ogiri_captions`) or from the UI with
the form below (epochs, instance type, hyperparameters, gate margins, force deploy, Managed Spot).

1. **build_dataset** — a dataset version from DynamoDB: hash split by `ImageKey`, frozen test split,
   manifests under `s3://<bucket>/datasets/<version>/`. Too little new data ⇒ the run is skipped and
   the reason is written to the ledger.
2. **package_code** — `include/training` as a deterministic `sourcedir.tar.gz` at a content-hashed key.
3. **train_model** — SageMaker training (PyTorch DLC resolved for the region, GPU by default, Managed
   Spot with checkpoints, metric definitions). A retry re-attaches to the job it started; it never
   pays for a second one.
4. **evaluate_models** — a Processing job runs `evaluate.py` on the candidate and the serving champion
   against the same frozen test manifest.
5. **decide_deployment** — deploy when there is no champion, when CIDEr-D improves by the margin
   without a BLEU-4 regression beyond tolerance, or when forced; otherwise **record_skip**.
6. **create_model → create_endpoint_config → create/update_endpoint → smoke_test_endpoint** — held-out
   images must come back as sane captions in time, else the endpoint is pointed back at the previous
   config and the run fails loudly. Then **register_model** (Model Registry, with metrics).
7. Ledger rows: training run (billable seconds, cost), evaluation, deployment or skip reason.
   **delete_unused_resources** (teardown, runs whatever happened) removes this run's model and
   endpoint config when they are not serving; it does not decide the run's state.

Every resource name derives from one run key (`ogiri.naming.run_key`); `max_active_runs=1`.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.providers.amazon.aws.operators.sagemaker import SageMakerEndpointOperator
from airflow.sdk import Param, TriggerRule, chain, dag, get_current_context, task, teardown

from ogiri.config import get_settings
from ogiri.ingest.assets import captions_asset
from ogiri.naming import run_key as make_run_key
from ogiri.sagemaker.operators import (
    ReattachingProcessingOperator,
    ReattachingTrainingOperator,
    ReusingEndpointConfigOperator,
    ReusingModelOperator,
)

DAG_ID = "ogiri_train"
#: How often operators and triggers poll SageMaker (seconds); small values for local runs.
POLL_SECONDS = int(os.environ.get("OGIRI_SAGEMAKER_POLL_SECONDS", "30"))
TRAINING_TIMEOUT = timedelta(hours=12)
#: The SageMaker operators use the same AWS connection and region as the task bodies
#: (``OGIRI_AWS_CONN_ID``, ``OGIRI_REGION``), rendered when each task runs.
AWS_ARGS = {"aws_conn_id": "{{ ogiri_settings().aws_conn_id }}", "region_name": "{{ ogiri_settings().region }}"}

PARAMS = {
    "instance_type": Param(None, type=["null", "string"], title="Training instance type",
                           description="Empty: the deployment default (OGIRI_TRAINING_INSTANCE_TYPE, ml.g5.xlarge)."),
    "epochs": Param(10, type="integer", minimum=1, title="Epochs"),
    "batch_size": Param(64, type="integer", minimum=1, title="Batch size"),
    "lr": Param(0.001, type="number", exclusiveMinimum=0, title="Learning rate"),
    "encoder": Param("resnet50", type="string", enum=["resnet50", "resnet34", "resnet18"], title="Image encoder"),
    "decoder": Param("lstm", type="string", enum=["lstm", "transformer"], title="Caption decoder"),
    "image_size": Param(224, type="integer", minimum=32, title="Image size (pixels)"),
    "extra_hyperparameters": Param({}, type="object", title="Other hyperparameters",
                                   description="e.g. {\"embed_dim\": 256, \"beam_width\": 3}"),
    "use_spot": Param(True, type="boolean", title="Managed Spot Training"),
    "max_runtime_seconds": Param(4 * 3600, type="integer", minimum=60, title="Max training runtime (s)"),
    "max_wait_seconds": Param(8 * 3600, type="integer", minimum=60, title="Max wait incl. spot interruptions (s)"),
    "min_new_images": Param(None, type=["null", "integer"], minimum=0, title="Minimum new images",
                            description="Empty: OGIRI_MIN_NEW_IMAGES (20). 0 retrains on unchanged data."),
    "min_cider_improvement": Param(None, type=["null", "number"], minimum=0, title="Minimum CIDEr-D improvement",
                                   description="Empty: OGIRI_MIN_CIDER_IMPROVEMENT (0.02)."),
    "max_bleu_regression": Param(None, type=["null", "number"], minimum=0, title="BLEU-4 regression tolerance",
                                 description="Empty: OGIRI_MAX_BLEU_REGRESSION (0.01)."),
    "force_deploy": Param(False, type="boolean", title="Deploy even if the gate says no"),
    "smoke_samples": Param(4, type="integer", minimum=1, title="Smoke-test images"),
    "smoke_max_latency_seconds": Param(10.0, type="number", exclusiveMinimum=0, title="Smoke-test max latency (s)"),
    "model_env": Param({}, type="object", title="Extra serving container environment"),
    "poll_seconds": Param(None, type=["null", "number"], minimum=0, title="Endpoint poll interval (s)"),
}


def _context() -> tuple[dict, str]:
    ctx = get_current_context()
    return dict(ctx["params"]), make_run_key(DAG_ID, ctx["run_id"], ctx.get("logical_date"))


@dag(
    dag_id=DAG_ID,
    schedule=[captions_asset()],  # emitted by the ingestion DAG after each run
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
    from ogiri.sagemaker import steps

    @task(multiple_outputs=False)
    def build_dataset() -> dict:
        params, key = _context()
        return steps.build_dataset(params, key)

    @task(multiple_outputs=False)
    def package_code() -> dict:
        return steps.package_code()

    @task(multiple_outputs=False)
    def configure_training(dataset: dict, source: dict) -> dict:
        params, key = _context()
        return steps.configure_training(params, key, dataset, source)

    @task(multiple_outputs=False, trigger_rule=TriggerRule.ALL_DONE)
    def record_training(dataset: dict | None) -> dict:
        params, key = _context()
        return steps.record_training(params, key, dataset)

    @task(multiple_outputs=False)
    def configure_evaluation(dataset: dict, source: dict) -> dict:
        _, key = _context()
        return steps.configure_evaluation(key, dataset, source)

    @task.branch
    def decide_deployment() -> str:
        params, key = _context()
        return steps.decide_deployment(params, key)

    @task
    def record_skip() -> str:
        _, key = _context()
        return steps.record_skip(key)

    @task(multiple_outputs=True)
    def configure_deployment() -> dict:
        params, key = _context()
        return steps.configure_deployment(params, key)

    @task.branch
    def choose_endpoint_operation(plan: dict) -> str:
        return steps.choose_endpoint_operation(plan)

    @task(multiple_outputs=False, trigger_rule=TriggerRule.ALL_DONE)
    def smoke_test_endpoint(plan: dict | None, dataset: dict) -> dict:
        params, key = _context()
        return steps.smoke_test_endpoint(params, key, plan, dataset)

    @task
    def register_model(plan: dict, dataset: dict) -> str:
        _, key = _context()
        return steps.register_model(key, plan, dataset)

    @teardown
    def delete_unused_resources() -> list:
        _, key = _context()
        return steps.delete_unused_resources(key)

    dataset = build_dataset()
    source = package_code()
    training_config = configure_training(dataset, source)
    train_model = ReattachingTrainingOperator(
        task_id="train_model",
        config=training_config,
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
    operation = choose_endpoint_operation(plan)
    endpoint_ops = [
        SageMakerEndpointOperator(
            task_id=f"{op}_endpoint",
            config=plan["endpoint"],
            operation=op,
            deferrable=True,
            check_interval=POLL_SECONDS,
            max_ingestion_time=3600,
            **AWS_ARGS,
        )
        for op in ("create", "update")
    ]
    smoke = smoke_test_endpoint(plan, dataset)
    registered = register_model(plan, dataset)
    cleanup = delete_unused_resources()

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
    chain(plan, create_model, create_endpoint_config, operation, endpoint_ops, smoke, registered, cleanup)
    chain(skip, cleanup)
    train_model >> evaluation_config


ogiri_train()
