"""Bodies of the ``ogiri_train`` tasks. The DAG file only wires them; each reads settings when it runs.

Each step takes the run's params and run key explicitly and talks to AWS through the Airflow AWS
connection (``Settings.aws_conn_id``), so the same code runs against SageMaker and the local emulator.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ogiri.config import get_settings
from ogiri.sagemaker import configs
from ogiri.sagemaker.configs import RunNames

log = logging.getLogger(__name__)

TRAINING_SOURCE_DIR = Path(__file__).resolve().parents[3] / "include" / "training"
DEPLOY_BRANCH = "configure_deployment"
SKIP_BRANCH = "record_skip"


def aws_client(service: str) -> Any:
    """A boto3 client for ``service`` through the configured Airflow AWS connection."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    settings = get_settings()
    return AwsBaseHook(aws_conn_id=settings.aws_conn_id, client_type=service, region_name=settings.region).get_conn()


def ledger() -> Any:
    """The run ledger, schema ensured."""
    from ogiri.ledger import Ledger

    book = Ledger.from_connection()
    book.ensure_schema()
    return book


def _param(params: dict[str, Any], name: str, default: Any) -> Any:
    value = params.get(name)
    return default if value is None else value


def _skip(message: str) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    raise AirflowSkipException(message)


def _fail(message: str) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(message)


def _s3_split(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def _read_s3(s3: Any, uri: str) -> bytes:
    bucket, key = _s3_split(uri)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


# -- 1. dataset -------------------------------------------------------------------------------------


def build_dataset(params: dict[str, Any], run_key: str) -> dict[str, Any]:
    """Write the dataset version's manifests; skip the run (reason in the ledger and log) when too
    little new data arrived since the previous version."""
    from ogiri.datasets import build_dataset_version
    from ogiri.ledger import Deployment

    settings = get_settings()
    summary = build_dataset_version(
        aws_client("s3"),
        aws_client("dynamodb"),
        bucket=settings.bucket,
        table=settings.table,
        min_new_images=int(_param(params, "min_new_images", settings.min_new_images)),
    )
    log.info("dataset %s: %s", summary["version"], json.dumps({k: summary[k] for k in ("counts", "new_images")}))
    if summary["skip_reason"]:
        reason = f"training skipped: {summary['skip_reason']}"
        log.warning(reason)
        ledger().record_deployment(
            Deployment(run_key=run_key, endpoint_name=settings.endpoint_name, action="skip", status="succeeded",
                       reason=reason)
        )
        _skip(reason)
    return summary


# -- 2. code ----------------------------------------------------------------------------------------


def package_code(source_dir: str | Path = TRAINING_SOURCE_DIR) -> dict[str, Any]:
    """Upload ``include/training`` as ``sourcedir.tar.gz`` at its content-hashed key."""
    from ogiri.sagemaker.source import upload_source

    bundle = upload_source(aws_client("s3"), get_settings().bucket, source_dir)
    log.info("training code %s (%s)", bundle.sourcedir_uri, "uploaded" if bundle.uploaded else "already in S3")
    return bundle.as_dict()


# -- 3. training ------------------------------------------------------------------------------------


def configure_training(params: dict[str, Any], run_key: str, dataset: dict[str, Any], source: dict[str, Any]):
    """The CreateTrainingJob request of this run."""
    from ogiri.sagemaker.images import training_image_uri

    settings = get_settings()
    image = training_image_uri(settings, params.get("instance_type") or None)
    return configs.training_job_config(settings, RunNames.for_run(run_key), params, dataset, source, image)


def record_training(params: dict[str, Any], run_key: str, dataset: dict[str, Any] | None) -> dict[str, Any]:
    """Ledger row of the training job (status, billable seconds, cost, artifact, final metrics)."""
    from botocore.exceptions import ClientError

    from ogiri.ledger import TrainingRun
    from ogiri.sagemaker.cost import training_cost
    from ogiri.sagemaker.operators import not_found

    settings = get_settings()
    names = RunNames.for_run(run_key)
    try:
        job = aws_client("sagemaker").describe_training_job(TrainingJobName=names.training_job)
    except ClientError as exc:
        if not not_found(exc):
            raise  # throttling, access denied…: a retry may record the job
        _skip(f"no training job {names.training_job} was started")
    cost = training_cost(job, settings.instance_prices)
    metrics = {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])}
    ledger().record_training_run(
        TrainingRun(
            job_name=job["TrainingJobName"],
            status=job["TrainingJobStatus"],
            run_key=run_key,
            dataset_version=(dataset or {}).get("version"),
            hyperparameters=configs.hyperparameters(params),
            instance_type=cost.instance_type,
            instance_count=cost.instance_count,
            billable_seconds=cost.billable_seconds,
            cost_usd=cost.usd,
            failure_reason=job.get("FailureReason"),
            model_artifact=(job.get("ModelArtifacts") or {}).get("S3ModelArtifacts"),
            metrics=metrics,
        )
    )
    if job["TrainingJobStatus"] == "Completed" and dataset:
        from ogiri.datasets import mark_trained

        mark_trained(aws_client("s3"), settings.bucket, dataset["version"])
    log.info(
        "training job %s %s: %d billable s on %s = %s USD (spot=%s)",
        job["TrainingJobName"], job["TrainingJobStatus"], cost.billable_seconds, cost.instance_type,
        cost.usd, cost.spot,
    )
    return {"status": job["TrainingJobStatus"], "cost": cost.as_dict(), "metrics": metrics}


# -- 4. evaluation ----------------------------------------------------------------------------------


def configure_evaluation(run_key: str, dataset: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """The CreateProcessingJob request evaluating candidate and champion on the frozen test manifest."""
    from ogiri.sagemaker.images import training_image_uri
    from ogiri.sagemaker.smoke import serving

    settings = get_settings()
    names = RunNames.for_run(run_key)
    sm = aws_client("sagemaker")
    job = sm.describe_training_job(TrainingJobName=names.training_job)
    candidate = job["ModelArtifacts"]["S3ModelArtifacts"]
    champion = serving(sm, settings.endpoint_name)
    champion_artifact = champion["model_artifact"] if champion else None
    log.info("evaluating candidate %s against champion %s", candidate, champion_artifact or "(none)")
    image = training_image_uri(settings, settings.processing_instance_type)
    return configs.evaluation_job_config(settings, names, dataset, source, image, candidate, champion_artifact)


def read_evaluation(run_key: str) -> dict[str, Any]:
    """The evaluation job's ``evaluation.json``, read through the configured AWS connection.

    (The provider's ``output_files_to_xcom`` is not used: it builds a bare S3 client that ignores
    the connection's ``endpoint_url``, so it cannot reach S3-compatible endpoints.)
    """
    from botocore.exceptions import ClientError

    uri = configs.evaluation_prefix(get_settings(), RunNames.for_run(run_key)) + "evaluation.json"
    try:
        return json.loads(_read_s3(aws_client("s3"), uri))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in {"NoSuchKey", "404", "NotFound"}:
            raise  # throttling, access, network: worth the task's retries
        _fail(f"the evaluation job wrote no report at {uri}")
    except ValueError as exc:  # not JSON / not UTF-8: a retry would read the same bytes
        _fail(f"the evaluation report {uri} is not valid JSON: {exc}")


def _log_evaluation_cost(job_name: str, settings: Any) -> None:
    """Put the evaluation job's billable time and price in the task log (the run's other cost)."""
    from ogiri.sagemaker.cost import processing_cost

    job = aws_client("sagemaker").describe_processing_job(ProcessingJobName=job_name)
    cost = processing_cost(job, settings.instance_prices)
    log.info("evaluation job %s: %d billable s on %s = %s USD", job_name, cost.billable_seconds,
             cost.instance_type, cost.usd)


def decide_deployment(params: dict[str, Any], run_key: str) -> str:
    """Gate the candidate against the champion; record the evaluation; return the branch to follow."""
    from ogiri.ledger import Evaluation
    from ogiri.sagemaker.gate import decide
    from ogiri.sagemaker.smoke import serving

    settings = get_settings()
    names = RunNames.for_run(run_key)
    report = read_evaluation(run_key)
    models = report.get("models")
    if not isinstance(models, dict) or "candidate" not in models:
        _fail(f"evaluation.json has no candidate metrics: {json.dumps(report)[:500]}")
    candidate = models["candidate"].get("metrics") or {}
    champion = (models.get("champion") or {}).get("metrics")
    decision = decide(
        candidate,
        champion,
        min_cider_improvement=float(_param(params, "min_cider_improvement", settings.min_cider_improvement)),
        max_bleu_regression=float(_param(params, "max_bleu_regression", settings.max_bleu_regression)),
        force=bool(params.get("force_deploy", False)),
    )
    book = ledger()
    serving_now = serving(aws_client("sagemaker"), settings.endpoint_name) if champion is not None else None
    champion_row = book.champion(settings.endpoint_name) if champion is not None else None
    book.record_evaluation(
        Evaluation(
            candidate_job=names.training_job,
            decision="deploy" if decision.deploy else "skip",
            run_key=run_key,
            champion_job=(champion_row or {}).get("training_job"),
            champion_model=(serving_now or {}).get("model_name"),
            candidate_metrics=candidate,
            champion_metrics=champion,
            reason=decision.reason,
            evaluation_uri=configs.evaluation_prefix(settings, names) + "evaluation.json",
        )
    )
    _log_evaluation_cost(names.evaluation_job, settings)
    log.info("gate: %s (%s)", "DEPLOY" if decision.deploy else "SKIP", decision.reason)
    return DEPLOY_BRANCH if decision.deploy else SKIP_BRANCH


def record_skip(run_key: str) -> str:
    """Ledger row saying this run did not deploy, with the gate's reason."""
    from ogiri.ledger import Deployment

    settings = get_settings()
    book = ledger()
    evaluation = book.get_evaluation(RunNames.for_run(run_key).training_job) or {}
    reason = f"deployment skipped: {evaluation.get('reason') or 'gate decided not to deploy'}"
    book.record_deployment(
        Deployment(run_key=run_key, endpoint_name=settings.endpoint_name, action="skip", status="succeeded",
                   training_job=evaluation.get("candidate_job"), reason=reason)
    )
    log.warning(reason)
    return reason


# -- 5. deployment ----------------------------------------------------------------------------------


def configure_deployment(params: dict[str, Any], run_key: str) -> dict[str, Any]:
    """Model, endpoint-config and endpoint requests, whether to create or update, and what to roll back to."""
    from ogiri.ledger import Deployment
    from ogiri.sagemaker.images import inference_image_uri
    from ogiri.sagemaker.smoke import serving

    settings = get_settings()
    names = RunNames.for_run(run_key)
    sm = aws_client("sagemaker")
    job = sm.describe_training_job(TrainingJobName=names.training_job)
    artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
    image = inference_image_uri(settings)
    previous = serving(sm, settings.endpoint_name)
    operation = "update" if previous else "create"
    book = ledger()
    plan = {
        "names": names.as_dict(),
        "operation": operation,
        "image_uri": image,
        "model_artifact": artifact,
        "model": configs.model_config(settings, names, image, artifact, params.get("model_env") or {}),
        "endpoint_config": configs.endpoint_config_config(settings, names),
        "endpoint": configs.endpoint_config(settings, names),
        "previous": previous,
        "previous_champion": book.champion(settings.endpoint_name),
    }
    book.record_deployment(
        Deployment(run_key=run_key, endpoint_name=settings.endpoint_name, action=operation, status="in_progress",
                   endpoint_config=names.endpoint_config, model_name=names.model,
                   training_job=names.training_job, model_artifact=artifact)
    )
    log.info("%s endpoint %s with %s (previous: %s)", operation, settings.endpoint_name, names.endpoint_config,
             (previous or {}).get("endpoint_config"))
    return plan


def choose_endpoint_operation(plan: dict[str, Any]) -> str:
    """``create_endpoint`` when the endpoint is absent, ``update_endpoint`` when it exists."""
    return f"{plan['operation']}_endpoint"


def _held_out_samples(s3: Any, dataset: dict[str, Any], n: int) -> tuple[list[tuple[str, bytes]], frozenset]:
    from ogiri.sagemaker.smoke import vocabulary_of

    test = [json.loads(x) for x in _read_s3(s3, dataset["uris"]["test"]).decode().splitlines() if x.strip()]
    train = [json.loads(x) for x in _read_s3(s3, dataset["uris"]["train"]).decode().splitlines() if x.strip()]
    seen, samples = set(), []
    for record in test:
        if record["image"] in seen:
            continue
        seen.add(record["image"])
        samples.append((record.get("image_key") or record["image"], _read_s3(s3, dataset["images_uri"] + record["image"])))
        if len(samples) >= n:
            break
    return samples, vocabulary_of(r["caption"] for r in train)


def smoke_test_endpoint(params: dict[str, Any], run_key: str, plan: dict[str, Any] | None,
                        dataset: dict[str, Any]) -> dict[str, Any]:
    """Invoke the updated endpoint with held-out images. If the new config is not the one serving, or
    its answers are not sane captions in time, point the endpoint back at the previous config, record
    the rollback and fail the run loudly."""
    from ogiri.ledger import Deployment
    from ogiri.sagemaker.smoke import rollback, serving, smoke_test, wait_in_service

    if not plan:
        _skip("nothing was deployed in this run")
    settings = get_settings()
    names = RunNames.for_run(run_key)
    endpoint = settings.endpoint_name
    sm = aws_client("sagemaker")
    poll = float(params.get("poll_seconds") or 15)
    failures: list[str] = []
    try:
        wait_in_service(sm, endpoint, poll_s=poll, timeout_s=3600)
    except Exception as exc:
        failures.append(f"endpoint did not settle: {exc}")
    now = serving(sm, endpoint) if not failures else None
    result: dict[str, Any] = {}
    if not failures and (now is None or now["endpoint_config"] != names.endpoint_config or now["status"] != "InService"):
        failures.append(
            f"endpoint {endpoint} is not serving {names.endpoint_config}: "
            f"{json.dumps({k: (now or {}).get(k) for k in ('status', 'endpoint_config', 'failure_reason')})}"
        )
    if not failures:
        samples, vocabulary = _held_out_samples(aws_client("s3"), dataset, int(params.get("smoke_samples") or 4))
        outcome = smoke_test(
            aws_client("sagemaker-runtime"), endpoint, samples, vocabulary=vocabulary,
            max_latency_s=float(params.get("smoke_max_latency_seconds") or 10),
        )
        result = outcome.as_dict()
        log.info("smoke test captions: %s", json.dumps(outcome.captions, ensure_ascii=False))
        failures.extend(outcome.failures)
    book = ledger()
    if not failures:
        book.record_deployment(
            Deployment(run_key=run_key, endpoint_name=endpoint, action=plan["operation"], status="succeeded",
                       endpoint_config=names.endpoint_config, model_name=names.model,
                       training_job=names.training_job, model_artifact=plan["model_artifact"],
                       reason=f"smoke test passed (max latency {result['max_latency_s']}s)")
        )
        return result
    message = f"deployment of {names.model} to {endpoint} failed its smoke test: " + "; ".join(failures[:10])
    previous = plan.get("previous")
    if previous:
        rollback(sm, endpoint, previous["endpoint_config"], poll_s=poll)
        champion = plan.get("previous_champion") or {}
        book.record_deployment(
            Deployment(run_key=run_key, endpoint_name=endpoint, action="rollback", status="succeeded",
                       endpoint_config=previous["endpoint_config"], model_name=previous["model_name"],
                       training_job=champion.get("training_job"), model_artifact=previous["model_artifact"],
                       reason=message)
        )
        message += f"; rolled back to {previous['endpoint_config']}"
    else:
        book.record_deployment(
            Deployment(run_key=run_key, endpoint_name=endpoint, action=plan["operation"], status="failed",
                       endpoint_config=names.endpoint_config, model_name=names.model,
                       training_job=names.training_job, model_artifact=plan["model_artifact"], reason=message)
        )
    log.error(message)
    _fail(message)
    return result


def register_model(run_key: str, plan: dict[str, Any], dataset: dict[str, Any]) -> str:
    """Register the deployed candidate in the Model Registry (approved) with its evaluation metrics."""
    from ogiri.sagemaker.registry import register_model_version

    settings = get_settings()
    names = RunNames.for_run(run_key)
    evaluation = ledger().get_evaluation(names.training_job) or {}
    arn = register_model_version(
        aws_client("sagemaker"),
        group=configs.model_package_group(settings),
        training_job=names.training_job,
        image_uri=plan["image_uri"],
        model_data_url=plan["model_artifact"],
        metrics=evaluation.get("candidate_metrics") or {},
        evaluation_uri=evaluation.get("evaluation_uri"),
        dataset_version=dataset.get("version"),
        approved=True,
    )
    log.info("registered %s as %s", names.training_job, arn)
    return arn


def delete_unused_resources(run_key: str) -> list[str]:
    """Delete this run's model and endpoint config when the endpoint does not use them (skip, failure,
    rollback). Leaves everything alone while the endpoint is still changing."""
    from botocore.exceptions import ClientError

    from ogiri.sagemaker.operators import not_found
    from ogiri.sagemaker.smoke import serving

    settings = get_settings()
    names = RunNames.for_run(run_key)
    sm = aws_client("sagemaker")
    now = serving(sm, settings.endpoint_name)
    if now and now["status"] not in {"InService", "Failed"}:
        log.warning("endpoint %s is %s; not cleaning up", settings.endpoint_name, now["status"])
        return []
    deleted = []
    doomed = []
    if not now or now["endpoint_config"] != names.endpoint_config:
        doomed.append((sm.delete_endpoint_config, {"EndpointConfigName": names.endpoint_config}))
    if not now or now["model_name"] != names.model:
        doomed.append((sm.delete_model, {"ModelName": names.model}))
    for delete, request in doomed:
        try:
            delete(**request)
            deleted.extend(request.values())
        except ClientError as exc:
            if not not_found(exc):  # never created, or already deleted: nothing to do
                raise
    log.info("deleted unused resources: %s", deleted or "none")
    return deleted
