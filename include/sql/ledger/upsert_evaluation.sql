-- One evaluation per candidate training job; re-evaluating overwrites the decision.
INSERT INTO evaluations (
    candidate_job, run_key, champion_job, champion_model, candidate_metrics, champion_metrics,
    decision, reason, evaluation_uri, created_at, updated_at
) VALUES (
    :candidate_job, :run_key, :champion_job, :champion_model, :candidate_metrics, :champion_metrics,
    :decision, :reason, :evaluation_uri, :now, :now
)
ON CONFLICT (candidate_job) DO UPDATE SET
    run_key = excluded.run_key,
    champion_job = excluded.champion_job,
    champion_model = excluded.champion_model,
    candidate_metrics = excluded.candidate_metrics,
    champion_metrics = excluded.champion_metrics,
    decision = excluded.decision,
    reason = excluded.reason,
    evaluation_uri = excluded.evaluation_uri,
    updated_at = excluded.updated_at
