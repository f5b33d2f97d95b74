"""Bodies of the ``ogiri_train`` tasks. The DAG file only wires them.

Each step takes the task's :class:`~ogiri.runs.Run` (params merged with the settings, run key, names,
clients through the Airflow AWS connection, the ledger), so the same code runs against SageMaker and
the local emulator.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ogiri.aws import read_uri
from ogiri.runs import Run
from ogiri.train import configs
from ogiri.train.configs import RunNames
from ogiri.train.params import SETTING_DEFAULTS, form_defaults

log = logging.getLogger(__name__)

TRAINING_SOURCE_DIR = Path(__file__).resolve().parents[3] / "include" / "training"
DEPLOY_BRANCH = "configure_deployment"
SKIP_BRANCH = "record_skip"
TRAINING_BRANCH = "configure_training"
NO_TRAINING_BRANCH = "skip_training"


def run_for(context: Any = None) -> Run:
    """The :class:`~ogiri.runs.Run` of an ``ogiri_train`` task (params merged, names from the key)."""
    return Run.from_context(context, defaults=SETTING_DEFAULTS, names=RunNames.for_run)


def run_for_key(key: str, **params: Any) -> Run:
    """The same outside Airflow (tests, scripts): the form's defaults with ``params`` overridden."""
    return Run.for_key(key, form_defaults(**params), defaults=SETTING_DEFAULTS, names=RunNames.for_run)


def _skip(message: str) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    raise AirflowSkipException(message)


def _fail(message: str) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(message)


def _training_job(run: Run) -> dict[str, Any]:
    """The description of the training job this run deploys (the gate's winner)."""
    return run.describe("training_job", winner_job(run))


# -- 1. dataset -------------------------------------------------------------------------------------


def triggered_by(run: Run) -> str:
    """``drift`` when an ``ogiri_drift`` event triggered the run (also alongside captions), ``captions``
    for new captions only, else ``manual`` (the form, the API, a test)."""
    from ogiri.assets import CAPTIONS_ASSET_NAME, DRIFT_ASSET_NAME
    from ogiri.train.datasets import TRIGGER_CAPTIONS, TRIGGER_DRIFT, TRIGGER_MANUAL

    if run.asset_events.get(DRIFT_ASSET_NAME):
        return TRIGGER_DRIFT
    return TRIGGER_CAPTIONS if CAPTIONS_ASSET_NAME in run.asset_events else TRIGGER_MANUAL


def build_dataset(run: Run) -> dict[str, Any]:
    """Write the dataset version's manifests. Too little new data since the last trained version
    is not an error: ``skip_reason`` says why, and :func:`check_new_data` routes the run to
    ``skip_training``. A drift-triggered run trains below ``min_new_images``."""
    from ogiri.assets import DRIFT_ASSET_NAME
    from ogiri.train.datasets import build_dataset_version

    trigger = triggered_by(run)
    for event in run.asset_events.get(DRIFT_ASSET_NAME, []):
        log.warning("retraining on drift: endpoint %s, window %s, features %s (%s)", event.get("endpoint"),
                    event.get("window_start"), event.get("violations"), event.get("report_uri"))
    summary = build_dataset_version(
        run.client("s3"),
        run.client("dynamodb"),
        bucket=run.settings.bucket,
        table=run.settings.table,
        min_new_images=int(run.params["min_new_images"]),
        run_key=run.key,
        min_rating=run.params.get("min_rating"),
        triggered_by=trigger,
    )
    log.info("dataset %s (%s-triggered run): %s", summary["version"], trigger,
             json.dumps({k: summary[k] for k in ("counts", "new_images", "dropped_captions")}))
    return summary


def check_new_data(dataset: dict[str, Any]) -> str:
    """Branch: train (``configure_training``) or say visibly why not (``skip_training``)."""
    if dataset.get("skip_reason"):
        log.warning("training skipped: %s", dataset["skip_reason"])
        return NO_TRAINING_BRANCH
    return TRAINING_BRANCH


def skip_training(run: Run, dataset: dict[str, Any]) -> str:
    """The ledger row of a run that trains nothing, with the reason; the reason is the return value
    (shown as the task's XCom), so the run's grid shows a green ``skip_training`` and why."""
    from ogiri.ledger import Deployment

    reason = f"training skipped: {dataset['skip_reason']} ({dataset.get('triggered_by', 'manual')}-triggered run)"
    run.ledger.record_deployment(
        Deployment(run_key=run.key, endpoint_name=run.settings.endpoint_name, action="skip",
                   status="succeeded", reason=reason)
    )
    log.warning("%s (dataset version %s)", reason, dataset.get("version"))
    return reason


# -- 2. code ----------------------------------------------------------------------------------------


def package_code(run: Run, source_dir: str | Path = TRAINING_SOURCE_DIR) -> dict[str, Any]:
    """Upload ``include/training`` as ``sourcedir.tar.gz`` at its content-hashed key."""
    from ogiri.source import upload_source

    bundle = upload_source(run.client("s3"), run.settings.bucket, source_dir)
    log.info("training code %s (%s)", bundle.sourcedir_uri, "uploaded" if bundle.uploaded else "already in S3")
    return bundle.as_dict()


# -- 3. training ------------------------------------------------------------------------------------


def configure_training(run: Run, dataset: dict[str, Any], source: dict[str, Any]) -> list[dict[str, Any]]:
    """The CreateTrainingJob requests of this run, one per candidate (``train_model`` maps over them).
    A bad candidate (unknown hyperparameter, …) fails here, before any job starts, without retries."""
    from ogiri.images import training_image_uri

    image = training_image_uri(run.settings, run.params["instance_type"])
    try:
        listed = configs.candidates(run.params)
        requests = [configs.training_job_request(run.settings, run.names, run.params, dataset, source, image,
                                                 index=i, overrides=overrides)
                    for i, overrides in enumerate(listed)]
        tuning = configs.tuning_spec(run.params)
    except ValueError as exc:
        _fail(f"bad training configuration: {exc}")
    if tuning is not None:
        log.info("tuning %s: the tuning job %s trains the candidates (tune_model)", json.dumps(tuning),
                 run.names.tuning_job)
        return []
    for request, overrides in zip(requests, listed, strict=True):
        log.info("candidate %s: overrides %s", request["TrainingJobName"], json.dumps(overrides, sort_keys=True))
    return requests


def configure_tuning(run: Run, dataset: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """The CreateHyperParameterTuningJob request of the ``tuning`` param; skipped when it is null."""
    from ogiri.images import training_image_uri

    if configs.tuning_spec(run.params) is None:
        _skip("no tuning in this run (the tuning param is empty)")
    image = training_image_uri(run.settings, run.params["instance_type"])
    return configs.tuning_job_request(run.settings, run.names, run.params, dataset, source, image)


def _tuning_job(run: Run) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    from ogiri.aws import not_found

    try:
        return run.describe("hyper_parameter_tuning_job", run.names.tuning_job)
    except ClientError as exc:
        if not not_found(exc):
            raise
        return None


def _tuning_trials(run: Run) -> dict[str, dict[str, Any]]:
    """``{training job name: overrides}`` of every training job the run's tuning job started: the
    candidate's overrides with the tuned values (decoded as the training toolkit decodes them)."""
    sm, rows, token = run.client("sagemaker"), [], None
    while True:
        page = sm.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=run.names.tuning_job, MaxResults=100, **({"NextToken": token} if token else {}))
        rows += page["TrainingJobSummaries"]
        token = page.get("NextToken")
        if not token:
            break
    base = configs.candidates(run.params)[0]
    return {r["TrainingJobName"]: {**base, **{k: _decoded(v) for k, v in r["TunedHyperParameters"].items()}}
            for r in sorted(rows, key=lambda r: r["TrainingJobName"])}


def _decoded(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def _candidate_overrides(run: Run) -> dict[str, dict[str, Any]]:
    """``{training job name: hyperparameter overrides}`` of every training job this run trains: one per
    candidate, or every job of the tuning job."""
    if configs.tuning_spec(run.params) is not None:
        return _tuning_trials(run) if _tuning_job(run) else {}
    listed = configs.candidates(run.params)
    return dict(zip(run.names.candidate_jobs(len(listed)), listed, strict=True))


def _candidate_names(run: Run) -> list[str]:
    """The training jobs that compete in the evaluation: every candidate, or the tuning job's best."""
    if configs.tuning_spec(run.params) is None:
        return run.names.candidate_jobs(len(configs.candidates(run.params)))
    best = (_tuning_job(run) or {}).get("BestTrainingJob")
    return [best["TrainingJobName"]] if best else []


def _candidate_jobs(run: Run, names: list[str] | None = None) -> dict[str, dict[str, Any] | None]:
    """``{training job name: DescribeTrainingJob answer, or None when it was never started}`` of the
    run's candidates (or of ``names``), in order."""
    from botocore.exceptions import ClientError

    from ogiri.aws import not_found

    jobs: dict[str, dict[str, Any] | None] = {}
    for name in _candidate_names(run) if names is None else names:
        try:
            jobs[name] = run.describe("training_job", name)
        except ClientError as exc:
            if not not_found(exc):
                raise  # throttling, access denied…: a retry may see the job
            jobs[name] = None
    return jobs


def _record_candidate(run: Run, job: dict[str, Any], overrides: dict[str, Any],
                      dataset: dict[str, Any] | None) -> dict[str, Any]:
    from ogiri.ledger import TrainingRun
    from ogiri.train.cost import training_cost

    cost = training_cost(job, run.settings.instance_prices)
    metrics = {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])}
    run.ledger.record_training_run(
        TrainingRun.from_description(
            job, run_key=run.key, dataset_version=(dataset or {}).get("version"),
            hyperparameters=configs.candidate_hyperparameters(run.params, overrides), cost=cost, metrics=metrics,
            triggered_by=(dataset or {}).get("triggered_by"),
        )
    )
    log.info(
        "training job %s %s: %d billable s on %s = %s USD (spot=%s)%s",
        job["TrainingJobName"], job["TrainingJobStatus"], cost.billable_seconds, cost.instance_type,
        cost.usd, cost.spot, f"; {job['FailureReason']}" if job.get("FailureReason") else "",
    )
    return {"job": job["TrainingJobName"], "status": job["TrainingJobStatus"], "cost": cost.as_dict(),
            "metrics": metrics}


def record_training(run: Run, dataset: dict[str, Any] | None) -> dict[str, Any]:
    """One ledger row per candidate's training job (status, billable seconds, cost, artifact, final
    metrics, failure reason). Fails when no candidate completed: a run fails only if all do."""
    try:
        overrides = _candidate_overrides(run)
    except ValueError as exc:  # configure_training failed on it already: nothing was started
        _fail(f"bad training configuration: {exc}")
    jobs = _candidate_jobs(run, list(overrides))
    if not any(jobs.values()):
        if dataset is None or dataset.get("skip_reason"):
            _skip("no training job was started in this run")
        _fail(f"no training job was started for any of the {len(jobs)} candidate(s): {sorted(jobs)}")
    candidates = [_record_candidate(run, job, overrides[name], dataset) for name, job in jobs.items() if job]
    completed = [c["job"] for c in candidates if c["status"] == "Completed"]
    if completed and dataset:
        from ogiri.train.datasets import mark_trained

        mark_trained(run.client("s3"), run.settings.bucket, dataset["version"])
    if not completed:
        _fail("every candidate failed: " + "; ".join(f"{c['job']} {c['status']}" for c in candidates))
    left_out = [name for name in jobs if name not in completed]
    if left_out:
        log.warning("left out of the evaluation (not Completed): %s", left_out)
    return {"candidates": candidates, "completed": completed}


# -- 4. evaluation ----------------------------------------------------------------------------------


def configure_evaluation(run: Run, dataset: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """The CreateProcessingJob request scoring every completed candidate and the serving champion on the
    frozen test manifest, in one job. Candidates whose job did not complete are left out (logged)."""
    from ogiri.endpoints import serving
    from ogiri.images import training_image_uri

    jobs = _candidate_jobs(run)
    completed = {name: job["ModelArtifacts"]["S3ModelArtifacts"] for name, job in jobs.items()
                 if job and job["TrainingJobStatus"] == "Completed"}
    for name, job in jobs.items():
        if name not in completed:
            log.warning("candidate %s left out: %s", name, (job or {}).get("TrainingJobStatus", "never started"))
    if not completed:
        _fail(f"no candidate completed training: {sorted(jobs)}")
    champion = serving(run.client("sagemaker"), run.settings.endpoint_name)
    champion_artifact = champion["model_artifact"] if champion else None
    log.info("evaluating candidates %s against champion %s", sorted(completed), champion_artifact or "(none)")
    image = training_image_uri(run.settings, run.settings.processing_instance_type)
    return configs.evaluation_job_request(
        run.settings, run.names, dataset, source, image, completed, champion_artifact
    )


def read_evaluation(run: Run) -> dict[str, Any]:
    """The evaluation job's ``evaluation.json``, read through the configured AWS connection.

    (The provider's ``output_files_to_xcom`` is not used: it builds a bare S3 client that ignores
    the connection's ``endpoint_url``, so it cannot reach S3-compatible endpoints.)
    """
    from botocore.exceptions import ClientError

    from ogiri.aws import s3_missing

    uri = configs.evaluation_report_uri(run.settings, run.names)
    try:
        return json.loads(read_uri(run.client("s3"), uri))
    except ClientError as exc:
        if not s3_missing(exc):
            raise  # throttling, access, network: worth the task's retries
        _fail(f"the evaluation job wrote no report at {uri}")
    except ValueError as exc:  # not JSON / not UTF-8: a retry would read the same bytes
        _fail(f"the evaluation report {uri} is not valid JSON: {exc}")


def _log_evaluation_cost(run: Run) -> None:
    """Put the evaluation job's billable time and price in the task log (the run's other cost)."""
    from ogiri.train.cost import processing_cost

    job = run.describe("processing_job", run.names.evaluation_job)
    cost = processing_cost(job, run.settings.instance_prices)
    log.info("evaluation job %s: %d billable s on %s = %s USD", run.names.evaluation_job,
             cost.billable_seconds, cost.instance_type, cost.usd)


def _report_metrics(run: Run, report: dict[str, Any]) -> tuple[Any, dict[str, Any] | None]:
    """The best candidate of the report (:func:`~ogiri.train.gate.pick_best`) and the champion's metrics."""
    from ogiri.train.gate import pick_best

    models = report.get("models")
    if not isinstance(models, dict):
        _fail(f"evaluation.json has no models: {json.dumps(report)[:500]}")
    scored, left_out = {}, {}
    for name in _candidate_names(run):
        entry = models.get(name)
        if entry is None:
            left_out[name] = "not evaluated (training did not complete)"
        elif entry.get("metrics"):
            scored[name] = entry["metrics"]
        else:
            left_out[name] = f"could not be scored: {entry.get('error') or 'no metrics'}"
    if not scored:
        _fail(f"evaluation.json scored no candidate: {json.dumps(left_out)[:500]}")
    try:
        pick = pick_best(scored, left_out)
    except ValueError as exc:
        _fail(f"evaluation.json has unusable candidate metrics: {exc}")
    return pick, (models.get(configs.CHAMPION) or {}).get("metrics")


def decide_deployment(run: Run) -> str:
    """Pick the best candidate, gate it against the champion; record the evaluation (it names the winner
    and why); return the branch to follow."""
    from ogiri.endpoints import serving
    from ogiri.ledger import Evaluation
    from ogiri.train.gate import decide

    pick, champion = _report_metrics(run, read_evaluation(run))
    decision = decide(
        pick.metrics,
        champion,
        min_cider_improvement=float(run.params["min_cider_improvement"]),
        max_bleu_regression=float(run.params["max_bleu_regression"]),
        force=bool(run.params["force_deploy"]),
    )
    endpoint = run.settings.endpoint_name
    serving_now = serving(run.client("sagemaker"), endpoint) if champion is not None else None
    champion_row = run.ledger.champion(endpoint) if champion is not None else None
    run.ledger.record_evaluation(
        Evaluation(
            candidate_job=pick.winner,
            decision="deploy" if decision.deploy else "skip",
            run_key=run.key,
            champion_job=(champion_row or {}).get("training_job"),
            champion_model=(serving_now or {}).get("model_name"),
            candidate_metrics=pick.metrics,
            champion_metrics=champion,
            reason=f"{decision.reason}; winner {pick.reason}",
            evaluation_uri=configs.evaluation_report_uri(run.settings, run.names),
        )
    )
    _log_evaluation_cost(run)
    log.info("candidates: %s", pick.reason)
    if "rated_mean_rating" in pick.metrics:  # issue 16: where the frozen test set has human ratings
        log.info("rated test set: the winner's captions match captions rated %.2f on average (%d rated image(s))",
                 pick.metrics["rated_mean_rating"], pick.metrics.get("rated_test_images", 0))
    log.info("gate: %s %s (%s)", "DEPLOY" if decision.deploy else "SKIP", pick.winner, decision.reason)
    return DEPLOY_BRANCH if decision.deploy else SKIP_BRANCH


def winner_job(run: Run) -> str:
    """The training job the gate picked in this run (its evaluation row); the run's first candidate
    when the run has no evaluation yet."""
    row = run.ledger.latest_evaluation_for_run(run.key)
    return row["candidate_job"] if row else run.names.training_job


def record_skip(run: Run) -> str:
    """Ledger row saying this run did not deploy, with the gate's reason."""
    from ogiri.ledger import Deployment

    evaluation = run.ledger.get_evaluation(winner_job(run)) or {}
    reason = f"deployment skipped: {evaluation.get('reason') or 'gate decided not to deploy'}"
    run.ledger.record_deployment(
        Deployment(run_key=run.key, endpoint_name=run.settings.endpoint_name, action="skip", status="succeeded",
                   training_job=evaluation.get("candidate_job"), reason=reason)
    )
    log.warning(reason)
    return reason


# -- 5. deployment ----------------------------------------------------------------------------------


def configure_deployment(run: Run) -> dict[str, Any]:
    """Model, endpoint-config and endpoint requests, whether to create or update, and what to roll back to."""
    from ogiri.endpoints import serving
    from ogiri.images import inference_image_uri
    from ogiri.ledger import Deployment

    settings, names, winner = run.settings, run.names, winner_job(run)
    artifact = _training_job(run)["ModelArtifacts"]["S3ModelArtifacts"]
    image = inference_image_uri(settings)
    previous = serving(run.client("sagemaker"), settings.endpoint_name)
    operation = "update" if previous else "create"
    endpoint_config = configs.endpoint_config_request(settings, names,
                                                      capture_percent=run.params["capture_sampling_percent"])
    guard = _guardrails(run, endpoint_config, operation)
    plan = {
        "names": names.as_dict(),
        "operation": operation,
        "image_uri": image,
        "model_artifact": artifact,
        "model": configs.model_request(settings, names, image, artifact, run.params["model_env"]),
        "endpoint_config": endpoint_config,
        "endpoint": {**configs.endpoint_request(settings, names), **guard["request"]},
        "guardrails": {k: guard[k] for k in ("strategy", "alarms", "alarm_requests")},
        "previous": previous,
        "previous_champion": run.ledger.champion(settings.endpoint_name),
    }
    run.ledger.record_deployment(
        Deployment(run_key=run.key, endpoint_name=settings.endpoint_name, action=operation, status="in_progress",
                   endpoint_config=names.endpoint_config, model_name=names.model,
                   training_job=winner, model_artifact=artifact,
                   strategy=guard["strategy"], alarms=guard["alarms"])
    )
    log.info("%s endpoint %s with %s (previous: %s)", operation, settings.endpoint_name, names.endpoint_config,
             (previous or {}).get("endpoint_config"))
    return plan


def _guardrails(run: Run, endpoint_config: dict[str, Any], operation: str) -> dict[str, Any]:
    """The alarms on the new fleet and, for an update, the request's DeploymentConfig."""
    from ogiri.train import guardrails

    requests = guardrails.alarm_requests(run.params, run.settings, endpoint_config)
    alarms = [r["AlarmName"] for r in requests]
    if operation == "create":
        log.info("first deploy of %s: nothing serves yet, so there is no traffic to shift (the %s strategy "
                 "applies from the next update)", run.settings.endpoint_name, run.params["deployment_strategy"])
        return {"strategy": None, "alarms": alarms, "alarm_requests": requests, "request": {}}
    log.info("guarded update: %s; rolls back automatically if %s fires", guardrails.describe_strategy(run.params),
             " or ".join(alarms))
    return {"strategy": run.params["deployment_strategy"], "alarms": alarms, "alarm_requests": requests,
            "request": {"DeploymentConfig": guardrails.deployment_config(run.params, alarms)}}


def put_rollback_alarms(run: Run, plan: dict[str, Any]) -> list[str]:
    """Create or update (PutMetricAlarm overwrites) the alarms on this run's new fleet; before the
    endpoint call, so SageMaker can watch them during the bake."""
    cloudwatch = run.client("cloudwatch")
    for request in plan["guardrails"]["alarm_requests"]:
        cloudwatch.put_metric_alarm(**request)
        what = request.get("ExtendedStatistic") or request.get("Statistic")
        log.info("alarm %s: %s of %s > %s over %ss on %s", request["AlarmName"], what, request["MetricName"],
                 request["Threshold"], request["Period"], plan["names"]["endpoint_config"])
    alarms = plan["guardrails"]["alarms"]
    for alarm in cloudwatch.describe_alarms(AlarmNames=alarms)["MetricAlarms"]:
        log.info("alarm %s is %s (%s)", alarm["AlarmName"], alarm["StateValue"], alarm.get("StateReason"))
    return alarms


def choose_endpoint_operation(plan: dict[str, Any]) -> str:
    """``create_endpoint`` when the endpoint is absent, ``update_endpoint`` when it exists."""
    return f"{plan['operation']}_endpoint"


def _jsonl(s3: Any, uri: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in read_uri(s3, uri).decode().split("\n") if x.strip()]


def _held_out_samples(s3: Any, dataset: dict[str, Any], n: int) -> tuple[list[tuple[str, bytes]], frozenset]:
    from ogiri.train.smoke import vocabulary_of

    seen, samples = set(), []
    for record in _jsonl(s3, dataset["uris"]["test"]):
        if record["image"] in seen:
            continue
        seen.add(record["image"])
        samples.append((record.get("image_key") or record["image"], read_uri(s3, dataset["images_uri"] + record["image"])))
        if len(samples) >= n:
            break
    return samples, vocabulary_of(r["caption"] for r in _jsonl(s3, dataset["uris"]["train"]))


def _serving_problems(run: Run) -> list[str]:
    """Why the endpoint is not serving this run's endpoint config, InService (empty when it is)."""
    from ogiri.endpoints import serving, wait_in_service

    endpoint, sm = run.settings.endpoint_name, run.client("sagemaker")
    try:
        wait_in_service(sm, endpoint, poll_s=float(run.params["poll_seconds"]), timeout_s=3600)
    except Exception as exc:
        return [f"endpoint did not settle: {exc}"]
    now = serving(sm, endpoint)
    if now is None or now["endpoint_config"] != run.names.endpoint_config or now["status"] != "InService":
        state = {k: (now or {}).get(k) for k in ("status", "endpoint_config", "failure_reason")}
        return [f"endpoint {endpoint} is not serving {run.names.endpoint_config}: {json.dumps(state)}"]
    return []


def _deployment_row(run: Run, plan: dict[str, Any], *, action: str, status: str, reason: str,
                    previous: dict[str, Any] | None = None, **outcome: Any) -> Any:
    from ogiri.ledger import Deployment

    if previous is not None:  # the rollback row names what serves again
        champion = plan.get("previous_champion") or {}
        return Deployment(run_key=run.key, endpoint_name=run.settings.endpoint_name, action=action, status=status,
                          endpoint_config=previous["endpoint_config"], model_name=previous["model_name"],
                          training_job=champion.get("training_job"), model_artifact=previous["model_artifact"],
                          reason=reason, **outcome)
    return Deployment(run_key=run.key, endpoint_name=run.settings.endpoint_name, action=action, status=status,
                      endpoint_config=run.names.endpoint_config, model_name=run.names.model,
                      training_job=winner_job(run), model_artifact=plan["model_artifact"], reason=reason,
                      **outcome)


def _alarm_rollback(run: Run, plan: dict[str, Any]) -> None:
    """When SageMaker rolled this run's update back because an alarm fired: record it and fail."""
    from ogiri.endpoints import serving
    from ogiri.train.guardrails import tripped_alarm

    now = serving(run.client("sagemaker"), run.settings.endpoint_name) or {}
    alarm = tripped_alarm(now.get("failure_reason"), (plan.get("guardrails") or {}).get("alarms") or [])
    previous = plan.get("previous")
    if plan["operation"] != "update" or alarm is None or not previous or now.get("endpoint_config") != previous[
            "endpoint_config"]:
        return
    message = (f"SageMaker rolled back the {plan['guardrails']['strategy']} update of {run.settings.endpoint_name} "
               f"to {run.names.model}: alarm {alarm} fired ({now.get('failure_reason')}); "
               f"{previous['endpoint_config']} serves again")
    run.ledger.record_deployment(_deployment_row(run, plan, action="rollback", status="succeeded", reason=message,
                                                 previous=previous, outcome="rolled_back_by_alarm",
                                                 outcome_alarm=alarm))
    log.error(message)
    _fail(message)


def _roll_back(run: Run, plan: dict[str, Any], failures: list[str]) -> None:
    """Record the failed deployment (rolling back to the previous config when there is one) and fail."""
    from ogiri.endpoints import rollback

    endpoint = run.settings.endpoint_name
    message = f"deployment of {run.names.model} to {endpoint} failed its smoke test: " + "; ".join(failures[:10])
    previous = plan.get("previous")
    if previous:
        rollback(run.client("sagemaker"), endpoint, previous["endpoint_config"],
                 poll_s=float(run.params["poll_seconds"]))
        run.ledger.record_deployment(
            _deployment_row(run, plan, action="rollback", status="succeeded", reason=message, previous=previous,
                            outcome="rolled_back_by_smoke_test")
        )
        message += f"; rolled back to {previous['endpoint_config']}"
    else:
        run.ledger.record_deployment(
            _deployment_row(run, plan, action=plan["operation"], status="failed", reason=message, outcome="failed")
        )
    log.error(message)
    _fail(message)


def smoke_test_endpoint(run: Run, plan: dict[str, Any] | None, dataset: dict[str, Any]) -> dict[str, Any]:
    """Invoke the updated endpoint with held-out images. If the new config is not the one serving, or
    its answers are not sane captions in time, point the endpoint back at the previous config, record
    the rollback and fail the run loudly."""
    from ogiri.train.smoke import smoke_test

    if not plan:
        _skip("nothing was deployed in this run")
    failures = _serving_problems(run)
    if failures:
        _alarm_rollback(run, plan)
    result: dict[str, Any] = {}
    if not failures:
        samples, vocabulary = _held_out_samples(run.client("s3"), dataset, int(run.params["smoke_samples"]))
        outcome = smoke_test(
            run.client("sagemaker-runtime"), run.settings.endpoint_name, samples, vocabulary=vocabulary,
            max_latency_s=float(run.params["smoke_max_latency_seconds"]),
        )
        result = outcome.as_dict()
        log.info("smoke test captions: %s", json.dumps(outcome.captions, ensure_ascii=False))
        failures.extend(outcome.failures)
    if failures:
        _roll_back(run, plan, failures)
    run.ledger.record_deployment(
        _deployment_row(run, plan, action=plan["operation"], status="succeeded",
                        reason=f"smoke test passed (max latency {result['max_latency_s']}s)", outcome="succeeded")
    )
    return result


def register_model(run: Run, plan: dict[str, Any], dataset: dict[str, Any]) -> str:
    """Register the deployed candidate in the Model Registry (approved) with its evaluation metrics."""
    from ogiri.train.registry import register_model_version

    winner = winner_job(run)
    evaluation = run.ledger.get_evaluation(winner) or {}
    arn = register_model_version(
        run.client("sagemaker"),
        group=configs.model_package_group(run.settings),
        training_job=winner,
        image_uri=plan["image_uri"],
        model_data_url=plan["model_artifact"],
        metrics=evaluation.get("candidate_metrics") or {},
        evaluation_uri=evaluation.get("evaluation_uri"),
        dataset_version=dataset.get("version"),
        approved=True,
    )
    log.info("registered %s as %s", winner, arn)
    return arn


def delete_unused_resources(run: Run) -> list[str]:
    """Delete this run's model and endpoint config when the endpoint does not use them (skip, failure,
    rollback). Leaves everything alone while the endpoint is still changing."""
    from botocore.exceptions import ClientError

    from ogiri.aws import not_found
    from ogiri.endpoints import serving

    sm, names = run.client("sagemaker"), run.names
    now = serving(sm, run.settings.endpoint_name)
    if now and now["status"] not in {"InService", "Failed"}:
        log.warning("endpoint %s is %s; not cleaning up", run.settings.endpoint_name, now["status"])
        return []
    doomed = []
    if not now or now["endpoint_config"] != names.endpoint_config:
        doomed.append((sm.delete_endpoint_config, {"EndpointConfigName": names.endpoint_config}))
    if not now or now["model_name"] != names.model:
        doomed.append((sm.delete_model, {"ModelName": names.model}))
    deleted = []
    for delete, request in doomed:
        try:
            delete(**request)
            deleted.extend(request.values())
        except ClientError as exc:
            if not not_found(exc):  # never created, or already deleted: nothing to do
                raise
    log.info("deleted unused resources: %s", deleted or "none")
    return deleted
