-- The model currently serving on an endpoint: the latest successful create/update/rollback.
SELECT endpoint_name, endpoint_config, model_name, training_job, model_artifact, action, run_key,
       deployed_at
FROM deployments
WHERE endpoint_name = :endpoint_name
  AND status = 'succeeded'
  AND action IN ('create', 'update', 'rollback')
ORDER BY deployed_at DESC, updated_at DESC
LIMIT 1
