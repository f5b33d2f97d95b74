"""Bodies of the ``ogiri_monitor`` tasks up to the Processing job: what serves, which hour, the code
bundle and the job's request. The DAG file only wires them; results are in :mod:`ogiri.monitor.results`.

XCom carries names, URIs and counts only: captured content (user data) never leaves S3 and the job.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ogiri.monitor.params import SETTING_DEFAULTS, form_defaults
from ogiri.monitor.window import Window, job_name
from ogiri.processing import (
    PROCESSING_ROOT,
    cluster,
    code_input,
    processing_input,
    processing_output,
    script_app,
)
from ogiri.runs import Run

log = logging.getLogger(__name__)

TRAINING_SOURCE_DIR = Path(__file__).resolve().parents[3] / "include" / "training"
SCRIPT = "monitor.py"
CAPTURE_DIR = f"{PROCESSING_ROOT}/capture"
MODEL_DIR = f"{PROCESSING_ROOT}/model"
REPORT_DIR = f"{PROCESSING_ROOT}/report"
#: A window's job reads at most ``max_images`` requests; an hour of them is small.
MAX_RUNTIME_S = 3600


def run_for(context: Any = None) -> Run:
    """The :class:`~ogiri.runs.Run` of an ``ogiri_monitor`` task (params merged with the settings)."""
    return Run.from_context(context, defaults=SETTING_DEFAULTS)


def run_for_key(key: str, **params: Any) -> Run:
    """The same outside Airflow (tests, scripts): the form's defaults with ``params`` overridden."""
    return Run.for_key(key, form_defaults(**params), defaults=SETTING_DEFAULTS)


def window_for(run: Run) -> Window:
    """The hour this run checks (see :mod:`ogiri.monitor.window`)."""
    return Window.for_run(run.params["endpoint_name"], window_start=run.params.get("window_start"),
                          logical_date=run.logical_date, run_after=run.run_after)


def _skip(message: str) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    raise AirflowSkipException(message)


# -- 1. what serves, which hour ---------------------------------------------------------------------


def model_during(run: Run, window: Window, live: dict[str, Any]) -> tuple[str, str]:
    """``(model name, model.tar.gz URI)`` of the model that answered the window: the ledger's champion
    deployed before the window ended, so a backfill after a redeploy compares with the baseline of
    the model that served then; the endpoint's current model when the ledger knows no earlier one."""
    then = run.ledger.champion_at(window.endpoint, window.end.isoformat())
    if not then or not then.get("model_name") or then["model_name"] == live["model_name"]:
        return live["model_name"], live["model_artifact"]
    artifact = then.get("model_artifact")
    if not artifact:
        model = run.describe("model", then["model_name"])
        artifact = (model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]).get("ModelDataUrl")
    log.info("window %s was served by %s (now %s)", window.label, then["model_name"], live["model_name"])
    return then["model_name"], artifact


def resolve_serving_model(run: Run) -> dict[str, Any]:
    """The model that served the window (DescribeEndpoint → config → model → ``ModelDataUrl``, or the
    ledger's champion of that time: :func:`model_during`), the endpoint's variant, the window and where
    its capture and report live. No endpoint: nothing to monitor (skipped)."""
    from ogiri.endpoints import serving

    window = window_for(run)
    live = serving(run.client("sagemaker"), window.endpoint)
    if live is None:
        _skip(f"endpoint {window.endpoint} does not exist: no window to monitor")
    destination = (live.get("data_capture") or {}).get("DestinationS3Uri") or run.settings.s3_uri("capture")
    capture = window.capture_prefix(destination, live["variant_name"])
    report_prefix = window.report_prefix(run.settings)
    model_name, model_artifact = model_during(run, window, live)
    found = {
        "endpoint_name": window.endpoint,
        "model_name": model_name,
        "model_artifact": model_artifact,
        "variant_name": live["variant_name"],
        "capture_enabled": bool((live.get("data_capture") or {}).get("EnableCapture")),
        "window": window.as_dict(),
        "capture_uri": capture,
        "capture_glob": capture + "*",
        "report_prefix": report_prefix,
        "report_uri": report_prefix + "report.json",
        "processing_job": job_name(run.key),
    }
    log.info("window %s of %s: model %s, capture %s", window.label, window.endpoint, model_name, capture)
    if not found["capture_enabled"]:
        log.warning("endpoint %s has no data capture enabled: its windows stay empty", window.endpoint)
    return found


# -- 2. the job -------------------------------------------------------------------------------------


def package_code(run: Run, source_dir: str | Path = TRAINING_SOURCE_DIR) -> dict[str, Any]:
    """Upload ``include/training`` (``monitor.py`` beside ``evaluate.py``) at its content-hashed key."""
    from ogiri.source import upload_source

    bundle = upload_source(run.client("s3"), run.settings.bucket, source_dir)
    log.info("monitoring code %s (%s)", bundle.files_uri, "uploaded" if bundle.uploaded else "already in S3")
    return bundle.as_dict()


def monitor_arguments(params: dict[str, Any], found: dict[str, Any]) -> list[str]:
    """``monitor.py``'s command line (docs/interfaces.md): the window, the model and the thresholds."""
    args = [
        "--capture", CAPTURE_DIR,
        "--model", MODEL_DIR,
        "--output", REPORT_DIR,
        "--endpoint", found["endpoint_name"],
        "--window-start", found["window"]["start"],
        "--window-end", found["window"]["end"],
        "--model-name", found["model_name"],
        "--max-images", str(int(params["max_images"])),
        "--psi-threshold", str(float(params["psi_threshold"])),
        "--js-threshold", str(float(params["js_threshold"])),
    ]
    if params.get("distance_threshold") is not None:
        args += ["--distance-threshold", str(float(params["distance_threshold"]))]
    return args


def monitoring_job_request(settings: Any, run_key: str, params: dict[str, Any], found: dict[str, Any],
                           source: dict[str, Any], image_uri: str) -> dict[str, Any]:
    """CreateProcessingJob request running ``monitor.py`` on the window's capture against the serving
    model's ``model.tar.gz`` (its ``baseline.json``); the report lands under ``monitoring/``."""
    return {
        "ProcessingJobName": found["processing_job"],
        "RoleArn": settings.sagemaker_role_arn,
        "AppSpecification": script_app(image_uri, SCRIPT, monitor_arguments(params, found)),
        "ProcessingInputs": [
            code_input(source),
            processing_input("capture", found["capture_uri"], CAPTURE_DIR),
            processing_input("model", found["model_artifact"], MODEL_DIR),
        ],
        "ProcessingOutputConfig": {"Outputs": [processing_output("report", found["report_prefix"], REPORT_DIR)]},
        "ProcessingResources": cluster(settings.processing_instance_type),
        "StoppingCondition": {"MaxRuntimeInSeconds": MAX_RUNTIME_S},
        "Tags": [{"Key": "ogiri:run-key", "Value": run_key[:256]},
                 {"Key": "ogiri:window", "Value": found["window"]["label"]}],
    }


def configure_monitoring(run: Run, found: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """The window's CreateProcessingJob request (same image and code as ``ogiri_train``'s evaluation)."""
    from ogiri.images import training_image_uri

    image = training_image_uri(run.settings, run.settings.processing_instance_type)
    return monitoring_job_request(run.settings, run.key, run.params, found, source, image)
