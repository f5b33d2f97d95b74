"""The simulated workers of one data object: who is asked, who answers in time, what they submit."""

from __future__ import annotations

import datetime as dt
from typing import Any

from localaws.sagemaker.common import parse_s3_uri
from localaws.sagemaker.labeling import oracle
from localaws.sagemaker.labeling.output import iso_ms
from localaws.sagemaker.labeling.workforce import draw, worker_ids, worker_sub

EXPIRED = ("ClientError: The data object expired: {answered} of {asked} workers submitted an annotation within "
           "TaskTimeLimitInSeconds before TaskAvailabilityLifetimeInSeconds ended (at least {needed} needed).")


def _truth(run: Any, obj: Any, task_input: Any, config: dict[str, Any], s3: Any) -> Any:
    """The configured or computed true answer: a dict, or a list of exact per-worker answers."""
    ref = obj.line.get("source-ref")
    key = obj.line.get(config["answers_by"])
    if isinstance(key, str) and key in config["answers"]:
        return config["answers"][key]
    if config["rule"] == "constant":
        return config["answer"]
    image = None
    if isinstance(ref, str) and ref.startswith("s3://"):
        bucket, key = parse_s3_uri(ref)
        try:  # workers see the image through the template, with the job role's access
            image = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:  # noqa: BLE001
            raise oracle.UnanswerableTask(f"workers could not load {ref}: {exc}") from None
    return oracle.truth(oracle.task_kind(task_input), obj.line, task_input, image)


def _rename(answer: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    return {fields.get(k, k): v for k, v in answer.items()}


def _response(worker: str, content: dict[str, Any], start: dt.datetime, seconds: float, region: str) -> dict[str, Any]:
    submitted = start + dt.timedelta(seconds=seconds)
    return {"acceptanceTime": iso_ms(start), "answerContent": content, "submissionTime": iso_ms(submitted),
            "timeSpentInSeconds": round(seconds, 3), "workerId": worker,
            "workerMetadata": {"identityData": {
                "identityProviderType": "Cognito",
                "issuer": f"https://cognito-idp.{region}.amazonaws.com/{region}_localaws",
                "sub": worker_sub(worker)}}}


def answer(run: Any, obj: Any, task_input: Any, config: dict[str, Any], s3: Any) -> tuple[list[dict], str | None]:
    """The worker responses of one object, or (``[]``, why the object failed or expired)."""
    task = run.task
    asked = int(task["NumberOfHumanWorkersPerDataObject"])
    limit = float(task["TaskTimeLimitInSeconds"])
    team = worker_ids(task["WorkteamArn"], run.region, int(config["workers"]))
    key = (config["seed"], run.name, obj.index)
    chosen = sorted(team, key=lambda w: draw(*key, w, "pick"))[:asked]
    try:
        truth = _truth(run, obj, task_input, config, s3)
    except oracle.UnanswerableTask as exc:
        return [], f"ClientError: localaws workforce cannot answer this task: {exc}"
    low, high = (min(float(s), limit) for s in config["seconds_per_task"])
    responses = []
    start = run.job.creation_time + dt.timedelta(seconds=30 * obj.index)
    for n, worker in enumerate(chosen):
        if draw(*key, worker, "abandon") < config["abandonment"]:
            continue  # did not submit within TaskTimeLimitInSeconds
        if isinstance(truth, list):
            if n >= len(truth):
                continue
            content = truth[n]
        else:
            content = truth
            if draw(*key, worker, "noise") < config["noise"]:
                content = oracle.perturb(truth, *key, worker)
        seconds = low + (high - low) * draw(*key, worker, "time")
        accepted = start + dt.timedelta(seconds=5 * n)
        responses.append(_response(worker, _rename(dict(content), config["fields"]), accepted, seconds, run.region))
    needed = int(config["min_answers"])
    if len(responses) < needed:
        return [], EXPIRED.format(answered=len(responses), asked=asked, needed=needed)
    return responses, None
