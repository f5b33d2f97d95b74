"""The ``ogiri_train`` trigger form: every per-run choice and its default, in one place.

The DAG file passes :data:`PARAMS` to ``@dag(params=…)``; task code reads the merged values from
:class:`~ogiri.runs.Run` and never carries a literal default of its own. Params whose default is
``None`` fall back to the deployment setting named in :data:`SETTING_DEFAULTS`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param

from ogiri.runs import form_values
from ogiri.train.configs import MAX_CANDIDATES, TUNABLE, TUNING_STRATEGIES

PARAMS = {
    "instance_type": Param(None, type=["null", "string"], title="Training instance type",
                           description="Empty: the deployment default (OGIRI_TRAINING_INSTANCE_TYPE, ml.g5.xlarge)."),
    "epochs": Param(None, type=["null", "integer"], minimum=1, title="Epochs",
                    description="At least 1. Empty: OGIRI_TRAIN_EPOCHS (10)."),
    "batch_size": Param(64, type="integer", minimum=1, title="Batch size"),
    "lr": Param(0.001, type="number", exclusiveMinimum=0, title="Learning rate"),
    "encoder": Param(None, type=["null", "string"], enum=[None, "resnet50", "resnet34", "resnet18"],
                     title="Image encoder", description="Empty: OGIRI_TRAIN_ENCODER (resnet50)."),
    "decoder": Param("lstm", type="string", enum=["lstm", "transformer"], title="Caption decoder"),
    "image_size": Param(None, type=["null", "integer"], minimum=32, title="Image size (pixels)",
                        description="Empty: OGIRI_TRAIN_IMAGE_SIZE (224)."),
    # Human ratings (issue 16; the caption table's Rating, 1-5 = mean of the fit and humour medians)
    "min_rating": Param(None, type=["null", "number"], minimum=1, maximum=5, title="Minimum caption rating",
                        description="Drop training/validation captions rated below this (1-5); unrated "
                                    "captions are kept and the frozen test set is never filtered. Empty: no filter."),
    "rating_weight": Param(0.0, type="number", minimum=0, title="Rating weight",
                           description="Sample weight of a rated caption in the training loss: "
                                       "max(0.05, 1 + rating_weight * (rating - 3) / 2); unrated captions "
                                       "weigh 1. 0: ratings do not weigh."),
    "extra_hyperparameters": Param({}, type="object", title="Other hyperparameters",
                                   description="e.g. {\"embed_dim\": 256, \"beam_width\": 3}"),
    "candidates": Param([{}], type="array", minItems=1, maxItems=MAX_CANDIDATES, items={"type": "object"},
                        title="Candidates",
                        description="One training job per entry, each a set of hyperparameter overrides over "
                                    "the fields above, e.g. [{\"decoder\": \"lstm\"}, {\"decoder\": "
                                    "\"transformer\", \"embed_dim\": 384}]. The best on the frozen test set "
                                    f"meets the gate. [{{}}]: one candidate, the fields above. At most {MAX_CANDIDATES}."),
    "tuning": Param(None, type=["null", "object"], title="Hyperparameter tuning",
                    properties={"strategy": {"type": "string", "enum": list(TUNING_STRATEGIES)},
                                "max_jobs": {"type": "integer", "minimum": 1},
                                "max_parallel": {"type": "integer", "minimum": 1},
                                "ranges": {"type": "object", "minProperties": 1}},
                    required=["ranges"], additionalProperties=False,
                    description="Empty: no tuning. Else one SageMaker tuning job (objective val_cider, "
                                "maximised) replaces the candidates' training and its best job is the candidate, "
                                "e.g. {\"strategy\": \"Random\", \"max_jobs\": 4, \"max_parallel\": 2, "
                                "\"ranges\": {\"lr\": {\"min\": 0.0005, \"max\": 0.01, \"scaling\": "
                                "\"Logarithmic\"}, \"decoder\": {\"values\": [\"lstm\", \"transformer\"]}}}. "
                                f"Tunable: {', '.join(sorted(TUNABLE))}."),
    "use_spot": Param(None, type=["null", "boolean"], title="Managed Spot Training",
                      description="Empty: OGIRI_TRAIN_USE_SPOT (true)."),
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
    "poll_seconds": Param(None, type=["null", "number"], exclusiveMinimum=0, title="Endpoint poll interval (s)",
                          description="Empty: OGIRI_SAGEMAKER_POLL_SECONDS (30)."),
    # Guarded endpoint updates (SageMaker deployment guardrails; the first deploy has nothing to shift)
    "deployment_strategy": Param("canary", type="string", enum=["all_at_once", "canary", "linear"],
                                 title="Endpoint update traffic shifting",
                                 description="canary: the canary share, bake, then the rest; linear: equal "
                                 "steps, each baked; all_at_once: everything, then one bake."),
    "canary_percent": Param(10, type="integer", minimum=1, maximum=50, title="Canary size (% of capacity)"),
    "linear_step_percent": Param(25, type="integer", minimum=10, maximum=50, title="Linear step (% of capacity)"),
    "wait_interval_seconds": Param(None, type=["null", "integer"], minimum=0, maximum=3600,
                                   title="Baking period after each step (s)",
                                   description="Empty: OGIRI_DEPLOY_WAIT_INTERVAL_S (300)."),
    "max_execution_timeout_seconds": Param(3600, type="integer", minimum=600, maximum=28800,
                                           title="Maximum deployment time (s)",
                                           description="Larger than the waits; past it SageMaker rolls back."),
    "termination_wait_seconds": Param(0, type="integer", minimum=0, maximum=3600,
                                      title="Keep the old fleet after the shift (s)"),
    "alarm_max_5xx_rate": Param(None, type=["null", "number"], minimum=0, maximum=1,
                                title="Roll back above this 5XX error rate on the new fleet",
                                description="Empty: OGIRI_ALARM_MAX_5XX_RATE (0.05)."),
    "alarm_max_p99_latency_ms": Param(None, type=["null", "number"], exclusiveMinimum=0,
                                      title="Roll back above this p99 model latency on the new fleet (ms)",
                                      description="Empty: OGIRI_ALARM_MAX_P99_LATENCY_MS (5000)."),
    # Monitoring: endpoint data capture
    "capture_sampling_percent": Param(None, type=["null", "integer"], minimum=0, maximum=100,
                                      title="Data capture sampling (% of endpoint requests)",
                                      description="Empty: OGIRI_CAPTURE_SAMPLING_PERCENT (100). 0 turns "
                                      "capture off (EnableCapture false)."),
}


#: Params that fall back to a deployment setting (``Settings`` attribute) when the form leaves them empty.
SETTING_DEFAULTS = {
    "instance_type": "training_instance_type",
    "epochs": "train_epochs",
    "image_size": "train_image_size",
    "encoder": "train_encoder",
    "use_spot": "train_use_spot",
    "min_new_images": "min_new_images",
    "min_cider_improvement": "min_cider_improvement",
    "max_bleu_regression": "max_bleu_regression",
    "poll_seconds": "sagemaker_poll_seconds",
    "alarm_max_5xx_rate": "alarm_max_5xx_rate",
    "alarm_max_p99_latency_ms": "alarm_max_p99_latency_ms",
    "wait_interval_seconds": "deploy_wait_interval_s",
    "capture_sampling_percent": "capture_sampling_percent",
}


def form_defaults(**overrides: Any) -> dict[str, Any]:
    """What an untouched form submits, with ``overrides`` (for tests and scripts)."""
    return form_values(PARAMS, **overrides)


def resolved_defaults(settings: Any = None, **overrides: Any) -> dict[str, Any]:
    """:func:`form_defaults` with the empty entries filled from the deployment settings, as a
    :class:`~ogiri.runs.Run` of this DAG sees them."""
    from ogiri.config import get_settings
    from ogiri.runs import merge_params

    return merge_params(form_defaults(**overrides), settings or get_settings(), SETTING_DEFAULTS)
