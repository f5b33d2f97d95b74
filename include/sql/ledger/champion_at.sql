-- The model that served an endpoint at a time: the latest successful create/update/rollback
-- deployed before :at (ISO-8601 UTC text, e.g. a monitoring window's end).
SELECT endpoint_name, endpoint_config, model_name, training_job, model_artifact, action, run_key,
       deployed_at
FROM deployments
WHERE endpoint_name = :endpoint_name
  AND status = 'succeeded'
  AND action IN ('create', 'update', 'rollback')
  AND deployed_at < :at
ORDER BY deployed_at DESC, updated_at DESC
LIMIT 1
