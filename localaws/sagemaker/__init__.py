"""SageMaker extensions of the emulator: jobs and endpoints that really run our code.

`install()` (called once by the server, after it sets LOCALAWS_ENDPOINT_URL and LOCALAWS_HOME)
swaps moto's SageMaker backend class for `LocalSageMakerBackend`, adds the API handlers moto lacks
(StopTrainingJob, UpdateEndpoint, StopTransformJob; Create*Job keep `Environment`) and makes
sagemaker-runtime InvokeEndpoint call the endpoint's model server. `reset()` / `shutdown()` kill
every process started.

Behaviour (see the module docstrings for details):
* training (`training.py`): script mode, work dir `$LOCALAWS_HOME/training/<job>/`; InProgress with
  SecondaryStatus Starting → Downloading → Training → Uploading → Completed; Failed with
  `AlgorithmError: <output/failure>` or the stderr tail; StopTrainingJob → Stopping → Stopped;
  MaxRuntimeInSeconds → Stopped / MaxRuntimeExceeded (model still uploaded, like SageMaker).
* processing (`processing.py`), transform (`transform.py`), endpoints (`endpoints.py`); model
  servers are `model_worker.py` subprocesses speaking SageMaker's /ping + /invocations and calling
  the handlers as sagemaker-inference does. The training env is the toolkits' (`toolkit.py`).
* Job code and model servers run as the execution role (`roles.py`); unknown resources answer in
  SageMaker's words (`messages.py`).
* Endpoint updates are blue/green with DeploymentConfig (`deployments.py`): canary or linear traffic
  shifting, baking periods, auto-rollback on CloudWatch alarms; InvokeEndpoint publishes the
  `AWS/SageMaker` invocation metrics (`metrics.py`) that `localaws.cloudwatch` evaluates alarms on.
* labeling jobs (``labeling/``): Ground Truth custom workflows; the pre-annotation and
  consolidation Lambdas run as Python subprocesses (``localaws.lambdas``); a simulated private
  workforce configured through ``/_localaws/workforce``; Ground Truth's output layout.
* Env knobs: LOCALAWS_STOP_GRACE_SECONDS (5), LOCALAWS_MODEL_STARTUP_TIMEOUT (300),
  LOCALAWS_INVOKE_TIMEOUT (60), LOCALAWS_CAPTURE_FLUSH_SECONDS (5).
* Endpoint data capture (``capture.py``): DataCaptureConfig validated, captured requests written to
  S3 in SageMaker's JSON Lines layout as the model's execution role.
"""

from __future__ import annotations

import atexit
import threading

_installed = False
_lock = threading.Lock()


def install() -> None:
    """Install the SageMaker backend extensions into moto (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        from moto.sagemaker import models
        from moto.sagemaker.responses import SageMakerResponse
        from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

        from localaws.sagemaker import runtime
        from localaws.sagemaker.backend import RESPONSE_METHODS, LocalSageMakerBackend
        from localaws.sagemaker.labeling.responses import RESPONSE_METHODS as LABELING_METHODS

        models.sagemaker_backends.backend = LocalSageMakerBackend
        for account_backends in models.sagemaker_backends.values():
            account_backends.backend = LocalSageMakerBackend
            account_backends.clear()
        for name, method in {**RESPONSE_METHODS, **LABELING_METHODS}.items():
            setattr(SageMakerResponse, name, method)
        SageMakerRuntimeResponse.invoke_endpoint = runtime.invoke_endpoint
        # Binary bodies (images) must not be decoded as UTF-8 (moto would answer 500).
        SageMakerRuntimeResponse.use_raw_body = True
        atexit.register(shutdown)
        _installed = True


def reset() -> None:
    """Kill every job process and model server (the server calls this on `/moto-api/reset`)."""
    from localaws.sagemaker import capture
    from localaws.sagemaker.labeling.workforce import STORE
    from localaws.sagemaker.registry import REGISTRY

    REGISTRY.shutdown()
    STORE.clear()
    capture.reset()


def shutdown() -> None:
    """Kill every job process and model server (the server calls this on exit)."""
    reset()
