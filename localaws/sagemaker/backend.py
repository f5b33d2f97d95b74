"""moto SageMaker backend subclass whose jobs and endpoints really run, plus the missing API handlers.

`LocalSageMakerBackend` replaces moto's backend class in `moto.sagemaker.models.sagemaker_backends`
(so backends created after `/moto-api/reset` are ours too). `RESPONSE_METHODS` are added to
moto's `SageMakerResponse`, which dispatches on snake_case method names.
"""

from __future__ import annotations

import copy
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import FakeEndpoint, FakeEndpointConfig, FakeTrainingJob, SageMakerModelBackend

from localaws.instance_types import PROCESSING, TRAINING, TRANSFORM, check_instance_type
from localaws.sagemaker import capture, deployments, messages, processing, roles, training, transform, tuning
from localaws.sagemaker.endpoints import EndpointRuntime, model_spec
from localaws.sagemaker.labeling import models as labeling_models
from localaws.sagemaker.labeling import run as labeling_run
from localaws.sagemaker.registry import REGISTRY


def _set_initial(fake: Any, values: dict[str, Any]) -> None:
    for key, value in values.items():
        setattr(fake, key, value)


class LocalSageMakerBackend(SageMakerModelBackend):
    """SageMaker backend that runs training/processing/transform jobs and endpoints as local processes."""

    @property
    def _url_module(self) -> Any:  # keep moto's url module (ours lives in another package)
        import moto.sagemaker.urls

        return moto.sagemaker.urls

    def reset(self) -> None:
        """Stop every process of this account/region, then drop moto's state."""
        REGISTRY.shutdown(self.account_id, self.region_name)
        super().reset()

    def _key(self, kind: str, name: str) -> tuple[str, str, str, str]:
        return kind, self.account_id, self.region_name, name

    # -- training ---------------------------------------------------------------------------
    def localaws_create_training_job(self, req: dict[str, Any]) -> FakeTrainingJob:
        """CreateTrainingJob that starts a real script-mode run."""
        name = req["TrainingJobName"]
        # Request validation (enums) comes before any lookup, as on AWS.
        check_instance_type((req.get("ResourceConfig") or {}).get("InstanceType"),
                            "resourceConfig.instanceType", TRAINING)
        if name in self.training_jobs:
            raise ValidationError(
                message="Training job names must be unique within an AWS account and region, and a training "
                f"job with this name already exists ({self.training_jobs[name].arn})"
            )
        roles.check(req.get("RoleArn"), self.account_id,
                    roles.resource_arn("training-job", name, self.account_id, self.region_name))
        algo = req.get("AlgorithmSpecification") or {}
        metric_definitions = copy.deepcopy(algo.get("MetricDefinitions"))
        job = self.create_training_job(
            training_job_name=name,
            hyper_parameters=req.get("HyperParameters") or {},
            algorithm_specification=copy.deepcopy(algo),
            role_arn=req.get("RoleArn"),
            input_data_config=req.get("InputDataConfig"),
            output_data_config=req.get("OutputDataConfig") or {},
            resource_config=req.get("ResourceConfig"),
            vpc_config=req.get("VpcConfig"),
            stopping_condition=req.get("StoppingCondition"),
            tags=req.get("Tags"),
            enable_network_isolation=req.get("EnableNetworkIsolation", False),
            enable_inter_container_traffic_encryption=req.get("EnableInterContainerTrafficEncryption", False),
            enable_managed_spot_training=req.get("EnableManagedSpotTraining", False),
            checkpoint_config=req.get("CheckpointConfig"),
            debug_hook_config=req.get("DebugHookConfig"),
            debug_rule_configurations=req.get("DebugRuleConfigurations"),
            tensor_board_output_config=req.get("TensorBoardOutputConfig"),
            experiment_config=req.get("ExperimentConfig"),
        )
        if metric_definitions is None:
            job.algorithm_specification.pop("MetricDefinitions", None)
        else:
            job.algorithm_specification["MetricDefinitions"] = metric_definitions
        _set_initial(job, {**training.initial_attrs(), "environment": req.get("Environment")})
        run = training.TrainingRun(job, req, self.account_id, self.region_name)
        REGISTRY.put(*self._key("training", name), run)
        run.start()
        return job

    def describe_training_job(self, training_job_name: str) -> dict[str, Any]:
        """DescribeTrainingJob; an unknown name answers like AWS."""
        if training_job_name not in self.training_jobs:
            raise messages.training_job(training_job_name)
        return super().describe_training_job(training_job_name)

    def stop_training_job(self, training_job_name: str) -> None:
        """StopTrainingJob: Stopping → Stopped, process tree killed."""
        job = self.training_jobs.get(training_job_name)
        if job is None:
            raise messages.training_job(training_job_name)
        if job.training_job_status != "InProgress":
            raise ValidationError(
                message=f"The request was rejected because the training job is in status {job.training_job_status}."
            )
        run = REGISTRY.get(*self._key("training", training_job_name))
        if run is not None:
            run.request_stop()

    # -- hyperparameter tuning ----------------------------------------------------------------
    def localaws_create_hyper_parameter_tuning_job(self, req: dict[str, Any]) -> tuning.LocalTuningJob:
        """CreateHyperParameterTuningJob that runs its training jobs for real (``tuning.py``)."""
        tuning.validate(req, self.hyper_parameter_tuning_jobs)
        definition = req["TrainingJobDefinition"]
        check_instance_type((definition.get("ResourceConfig") or {}).get("InstanceType"),
                            "trainingJobDefinition.resourceConfig.instanceType", TRAINING)
        name = req["HyperParameterTuningJobName"]
        roles.check(definition.get("RoleArn"), self.account_id,
                    roles.resource_arn("hyper-parameter-tuning-job", name, self.account_id, self.region_name))
        job = tuning.LocalTuningJob(
            req, messages.arn("hyper-parameter-tuning-job", name, self.account_id, self.region_name))
        run = tuning.TuningRun(self, job, req)
        self.hyper_parameter_tuning_jobs[name] = job
        REGISTRY.put(*self._key("tuning", name), run)
        run.start()
        return job

    def _tuning_job(self, name: str) -> tuning.LocalTuningJob:
        job = self.hyper_parameter_tuning_jobs.get(name)
        if job is None:
            raise tuning.not_found(name)
        return job

    def describe_hyper_parameter_tuning_job(self, hyper_parameter_tuning_job_name: str) -> dict[str, Any]:
        """DescribeHyperParameterTuningJob; an unknown name answers like AWS."""
        return self._tuning_job(hyper_parameter_tuning_job_name).describe()

    def localaws_list_training_jobs_for_tuning_job(self, params: dict[str, Any]) -> tuple[list[dict], str | None]:
        """ListTrainingJobsForHyperParameterTuningJob."""
        job = self._tuning_job(params.get("HyperParameterTuningJobName") or "")
        return tuning.list_summaries(list(job.summaries), params)

    def stop_hyper_parameter_tuning_job(self, name: str) -> None:
        """StopHyperParameterTuningJob: Stopping while its training jobs stop, then Stopped."""
        job = self._tuning_job(name)
        if job.status != "InProgress":
            raise ValidationError(
                message=f"The request was rejected because the hyperparameter tuning job is in status {job.status}."
            )
        job.set(status="Stopping")
        run = REGISTRY.get(*self._key("tuning", name))
        if run is not None:
            run.request_stop()

    # -- labeling (Ground Truth) ---------------------------------------------------------------
    @property
    def localaws_labeling_jobs(self) -> dict[str, labeling_models.LabelingJob]:
        """Labeling jobs by lower-cased name (names are unique ignoring case)."""
        return self.__dict__.setdefault("_localaws_labeling_jobs", {})

    def localaws_create_labeling_job(self, req: dict[str, Any]) -> labeling_models.LabelingJob:
        """CreateLabelingJob: validated as SageMaker does, then run by ``labeling.run.LabelingRun``."""
        labeling_models.validate(req, self.localaws_labeling_jobs, self.account_id, self.region_name)
        name = req["LabelingJobName"]
        roles.check(req.get("RoleArn"), self.account_id,
                    roles.resource_arn("labeling-job", name, self.account_id, self.region_name))
        job = labeling_models.LabelingJob(req, self.account_id, self.region_name)
        self.localaws_labeling_jobs[name.lower()] = job
        run = labeling_run.LabelingRun(job, self.account_id, self.region_name)
        REGISTRY.put(*self._key("labeling", name.lower()), run)
        run.start()
        return job

    def localaws_labeling_job(self, name: str) -> labeling_models.LabelingJob:
        """The labeling job called ``name`` (any case); unknown names answer like SageMaker."""
        job = self.localaws_labeling_jobs.get(str(name or "").lower())
        if job is None:
            raise labeling_models.not_found(name)
        return job

    def describe_labeling_job(self, name: str) -> dict[str, Any]:
        """DescribeLabelingJob's answer (also for the local job page)."""
        return self.localaws_labeling_job(name).describe()

    def localaws_stop_labeling_job(self, name: str) -> None:
        """StopLabelingJob: Stopping → Stopped with the objects labeled so far."""
        job = self.localaws_labeling_job(name)
        if job.status not in ("Initializing", "InProgress"):
            raise ValidationError(message=f"The request was rejected because the labeling job is in status {job.status}.")
        run = REGISTRY.get(*self._key("labeling", job.name.lower()))
        if run is not None:
            run.request_stop()

    def localaws_list_labeling_jobs(self, params: dict[str, Any]) -> tuple[list[dict], str | None]:
        """ListLabelingJobs."""
        return labeling_models.list_jobs(list(self.localaws_labeling_jobs.values()), params)

    def localaws_list_labeling_jobs_for_workteam(self, params: dict[str, Any]) -> tuple[list[dict], str | None]:
        """ListLabelingJobsForWorkteam."""
        return labeling_models.list_for_workteam(list(self.localaws_labeling_jobs.values()), params)

    # -- processing -------------------------------------------------------------------------
    def localaws_create_processing_job(self, req: dict[str, Any]) -> Any:
        """CreateProcessingJob that runs the entrypoint locally."""
        name = req["ProcessingJobName"]
        cluster = (req.get("ProcessingResources") or {}).get("ClusterConfig") or {}
        check_instance_type(cluster.get("InstanceType"), "processingResources.clusterConfig.instanceType", PROCESSING)
        if name in self.processing_jobs:
            raise ValidationError(
                message=f"Job name must be unique within an AWS account and region, and a job with this name "
                f"already exists ({self.processing_jobs[name].arn})"
            )
        roles.check(req.get("RoleArn"), self.account_id,
                    roles.resource_arn("processing-job", name, self.account_id, self.region_name))
        job = self.create_processing_job(
            app_specification=req.get("AppSpecification"),
            experiment_config=req.get("ExperimentConfig"),
            network_config=req.get("NetworkConfig"),
            processing_inputs=req.get("ProcessingInputs"),
            processing_job_name=name,
            processing_output_config=req.get("ProcessingOutputConfig"),
            role_arn=req.get("RoleArn"),
            stopping_condition=req.get("StoppingCondition"),
            tags=req.get("Tags"),
        )
        _set_initial(job, processing.initial_attrs(req))
        run = processing.ProcessingRun(job, req, self.account_id, self.region_name)
        REGISTRY.put(*self._key("processing", name), run)
        run.start()
        return job

    def describe_processing_job(self, processing_job_name: str) -> dict[str, Any]:
        """DescribeProcessingJob; an unknown name answers like AWS."""
        if processing_job_name not in self.processing_jobs:
            raise messages.job(processing_job_name)
        return super().describe_processing_job(processing_job_name)

    def stop_processing_job(self, processing_job_name: str) -> None:
        """StopProcessingJob: Stopping → Stopped, process tree killed."""
        job = self.processing_jobs.get(processing_job_name)
        if job is None:
            raise messages.job(processing_job_name)
        if job.processing_job_status != "InProgress":
            raise ValidationError(
                message=f"The request was rejected because the processing job is in status {job.processing_job_status}."
            )
        run = REGISTRY.get(*self._key("processing", processing_job_name))
        if run is not None:
            run.request_stop()

    # -- transform --------------------------------------------------------------------------
    def localaws_create_transform_job(self, req: dict[str, Any]) -> Any:
        """CreateTransformJob that runs the model's handlers over the input prefix."""
        name = req["TransformJobName"]
        check_instance_type((req.get("TransformResources") or {}).get("InstanceType"),
                            "transformResources.instanceType", TRANSFORM)
        if name in self.transform_jobs:
            raise ValidationError(
                message=f"Job name must be unique within an AWS account and region, and a job with this name "
                f"already exists ({self.transform_jobs[name].arn})"
            )
        model = self._models.get(req.get("ModelName"))
        if model is None:
            raise messages.model(str(req.get("ModelName")), self.account_id, self.region_name)
        job = self.create_transform_job(
            transform_job_name=name,
            model_name=req.get("ModelName"),
            max_concurrent_transforms=req.get("MaxConcurrentTransforms"),
            model_client_config=req.get("ModelClientConfig"),
            max_payload_in_mb=req.get("MaxPayloadInMB"),
            batch_strategy=req.get("BatchStrategy"),
            environment=req.get("Environment"),
            transform_input=req.get("TransformInput"),
            transform_output=req.get("TransformOutput"),
            data_capture_config=req.get("DataCaptureConfig"),
            transform_resources=req.get("TransformResources"),
            data_processing=req.get("DataProcessing"),
            tags=req.get("Tags"),
            experiment_config=req.get("ExperimentConfig"),
        )
        _set_initial(job, transform.initial_attrs())
        run = transform.TransformRun(job, req, model_spec(model), self.account_id, self.region_name)
        REGISTRY.put(*self._key("transform", name), run)
        run.start()
        return job

    def describe_transform_job(self, transform_job_name: str) -> dict[str, Any]:
        """DescribeTransformJob; an unknown name answers like AWS."""
        if transform_job_name not in self.transform_jobs:
            raise messages.job(transform_job_name)
        return super().describe_transform_job(transform_job_name)

    def stop_transform_job(self, transform_job_name: str) -> None:
        """StopTransformJob: Stopping → Stopped."""
        job = self.transform_jobs.get(transform_job_name)
        if job is None:
            raise messages.job(transform_job_name)
        if job.transform_job_status != "InProgress":
            raise ValidationError(
                message=f"The request was rejected because the transform job is in status {job.transform_job_status}."
            )
        run = REGISTRY.get(*self._key("transform", transform_job_name))
        if run is not None:
            run.request_stop()

    # -- models and endpoint configs -------------------------------------------------------
    def create_model(self, model_name: str, *args: Any, **kwargs: Any) -> Any:
        """CreateModel; a name in use is refused as on AWS (moto 5.2.5 silently replaced it)."""
        if model_name in self._models:
            arn = f"arn:aws:sagemaker:{self.region_name}:{self.account_id}:model/{model_name.lower()}"
            raise ValidationError(message=f'Cannot create already existing model "{arn}".')
        role_arn = kwargs.get("execution_role_arn", args[0] if args else None)
        roles.check(role_arn, self.account_id, roles.resource_arn("model", model_name, self.account_id, self.region_name))
        return super().create_model(model_name, *args, **kwargs)

    def describe_model(self, model_name: str) -> Any:
        """DescribeModel; an unknown name answers like AWS."""
        if model_name not in self._models:
            raise messages.model(model_name, self.account_id, self.region_name)
        return super().describe_model(model_name)

    def delete_model(self, model_name: str) -> None:
        """DeleteModel; an unknown name answers like AWS."""
        if model_name not in self._models:
            raise messages.model(model_name, self.account_id, self.region_name)
        super().delete_model(model_name)

    def validate_production_variants(self, production_variants: list[dict[str, Any]]) -> None:
        """CreateEndpointConfig: every variant's model must exist (AWS's wording when one does not)."""
        for variant in production_variants:
            if variant["ModelName"] not in self._models:
                raise messages.model(variant["ModelName"], self.account_id, self.region_name)

    def describe_endpoint_config(self, endpoint_config_name: str) -> dict[str, Any]:
        """DescribeEndpointConfig; an unknown name answers like AWS."""
        if endpoint_config_name not in self.endpoint_configs:
            raise messages.endpoint_config(endpoint_config_name, self.account_id, self.region_name)
        return super().describe_endpoint_config(endpoint_config_name)

    def delete_endpoint_config(self, endpoint_config_name: str) -> None:
        """DeleteEndpointConfig; an unknown name answers like AWS."""
        if endpoint_config_name not in self.endpoint_configs:
            raise messages.endpoint_config(endpoint_config_name, self.account_id, self.region_name)
        super().delete_endpoint_config(endpoint_config_name)

    def describe_endpoint(self, endpoint_name: str) -> dict[str, Any]:
        """DescribeEndpoint (with LastDeploymentConfig and PendingDeploymentSummary); an unknown name
        answers like AWS."""
        if endpoint_name not in self.endpoints:
            raise messages.endpoint(endpoint_name, self.account_id, self.region_name)
        response = dict(super().describe_endpoint(endpoint_name))
        endpoint = self.endpoints[endpoint_name]
        # DescribeEndpoint's DataCaptureConfig is a DataCaptureConfigSummary (of the config in service)
        response.pop("DataCaptureConfig", None)
        summary = capture.summary(getattr(endpoint, "data_capture_config", None))
        if summary is not None:
            response["DataCaptureConfig"] = summary
        if getattr(endpoint, "last_deployment_config", None):
            response["LastDeploymentConfig"] = copy.deepcopy(endpoint.last_deployment_config)
        runtime = self.endpoint_runtime(endpoint_name)
        pending = runtime.pending_summary() if runtime is not None else None
        if pending is not None and endpoint.endpoint_status in ("Updating", "RollingBack"):
            response["PendingDeploymentSummary"] = pending
        return response

    def describe_model_package(self, model_package_name: str) -> Any:
        """DescribeModelPackage; an unknown name or ARN answers like AWS."""
        mapped = self.model_package_name_mapping.get(model_package_name, model_package_name)
        if mapped not in self.model_packages:
            raise messages.model_package(model_package_name)
        return super().describe_model_package(model_package_name)

    def update_model_package(self, model_package_arn: str, *args: Any, **kwargs: Any) -> str:
        """UpdateModelPackage; an unknown ARN answers like AWS."""
        mapped = self.model_package_name_mapping.get(model_package_arn, model_package_arn)
        if mapped not in self.model_packages:
            raise messages.model_package(model_package_arn)
        return super().update_model_package(model_package_arn, *args, **kwargs)

    def create_endpoint_config(self, endpoint_config_name: str, *args: Any, **kwargs: Any) -> FakeEndpointConfig:
        """CreateEndpointConfig; a name in use is refused as on AWS (moto replaced it)."""
        if endpoint_config_name in self.endpoint_configs:
            arn = FakeEndpointConfig.arn_formatter(endpoint_config_name, self.account_id, self.region_name)
            raise ValidationError(message=f'Cannot create already existing endpoint configuration "{arn}".')
        capture.validate(kwargs.get("data_capture_config"))
        return super().create_endpoint_config(endpoint_config_name, *args, **kwargs)

    # -- endpoints --------------------------------------------------------------------------
    def create_endpoint(self, endpoint_name: str, endpoint_config_name: str, tags: list[dict[str, str]]) -> FakeEndpoint:
        """CreateEndpoint: Creating → InService (model servers healthy) or Failed."""
        if endpoint_name in self.endpoints:
            arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
            raise ValidationError(message=f'Cannot create already existing endpoint "{arn}".')
        if endpoint_config_name not in self.endpoint_configs:
            raise messages.endpoint_config(endpoint_config_name, self.account_id, self.region_name)
        endpoint = super().create_endpoint(endpoint_name, endpoint_config_name, tags)
        _set_initial(endpoint, {"endpoint_status": "Creating", "failure_reason": None})
        runtime = EndpointRuntime(self.account_id, self.region_name, endpoint)
        REGISTRY.put(*self._key("endpoint", endpoint_name), runtime)
        config = self.endpoint_configs[endpoint_config_name]
        endpoint.data_capture_config = copy.deepcopy(config.data_capture_config) or {}
        runtime.capture = capture.EndpointCapture.start(endpoint_name, endpoint.data_capture_config)
        runtime.create(endpoint_config_name, config.production_variants, self._models)
        return endpoint

    def update_endpoint(self, endpoint_name: str, endpoint_config_name: str,
                        deployment_config: dict[str, Any] | None = None,
                        retain_deployment_config: bool = False) -> FakeEndpoint:
        """UpdateEndpoint: Updating; a blue/green deployment as ``DeploymentConfig`` says (validated as
        the API does; ``RetainDeploymentConfig`` reuses the last one), rolled back on a failed ping,
        an alarm or the execution timeout."""
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            raise messages.endpoint(endpoint_name, self.account_id, self.region_name)
        config = self.endpoint_configs.get(endpoint_config_name)
        if config is None:
            raise messages.endpoint_config(endpoint_config_name, self.account_id, self.region_name)
        if endpoint.endpoint_status != "InService":
            raise ValidationError(
                message=f'Cannot update in-progress endpoint "{endpoint.arn}" (status {endpoint.endpoint_status}).'
            )
        if deployment_config is None and retain_deployment_config:
            deployment_config = getattr(endpoint, "last_deployment_config", None)
        deployments.validate(deployment_config, config.production_variants)
        runtime = REGISTRY.get(*self._key("endpoint", endpoint_name))
        if runtime is None:
            raise ValidationError(message=f'Endpoint "{endpoint.arn}" has no running model servers.')
        endpoint.endpoint_status = "Updating"
        endpoint.last_deployment_config = copy.deepcopy(deployment_config)
        runtime.update(endpoint_config_name, config.production_variants, self._models, deployment_config,
                       copy.deepcopy(config.data_capture_config) or {})
        return endpoint

    def delete_endpoint(self, endpoint_name: str) -> None:
        """DeleteEndpoint: stops the endpoint's model servers; an unknown name answers like AWS."""
        if endpoint_name not in self.endpoints:
            raise messages.endpoint(endpoint_name, self.account_id, self.region_name)
        super().delete_endpoint(endpoint_name)
        runtime = REGISTRY.pop(*self._key("endpoint", endpoint_name))
        if runtime is not None:
            if runtime.capture is not None:
                runtime.capture.flush()  # what was captured before the delete still lands
            runtime.shutdown()

    def endpoint_runtime(self, endpoint_name: str) -> EndpointRuntime | None:
        """The live model servers of an endpoint (for sagemaker-runtime)."""
        return REGISTRY.get(*self._key("endpoint", endpoint_name))


# -- response handlers added to moto's SageMakerResponse ------------------------------------------
def _params(self: Any) -> dict[str, Any]:
    return copy.deepcopy(dict(self.params))


def create_training_job(self: Any) -> ActionResult:
    job = self.sagemaker_backend.localaws_create_training_job(_params(self))
    return ActionResult({"TrainingJobArn": job.arn})


def stop_training_job(self: Any) -> EmptyResult:
    self.sagemaker_backend.stop_training_job(self._get_param("TrainingJobName"))
    return EmptyResult()


def create_processing_job(self: Any) -> ActionResult:
    job = self.sagemaker_backend.localaws_create_processing_job(_params(self))
    return ActionResult({"ProcessingJobArn": job.arn})


def stop_processing_job(self: Any) -> EmptyResult:
    self.sagemaker_backend.stop_processing_job(self._get_param("ProcessingJobName"))
    return EmptyResult()


def create_transform_job(self: Any) -> ActionResult:
    job = self.sagemaker_backend.localaws_create_transform_job(_params(self))
    return ActionResult({"TransformJobArn": job.arn})


def stop_transform_job(self: Any) -> EmptyResult:
    self.sagemaker_backend.stop_transform_job(self._get_param("TransformJobName"))
    return EmptyResult()


def create_hyper_parameter_tuning_job(self: Any) -> ActionResult:
    job = self.sagemaker_backend.localaws_create_hyper_parameter_tuning_job(_params(self))
    return ActionResult({"HyperParameterTuningJobArn": job.arn})


def list_training_jobs_for_hyper_parameter_tuning_job(self: Any) -> ActionResult:
    summaries, token = self.sagemaker_backend.localaws_list_training_jobs_for_tuning_job(_params(self))
    return ActionResult({"TrainingJobSummaries": summaries, **({"NextToken": token} if token else {})})


def stop_hyper_parameter_tuning_job(self: Any) -> EmptyResult:
    self.sagemaker_backend.stop_hyper_parameter_tuning_job(self._get_param("HyperParameterTuningJobName"))
    return EmptyResult()


def describe_endpoint_config(self: Any) -> ActionResult:
    response = dict(self.sagemaker_backend.describe_endpoint_config(self._get_param("EndpointConfigName")))
    if not response.get("DataCaptureConfig"):  # AWS leaves out what the request did not set
        response.pop("DataCaptureConfig", None)
    return ActionResult(response)


def update_endpoint(self: Any) -> ActionResult:
    endpoint = self.sagemaker_backend.update_endpoint(
        self._get_param("EndpointName"),
        self._get_param("EndpointConfigName"),
        copy.deepcopy(self._get_param("DeploymentConfig")),
        bool(self._get_param("RetainDeploymentConfig")),
    )
    return ActionResult({"EndpointArn": endpoint.arn})


RESPONSE_METHODS = {
    f.__name__: f
    for f in (
        create_training_job,
        stop_training_job,
        create_processing_job,
        stop_processing_job,
        create_transform_job,
        stop_transform_job,
        create_hyper_parameter_tuning_job,
        list_training_jobs_for_hyper_parameter_tuning_job,
        stop_hyper_parameter_tuning_job,
        describe_endpoint_config,
        update_endpoint,
    )
}
