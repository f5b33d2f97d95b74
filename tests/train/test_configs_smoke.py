"""SageMaker request builders, the smoke-test caption checks, rollback and the Model Registry (moto)."""

from __future__ import annotations

import json
import re

import boto3
import pytest
from moto import mock_aws

from ogiri.config import get_settings
from ogiri.endpoints import rollback, serving
from ogiri.naming import run_key
from ogiri.train import configs
from ogiri.train.configs import RunNames
from ogiri.train.params import resolved_defaults as form_defaults
from ogiri.train.registry import register_model_version
from ogiri.train.smoke import caption_problems, smoke_test, vocabulary_of

KEY = run_key("ogiri_train", "manual__2026-03-01T00:00:00+00:00")
DATASET = {
    "version": "ds-abc",
    "channels": {s: f"s3://b/datasets/ds-abc/{s}/" for s in ("train", "val", "test")},
    "images_uri": "s3://b/images/",
}
SOURCE = {"code_hash": "h", "sourcedir_uri": "s3://b/code/h/sourcedir.tar.gz", "files_uri": "s3://b/code/h/files/"}


def test_names_are_deterministic_valid_and_distinct():
    a, b = RunNames.for_run(KEY), RunNames.for_run(KEY)
    assert a == b
    other = RunNames.for_run(run_key("ogiri_train", "manual__2026-03-02T00:00:00+00:00"))
    names = [v for k, v in a.as_dict().items() if k != "run_key"]
    assert len(set(names)) == 4 and not set(names) & set(other.as_dict().values())
    assert all(re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*", n) and len(n) <= 63 for n in names)


def test_training_config_spot_metrics_image_and_hyperparameters():
    s = get_settings()
    params = form_defaults(epochs=3, lr=0.01, use_spot=True, max_runtime_seconds=600, max_wait_seconds=1200,
                           extra_hyperparameters={"embed_dim": 64})
    cfg = configs.training_job_request(s, RunNames.for_run(KEY), params, DATASET, SOURCE, "img:gpu")
    assert cfg["TrainingJobName"] == RunNames.for_run(KEY).training_job
    assert cfg["ResourceConfig"]["InstanceType"] == "ml.g5.xlarge"
    assert cfg["EnableManagedSpotTraining"] is True
    assert cfg["StoppingCondition"] == {"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 1200}
    assert cfg["CheckpointConfig"]["S3Uri"].startswith(f"s3://{s.bucket}/checkpoints/")
    names = {m["Name"] for m in cfg["AlgorithmSpecification"]["MetricDefinitions"]}
    assert {"val_bleu4", "val_cider", "train_loss"} <= names
    regex = next(m["Regex"] for m in cfg["AlgorithmSpecification"]["MetricDefinitions"] if m["Name"] == "val_cider")
    assert re.search(regex, "epoch=2 val_bleu4=0.12 val_cider=1.5e-01").group(1) == "1.5e-01"
    hps = cfg["HyperParameters"]
    assert json.loads(hps["epochs"]) == 3 and json.loads(hps["embed_dim"]) == 64
    assert json.loads(hps["sagemaker_submit_directory"]) == SOURCE["sourcedir_uri"]
    assert json.loads(hps["checkpoint_dir"]) == cfg["CheckpointConfig"]["LocalPath"] == "/opt/ml/checkpoints"
    assert [c["ChannelName"] for c in cfg["InputDataConfig"]] == ["train", "val", "images"]


def test_on_demand_and_bad_params():
    s = get_settings()
    cfg = configs.training_job_request(s, RunNames.for_run(KEY), form_defaults(use_spot=False, instance_type="ml.m5.xlarge"),
                                      DATASET, SOURCE, "img")
    assert cfg["EnableManagedSpotTraining"] is False and "MaxWaitTimeInSeconds" not in cfg["StoppingCondition"]
    assert cfg["ResourceConfig"]["InstanceType"] == "ml.m5.xlarge"
    with pytest.raises(ValueError, match="max_wait_seconds"):
        configs.training_job_request(s, RunNames.for_run(KEY), form_defaults(max_runtime_seconds=100, max_wait_seconds=50),
                                    DATASET, SOURCE, "img")
    with pytest.raises(ValueError, match="unknown hyperparameters"):
        configs.hyperparameters({"extra_hyperparameters": {"warp_factor": 9}})


def test_evaluation_config_uses_the_same_frozen_test_for_both_models():
    s = get_settings()
    names = RunNames.for_run(KEY)
    c0, c1 = names.candidate_jobs(2)
    cfg = configs.evaluation_job_request(s, names, DATASET, SOURCE, "img",
                                        {c0: "s3://b/m/c0.tar.gz", c1: "s3://b/m/c1.tar.gz"}, "s3://b/m/champ.tar.gz")
    inputs = {i["InputName"]: i["S3Input"] for i in cfg["ProcessingInputs"]}
    # every candidate and the champion in the one job, each in its own models/<name>/ directory
    assert inputs[c0]["LocalPath"] == f"/opt/ml/processing/models/{c0}"
    assert inputs[c1]["S3Uri"] == "s3://b/m/c1.tar.gz"
    assert inputs["champion"]["S3Uri"] == "s3://b/m/champ.tar.gz"
    assert len(cfg["ProcessingInputs"]) == 6
    assert inputs["test"]["S3Uri"] == DATASET["channels"]["test"]
    shell, flag, script, _name = cfg["AppSpecification"]["ContainerEntrypoint"]
    assert (shell, flag) == ("bash", "-c")
    # Processing jobs do not install the source dir's requirements: the entrypoint must, first.
    install, run = script.split(" && ")
    assert "pip install" in install and install.endswith("/opt/ml/processing/input/code/requirements.txt")
    assert run == 'exec python3 /opt/ml/processing/input/code/evaluate.py "$@"'

    no_champ = configs.evaluation_job_request(s, names, DATASET, SOURCE, "img", {c0: "s3://b/c"}, None)
    assert "champion" not in {i["InputName"] for i in no_champ["ProcessingInputs"]}
    with pytest.raises(ValueError, match="at least one candidate"):
        configs.evaluation_job_request(s, names, DATASET, SOURCE, "img", {}, None)


def test_candidates_get_one_deterministic_job_each_with_their_overrides():
    s = get_settings()
    names = RunNames.for_run(KEY)
    params = form_defaults(decoder="lstm", extra_hyperparameters={"embed_dim": 96},
                           candidates=[{}, {"decoder": "transformer", "embed_dim": 384}])
    listed = configs.candidates(params)
    cfgs = [configs.training_job_request(s, names, params, DATASET, SOURCE, "img", index=i, overrides=c)
            for i, c in enumerate(listed)]
    jobs = [c["TrainingJobName"] for c in cfgs]
    # the first candidate keeps the run's job name (a one-candidate run is named as before)
    assert jobs == [names.training_job, names.candidate_job(1)] == RunNames.for_run(KEY).candidate_jobs(2)
    assert len(set(jobs)) == 2 and all(re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*", j) and len(j) <= 63
                                       for j in jobs)
    first, second = ({k: json.loads(v) for k, v in c["HyperParameters"].items()} for c in cfgs)
    assert (first["decoder"], first["embed_dim"]) == ("lstm", 96)
    assert (second["decoder"], second["embed_dim"]) == ("transformer", 384)
    assert first["lr"] == second["lr"] == params["lr"]  # the rest of the form is shared
    assert cfgs[1]["CheckpointConfig"]["S3Uri"].endswith(f"/checkpoints/{jobs[1]}/")  # no shared checkpoints
    assert {"Key": "ogiri:candidate", "Value": "1"} in cfgs[1]["Tags"]


def test_bad_candidates_are_refused_naming_the_valid_hyperparameters():
    with pytest.raises(ValueError, match=r"candidate 1 has unknown hyperparameters \['warp'\]; valid: \[.*'decoder'"):
        configs.candidates(form_defaults(candidates=[{}, {"warp": 9}]))
    with pytest.raises(ValueError, match="non-empty list"):
        configs.candidates(form_defaults(candidates=[]))
    with pytest.raises(ValueError, match="must be an object"):
        configs.candidates(form_defaults(candidates=["lstm"]))
    with pytest.raises(ValueError, match="at most 6 candidates"):
        configs.candidates(form_defaults(candidates=[{}] * 7))
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        configs.candidate_hyperparameters(form_defaults(), {"epochs": 0})
    assert configs.candidates(form_defaults()) == [{}]


def test_caption_sanity_checks():
    vocab = vocabulary_of(["猫が寝ている", "犬が走る"])
    assert caption_problems("猫が走る", vocab) == []
    assert caption_problems("", vocab) == ["caption is empty"]
    assert caption_problems(None, vocab) == ["caption is NoneType, not text"]
    assert "special tokens" in caption_problems("猫<unk>", vocab)[0]
    assert "outside the training vocabulary" in caption_problems("鳥が飛ぶ", vocab)[0]
    assert "characters (>" in caption_problems("猫" * 300, vocab)[0]


def _queue_endpoint_answers(*bodies: str) -> None:
    import requests

    results = [{"Body": b, "ContentType": "application/json"} for b in bodies]
    requests.post("http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
                  json={"results": results}, timeout=5)


def test_smoke_test_checks_real_invocations():
    vocab = vocabulary_of(["猫が寝る"])
    with mock_aws():
        runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
        _queue_endpoint_answers(json.dumps({"caption": "猫が寝る", "score": -1.0}, ensure_ascii=False))
        ok = smoke_test(runtime, "ep", [("a", b"img-a")], vocabulary=vocab, max_latency_s=5)
        assert ok.ok and ok.captions[0]["caption"] == "猫が寝る"
        _queue_endpoint_answers(json.dumps({"caption": ""}), "not json", json.dumps({"caption": "猫が寝る"}))
        bad = smoke_test(runtime, "ep2", [("a", b"1"), ("b", b"2"), ("c", b"3")], vocabulary=vocab,
                         max_latency_s=5)
        assert not bad.ok and len(bad.failures) == 2
        assert any("a: caption is empty" in f for f in bad.failures)
        assert any(f.startswith("b: invocation failed") for f in bad.failures)
        slow = smoke_test(runtime, "ep", [("a", b"img-a")], vocabulary=vocab, max_latency_s=1e-9)
        assert not slow.ok and "latency" in slow.failures[0]
        with pytest.raises(ValueError):
            smoke_test(runtime, "ep", [], vocabulary=vocab, max_latency_s=1)


@pytest.fixture
def sm():
    with mock_aws():
        yield boto3.client("sagemaker", region_name="us-east-1")


def _deploy(sm, n):
    sm.create_model(ModelName=f"m{n}", ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                    PrimaryContainer={"Image": "img", "ModelDataUrl": f"s3://b/m{n}.tar.gz"})
    sm.create_endpoint_config(EndpointConfigName=f"c{n}", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": f"m{n}", "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large"}])


def test_serving_describes_the_live_model(sm):
    assert serving(sm, "ep") is None
    _deploy(sm, 1)
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c1")
    now = serving(sm, "ep")
    assert now["model_name"] == "m1" and now["model_artifact"] == "s3://b/m1.tar.gz"
    assert now["endpoint_config"] == "c1"


def test_rollback_is_a_no_op_when_already_on_previous_config(sm):
    _deploy(sm, 1)
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c1")
    assert rollback(sm, "ep", "c1", poll_s=0, timeout_s=5)["EndpointConfigName"] == "c1"
    with pytest.raises(Exception):  # noqa: B017 - moto has no UpdateEndpoint; the emulator does (e2e test)
        rollback(sm, "ep", "c0", poll_s=0, timeout_s=5)


def test_registry_registers_once_per_training_job_with_metrics(sm):
    kwargs = dict(group="g", image_uri="img", model_data_url="s3://b/m.tar.gz", metrics={"cider": 0.5},
                  evaluation_uri="s3://b/e/evaluation.json", dataset_version="ds-1", approved=True)
    arn = register_model_version(sm, training_job="job-1", **kwargs)
    assert register_model_version(sm, training_job="job-1", **kwargs) == arn
    other = register_model_version(sm, training_job="job-2", **kwargs)
    assert other != arn
    described = sm.describe_model_package(ModelPackageName=arn)
    assert described["CustomerMetadataProperties"]["metric_cider"] == "0.5"
    assert described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == "s3://b/e/evaluation.json"
    assert len(sm.list_model_packages(ModelPackageGroupName="g")["ModelPackageSummaryList"]) == 2


def test_cleanup_deletes_what_the_endpoint_does_not_serve_and_tolerates_what_is_missing(sm, monkeypatch):
    """delete_unused_resources (teardown): this run's model is deleted when the endpoint serves another
    one, an endpoint config that was never created is not an error, and the serving pair is kept."""
    from ogiri.naming import run_key
    from ogiri.train import steps
    from ogiri.train.configs import RunNames

    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws", "extra": {"region_name": "us-east-1"}}))
    monkeypatch.setenv("OGIRI_ENDPOINT_NAME", "ep")
    key = run_key("ogiri_train", "manual__2026-01-02T00:00:00")
    names = RunNames.for_run(key)
    _deploy(sm, 1)
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c1")
    sm.create_model(ModelName=names.model, ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                    PrimaryContainer={"Image": "img", "ModelDataUrl": "s3://b/new.tar.gz"})
    assert steps.delete_unused_resources(steps.run_for_key(key)) == [names.model]  # its endpoint config was never created
    assert sorted(m["ModelName"] for m in sm.list_models()["Models"]) == ["m1"]
    assert steps.delete_unused_resources(steps.run_for_key(key)) == []  # a rerun finds nothing left and does not fail
    assert serving(sm, "ep")["model_name"] == "m1"


def test_read_evaluation_fails_fast_only_when_the_report_is_missing_or_broken(sm, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException
    from botocore.exceptions import ClientError

    from ogiri.config import get_settings
    from ogiri.naming import run_key
    from ogiri.train import configs, steps

    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws", "extra": {"region_name": "us-east-1"}}))
    monkeypatch.setenv("OGIRI_BUCKET", "eval-bucket")
    key = run_key("ogiri_train", "manual__2026-01-03T00:00:00")
    uri = configs.evaluation_prefix(get_settings(), configs.RunNames.for_run(key)) + "evaluation.json"
    bucket, _, object_key = uri.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3", region_name="us-east-1")
    with pytest.raises(ClientError, match="NoSuchBucket"):  # not "no report": retried by Airflow
        steps.read_evaluation(steps.run_for_key(key))
    s3.create_bucket(Bucket=bucket)
    with pytest.raises(AirflowFailException, match="wrote no report"):
        steps.read_evaluation(steps.run_for_key(key))
    s3.put_object(Bucket=bucket, Key=object_key, Body=b"{not json")
    with pytest.raises(AirflowFailException, match="not valid JSON"):
        steps.read_evaluation(steps.run_for_key(key))
    s3.put_object(Bucket=bucket, Key=object_key, Body=json.dumps({"models": {"candidate": {}}}).encode())
    assert steps.read_evaluation(steps.run_for_key(key)) == {"models": {"candidate": {}}}


def test_empty_training_choices_come_from_the_deployment_settings(monkeypatch):
    """Issue 13: asset-triggered runs submit the form's defaults; local mode makes them small
    through OGIRI_TRAIN_* (no code branch), production keeps 10 epochs of ResNet-50 at 224 px on Spot."""
    from ogiri.train.params import resolved_defaults

    prod = configs.hyperparameters(resolved_defaults())
    assert (prod["epochs"], prod["image_size"], prod["encoder"]) == (10, 224, "resnet50")
    assert resolved_defaults()["use_spot"] is True
    for name, value in {"OGIRI_TRAIN_EPOCHS": "2", "OGIRI_TRAIN_IMAGE_SIZE": "64",
                        "OGIRI_TRAIN_ENCODER": "resnet18", "OGIRI_TRAIN_USE_SPOT": "false"}.items():
        monkeypatch.setenv(name, value)
    local = resolved_defaults()
    assert (local["epochs"], local["image_size"], local["encoder"], local["use_spot"]) == (2, 64, "resnet18", False)
    assert resolved_defaults(epochs=5)["epochs"] == 5  # a value in the form wins


def test_tuning_request_tunes_the_ranges_over_the_candidates_training_job():
    s = get_settings()
    names = RunNames.for_run(KEY)
    tuning = {"strategy": "Random", "max_jobs": 3, "max_parallel": 2,
              "ranges": {"lr": {"min": 0.0005, "max": 0.01, "scaling": "Logarithmic"},
                         "decoder": {"values": ["lstm", "transformer"]}, "embed_dim": {"min": 64, "max": 256}}}
    params = form_defaults(tuning=tuning, epochs=2)
    cfg = configs.tuning_job_request(s, names, params, DATASET, SOURCE, "img")
    assert cfg["HyperParameterTuningJobName"] == names.tuning_job and len(names.tuning_job) <= 29
    assert names.tuning_job == RunNames.for_run(KEY).tuning_job  # deterministic: a retry re-attaches
    config = cfg["HyperParameterTuningJobConfig"]
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "val_cider"}
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 3, "MaxParallelTrainingJobs": 2}
    assert config["ParameterRanges"] == {
        "CategoricalParameterRanges": [{"Name": "decoder", "Values": ["lstm", "transformer"]}],
        "IntegerParameterRanges": [{"Name": "embed_dim", "MinValue": "64", "MaxValue": "256", "ScalingType": "Auto"}],
        "ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0.0005", "MaxValue": "0.01",
                                       "ScalingType": "Logarithmic"}],
    }
    definition = cfg["TrainingJobDefinition"]
    static = definition["StaticHyperParameters"]
    assert not {"lr", "decoder", "embed_dim"} & set(static) and json.loads(static["epochs"]) == 2
    assert "val_cider" in {m["Name"] for m in definition["AlgorithmSpecification"]["MetricDefinitions"]}
    assert "CheckpointConfig" not in definition  # one shared prefix would let trials resume each other


def test_bad_tuning_is_refused_naming_what_is_valid():
    base = {"strategy": "Random", "max_jobs": 2, "max_parallel": 1}
    cases = {
        "cannot tune \\['warp'\\]; tunable hyperparameters: \\[.*'lr'": {**base, "ranges": {"warp": {"min": 1, "max": 2}}},
        "must satisfy 1e-07 <= min < max <= 1.0": {**base, "ranges": {"lr": {"min": 0.0, "max": 0.1}}},
        "min < max": {**base, "ranges": {"epochs": {"min": 5, "max": 2}}},
        "must be integers": {**base, "ranges": {"epochs": {"min": 1.5, "max": 3}}},
        "values among": {**base, "ranges": {"decoder": {"values": ["gru"]}}},
        "scaling must be": {**base, "ranges": {"lr": {"min": 0.001, "max": 0.01, "scaling": "Cubic"}}},
        "strategy must be one of": {**base, "strategy": "Annealing", "ranges": {"lr": {"min": 0.001, "max": 0.01}}},
        "max_parallel <= max_jobs": {**base, "max_parallel": 3, "ranges": {"lr": {"min": 0.001, "max": 0.01}}},
        "at least one range": {**base, "ranges": {}},
    }
    for message, tuning in cases.items():
        with pytest.raises(ValueError, match=message):
            configs.tuning_spec(form_defaults(tuning=tuning))
    with pytest.raises(ValueError, match="either several candidates or tuning"):
        configs.tuning_spec(form_defaults(tuning={**base, "ranges": {"lr": {"min": 0.001, "max": 0.01}}},
                                          candidates=[{}, {"decoder": "transformer"}]))
    assert configs.tuning_spec(form_defaults()) is None


def test_configure_training_fails_without_retry_on_a_bad_candidate_or_range_and_maps_one_request_each():
    from airflow.sdk.exceptions import AirflowFailException

    from ogiri.train import steps

    bad = {"candidates": [{"decoder": "lstm"}, {"warp": 9}]}
    with pytest.raises(AirflowFailException, match=r"unknown hyperparameters \['warp'\]; valid: \[.*'embed_dim'"):
        steps.configure_training(steps.run_for_key(KEY, **bad), DATASET, SOURCE)
    bad_range = {"tuning": {"strategy": "Random", "max_jobs": 2, "max_parallel": 1,
                            "ranges": {"lr": {"min": 2.0, "max": 3.0}}}}
    with pytest.raises(AirflowFailException, match="bad training configuration: tuning range lr"):
        steps.configure_training(steps.run_for_key(KEY, **bad_range), DATASET, SOURCE)
    two = steps.configure_training(steps.run_for_key(KEY, candidates=[{}, {"decoder": "transformer"}]), DATASET,
                                   SOURCE)
    assert [r["TrainingJobName"] for r in two] == RunNames.for_run(KEY).candidate_jobs(2)
    tuned = {"tuning": {**bad_range["tuning"], "ranges": {"lr": {"min": 0.001, "max": 0.01}}}}
    assert steps.configure_training(steps.run_for_key(KEY, **tuned), DATASET, SOURCE) == []  # tune_model trains


def test_rating_params_validate_and_rating_weight_reaches_the_training_job():
    """Issue 16: min_rating (null or 1-5) filters the dataset; rating_weight (>= 0) is a hyperparameter
    that a candidate may override."""
    import copy

    from airflow.sdk.exceptions import ParamValidationError

    from ogiri.train.params import PARAMS

    min_rating, weight = copy.deepcopy(PARAMS["min_rating"]), copy.deepcopy(PARAMS["rating_weight"])
    assert min_rating.resolve(None) is None and min_rating.resolve(3.5) == 3.5
    assert weight.resolve() == 0 and weight.resolve(1.5) == 1.5
    for param, bad in ((min_rating, 0.5), (min_rating, 6), (min_rating, "4"), (weight, -0.1)):
        with pytest.raises(ParamValidationError):
            copy.deepcopy(param).resolve(bad)
    params = form_defaults(rating_weight=2.0, candidates=[{}, {"rating_weight": 0.5}])
    assert "min_rating" not in configs.hyperparameters(params)  # a dataset choice, not the trainer's
    jobs = [configs.training_job_request(get_settings(), RunNames.for_run(KEY), params, DATASET, SOURCE, "img", i, c)
            for i, c in enumerate(configs.candidates(params))]
    assert [json.loads(j["HyperParameters"]["rating_weight"]) for j in jobs] == [2.0, 0.5]
    assert json.loads(configs.training_job_request(get_settings(), RunNames.for_run(KEY), form_defaults(), DATASET,
                                                   SOURCE, "img")["HyperParameters"]["rating_weight"]) == 0


def test_build_dataset_step_applies_min_rating_and_the_rated_metric_reaches_the_pick(sm, monkeypatch):
    """The run's min_rating reaches the dataset build; evaluate.py's rated-test metrics ride with the winner's
    metrics (what decide_deployment records in the ledger's evaluation row)."""
    from decimal import Decimal

    from ogiri import catalog
    from ogiri.train import steps

    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws", "extra": {"region_name": "us-east-1"}}))
    monkeypatch.setenv("OGIRI_BUCKET", "rated-bucket")
    monkeypatch.setenv("OGIRI_TABLE", "rated-captions")
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="rated-bucket")
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    ddb.create_table(**catalog.table_definition("rated-captions"))
    table = boto3.resource("dynamodb", region_name="us-east-1").Table("rated-captions")
    for i in range(30):
        for cid, rating in (("low", "2"), ("high", "4.5")):
            key = f"{i:064x}"
            table.put_item(Item={catalog.IMAGE_KEY: key, catalog.CAPTION_ID: cid, catalog.CAPTION: f"{cid} {i}",
                                 catalog.S3_URI: f"s3://rated-bucket/{catalog.image_s3_key(key)}",
                                 catalog.INGEST_DATE: "2026-01-01", catalog.RATING: Decimal(rating)})
    key = run_key("ogiri_train", "manual__2026-01-04T00:00:00")
    plain = steps.build_dataset(steps.run_for_key(key, min_new_images=0))
    filtered = steps.build_dataset(steps.run_for_key(key, min_new_images=0, min_rating=3))
    assert plain["dropped_captions"] == 0 and filtered["min_rating"] == 3 and filtered["version"] != plain["version"]
    trained = {name: d["counts"]["train"] + d["counts"]["val"] for name, d in (("plain", plain), ("filtered", filtered))}
    assert trained["filtered"] == filtered["dropped_captions"] == trained["plain"] // 2 > 0  # the 2s went
    assert filtered["counts"]["test"] == plain["counts"]["test"]

    run = steps.run_for_key(key)
    rated = {"bleu4": 0.2, "cider": 0.5, "rated_mean_rating": 3.75, "rated_test_images": 4, "rated_exact_matches": 1}
    pick, _ = steps._report_metrics(run, {"models": {run.names.training_job: {"metrics": rated}}})
    assert pick.metrics == rated


def test_endpoint_config_captures_input_and_output_at_the_sampling_percent(monkeypatch):
    """Issue 14: the endpoint config carries DataCaptureConfig (the emulator's CreateEndpointConfig
    validation accepts it); an empty Param takes OGIRI_CAPTURE_SAMPLING_PERCENT, 0 turns capture off."""
    from localaws.sagemaker.capture import validate

    names = RunNames.for_run(KEY)
    s = get_settings()
    request = configs.endpoint_config_request(s, names, capture_percent=form_defaults()["capture_sampling_percent"])
    assert request["DataCaptureConfig"] == {
        "EnableCapture": True,
        "InitialSamplingPercentage": 100,
        "DestinationS3Uri": f"s3://{s.bucket}/capture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
    }
    assert validate(request["DataCaptureConfig"]) is request["DataCaptureConfig"]
    monkeypatch.setenv("OGIRI_CAPTURE_SAMPLING_PERCENT", "20")
    assert form_defaults()["capture_sampling_percent"] == 20
    assert form_defaults(capture_sampling_percent=35)["capture_sampling_percent"] == 35  # the form wins
    off = configs.endpoint_config_request(get_settings(), names, capture_percent=0)["DataCaptureConfig"]
    assert (off["EnableCapture"], off["InitialSamplingPercentage"]) == (False, 0)
    with pytest.raises(ValueError, match="between 0 and 100"):
        configs.capture_config(s, 101)
    monkeypatch.setenv("OGIRI_CAPTURE_SAMPLING_PERCENT", "150")
    with pytest.raises(Exception, match="OGIRI_CAPTURE_SAMPLING_PERCENT=150 must be between 0 and 100"):
        get_settings()
