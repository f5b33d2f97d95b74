"""Shape of the ``ogiri_train`` DAG: schedule, params, wiring, trigger rules, operators."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "ogiri_train.py"))
    assert bag.import_errors == {}
    return bag.dags["ogiri_train"]


def down(dag, task_id):
    return dag.task_dict[task_id].downstream_task_ids


def test_schedule_on_ingestion_or_drift_asset_and_single_active_run(dag):
    from airflow.sdk.definitions.asset import AssetAny

    assert dag.max_active_runs == 1
    condition = dag.timetable.asset_condition
    assert isinstance(condition, AssetAny)  # captions OR drift (issue 14)
    assert [a.name for a in condition.objects] == ["ogiri_captions", "ogiri_drift"]


def test_candidates_param_is_a_non_empty_list_and_the_form_rejects_an_empty_one(dag):
    from airflow.sdk.exceptions import ParamValidationError

    param = copy.deepcopy(dag.params.get_param("candidates"))
    assert param.schema["type"] == "array" and param.schema["minItems"] == 1
    assert dag.params["candidates"] == [{}]  # one candidate: the form's own hyperparameters
    param.resolve([{"decoder": "lstm"}, {"decoder": "transformer", "embed_dim": 384}])
    with pytest.raises(ParamValidationError):
        param.resolve([])
    with pytest.raises(ParamValidationError):
        param.resolve(["lstm"])
    with pytest.raises(ParamValidationError):
        param.resolve([{}] * 7)  # the one evaluation job takes at most 10 inputs
    tuning = copy.deepcopy(dag.params.get_param("tuning"))
    assert dag.params["tuning"] is None
    tuning.resolve({"strategy": "Random", "max_jobs": 3, "max_parallel": 2, "ranges": {"lr": {"min": 0.001,
                                                                                              "max": 0.01}}})
    for bad in ({"strategy": "Annealing", "ranges": {"lr": {}}}, {"max_jobs": 0, "ranges": {"lr": {}}},
                {"strategy": "Random"}, {"ranges": {"lr": {}}, "typo": 1}):
        with pytest.raises(ParamValidationError):
            tuning.resolve(bad)


def test_typed_params(dag):
    p = dag.params
    for name in ("instance_type", "epochs", "lr", "min_cider_improvement", "force_deploy", "use_spot",
                 "min_new_images", "max_bleu_regression"):
        assert name in p, name
    schema = {k: p.get_param(k).schema for k in p}
    assert schema["epochs"]["type"] == ["null", "integer"] and schema["epochs"]["minimum"] == 1
    assert schema["use_spot"]["type"] == ["null", "boolean"]
    assert schema["force_deploy"]["type"] == "boolean" and p["force_deploy"] is False
    # Empty training choices fall back to deployment settings (OGIRI_TRAIN_*), so asset-triggered
    # runs in local mode train small without a code branch (issue 13).
    assert p["use_spot"] is None and p["epochs"] is None
    for name, param in dag.params.items():
        assert param.schema.get("title") or param.schema.get("description"), name


def test_linear_core(dag):
    assert down(dag, "build_dataset") >= {"check_new_data", "configure_training", "skip_training"}
    # Too little new data is a visible branch, not a silent skip of the whole run.
    assert down(dag, "check_new_data") == {"configure_training", "skip_training"}
    assert down(dag, "skip_training") == {"delete_unused_resources"}
    assert down(dag, "package_code") >= {"configure_training", "configure_evaluation"}
    assert down(dag, "configure_training") == {"train_model", "configure_tuning"}
    assert down(dag, "configure_tuning") == {"tune_model"}
    assert down(dag, "tune_model") == {"record_training"}
    # A failed candidate must not stop the evaluation of the others: configure_evaluation waits on
    # record_training (all_done over every mapped train_model), never on train_model directly.
    assert down(dag, "train_model") == {"record_training"}
    assert down(dag, "record_training") == {"configure_evaluation"}
    assert down(dag, "configure_evaluation") == {"evaluate_models"}
    assert down(dag, "evaluate_models") == {"decide_deployment"}
    assert down(dag, "decide_deployment") == {"configure_deployment", "record_skip"}


def test_deploy_chain(dag):
    assert "create_model" in down(dag, "configure_deployment")
    assert down(dag, "create_model") == {"create_endpoint_config"}
    assert down(dag, "create_endpoint_config") == {"put_rollback_alarms"}
    assert down(dag, "put_rollback_alarms") == {"choose_endpoint_operation"}
    assert down(dag, "choose_endpoint_operation") == {"create_endpoint", "update_endpoint"}
    assert down(dag, "create_endpoint") == down(dag, "update_endpoint") == {"smoke_test_endpoint"}
    assert down(dag, "smoke_test_endpoint") == {"register_model"}
    assert down(dag, "register_model") == {"delete_unused_resources"}
    assert down(dag, "record_skip") == {"delete_unused_resources"}


def test_operators_and_trigger_rules(dag):
    from airflow.providers.amazon.aws.operators.sagemaker import (
        SageMakerEndpointConfigOperator,
        SageMakerEndpointOperator,
        SageMakerModelOperator,
        SageMakerProcessingOperator,
        SageMakerTrainingOperator,
        SageMakerTuningOperator,
    )

    from ogiri.config import parse_knobs
    from ogiri.jobs import ReattachingTrainingOperator, ReattachingTuningOperator

    t = dag.task_dict
    # train_model is mapped over the candidates: one re-attaching training operator per candidate,
    # never more of them running at once in a run than OGIRI_MAX_PARALLEL_TRAINING allows.
    train = t["train_model"]
    assert issubclass(train.operator_class, ReattachingTrainingOperator)
    assert issubclass(train.operator_class, SageMakerTrainingOperator) and train.partial_kwargs["deferrable"]
    assert set(train.expand_input.value) == {"config"}
    assert train.max_active_tis_per_dagrun == parse_knobs().max_parallel_training == 2
    tune = t["tune_model"]
    assert isinstance(tune, ReattachingTuningOperator) and isinstance(tune, SageMakerTuningOperator)
    assert tune.deferrable
    assert isinstance(t["evaluate_models"], SageMakerProcessingOperator)
    assert isinstance(t["create_model"], SageMakerModelOperator)
    assert isinstance(t["create_endpoint_config"], SageMakerEndpointConfigOperator)
    assert isinstance(t["create_endpoint"], SageMakerEndpointOperator) and t["create_endpoint"].operation == "create"
    assert t["update_endpoint"].operation == "update"
    assert t["record_training"].trigger_rule == "all_done"
    assert t["smoke_test_endpoint"].trigger_rule == "all_done"
    assert t["delete_unused_resources"].is_teardown
    assert all(task.owner == "ogiri-ml" for task in dag.tasks)


def test_sagemaker_operators_use_the_configured_connection_and_region(dag, monkeypatch):
    """OGIRI_AWS_CONN_ID / OGIRI_REGION reach every AWS operator (rendered at run time), so operators and
    task bodies never talk to AWS through different connections."""
    from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator

    monkeypatch.setenv("OGIRI_AWS_CONN_ID", "team_aws")
    monkeypatch.setenv("OGIRI_REGION", "eu-west-1")
    env = dag.get_template_env()
    aws_ops = [t for t in dag.tasks if isinstance(t, AwsBaseOperator) or issubclass(
        getattr(t, "operator_class", object), AwsBaseOperator)]
    assert {t.task_id for t in aws_ops} == {
        "train_model", "tune_model", "evaluate_models", "create_model", "create_endpoint_config", "create_endpoint",
        "update_endpoint",
    }
    for op in aws_ops:
        assert "aws_conn_id" in op.template_fields and "region_name" in op.template_fields
        args = getattr(op, "partial_kwargs", None) or vars(op)  # a mapped operator keeps them there
        assert env.from_string(args["aws_conn_id"]).render() == "team_aws", op.task_id
        assert env.from_string(args["region_name"]).render() == "eu-west-1", op.task_id
