-- Training job lifecycle: first call (status InProgress) creates the row, later calls fill in
-- billing, metrics and artifact. A NULL parameter keeps the stored value (partial update).
INSERT INTO training_runs (
    job_name, run_key, dataset_version, hyperparameters, instance_type, instance_count,
    billable_seconds, cost_usd, status, failure_reason, model_artifact, metrics, created_at, updated_at,
    triggered_by
) VALUES (
    :job_name, :run_key, :dataset_version, :hyperparameters, :instance_type, :instance_count,
    :billable_seconds, :cost_usd, :status, :failure_reason, :model_artifact, :metrics, :now, :now,
    :triggered_by
)
ON CONFLICT (job_name) DO UPDATE SET
    run_key = COALESCE(excluded.run_key, training_runs.run_key),
    dataset_version = COALESCE(excluded.dataset_version, training_runs.dataset_version),
    hyperparameters = COALESCE(excluded.hyperparameters, training_runs.hyperparameters),
    instance_type = COALESCE(excluded.instance_type, training_runs.instance_type),
    instance_count = COALESCE(excluded.instance_count, training_runs.instance_count),
    billable_seconds = COALESCE(excluded.billable_seconds, training_runs.billable_seconds),
    cost_usd = COALESCE(excluded.cost_usd, training_runs.cost_usd),
    status = excluded.status,
    failure_reason = COALESCE(excluded.failure_reason, training_runs.failure_reason),
    model_artifact = COALESCE(excluded.model_artifact, training_runs.model_artifact),
    metrics = COALESCE(excluded.metrics, training_runs.metrics),
    triggered_by = COALESCE(excluded.triggered_by, training_runs.triggered_by),
    updated_at = excluded.updated_at
