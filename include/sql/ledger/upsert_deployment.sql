-- One deployment decision per (run, endpoint). NULL parameters keep stored values; deployed_at is
-- set once, the first time the row reaches status 'succeeded' (it orders the champion history).
INSERT INTO deployments (
    run_key, endpoint_name, endpoint_config, model_name, training_job, model_artifact, action,
    reason, status, deployed_at, created_at, updated_at, strategy, alarms, outcome, outcome_alarm
) VALUES (
    :run_key, :endpoint_name, :endpoint_config, :model_name, :training_job, :model_artifact, :action,
    :reason, :status, :deployed_at, :now, :now, :strategy, :alarms, :outcome, :outcome_alarm
)
ON CONFLICT (run_key, endpoint_name) DO UPDATE SET
    endpoint_config = COALESCE(excluded.endpoint_config, deployments.endpoint_config),
    model_name = COALESCE(excluded.model_name, deployments.model_name),
    training_job = COALESCE(excluded.training_job, deployments.training_job),
    model_artifact = COALESCE(excluded.model_artifact, deployments.model_artifact),
    action = excluded.action,
    reason = COALESCE(excluded.reason, deployments.reason),
    status = excluded.status,
    deployed_at = COALESCE(deployments.deployed_at, excluded.deployed_at),
    strategy = COALESCE(excluded.strategy, deployments.strategy),
    alarms = COALESCE(excluded.alarms, deployments.alarms),
    outcome = COALESCE(excluded.outcome, deployments.outcome),
    outcome_alarm = COALESCE(excluded.outcome_alarm, deployments.outcome_alarm),
    updated_at = excluded.updated_at
