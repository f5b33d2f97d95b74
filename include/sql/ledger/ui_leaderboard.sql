-- The UI's models page: training runs with their gate evaluation (if any), newest first.
SELECT t.job_name, t.run_key, t.dataset_version, t.hyperparameters, t.instance_type, t.instance_count,
       t.billable_seconds, t.cost_usd, t.status, t.failure_reason, t.metrics, t.created_at,
       e.decision, e.reason, e.candidate_metrics, e.champion_job, e.evaluation_uri
FROM training_runs t
LEFT JOIN evaluations e ON e.candidate_job = t.job_name
ORDER BY t.created_at DESC, t.job_name DESC
LIMIT :limit
