-- One row per (endpoint, window): a rerun or backfill of the window overwrites its result.
-- alert_message_id is set afterwards by set_monitoring_alert (a re-record clears it).
INSERT INTO monitoring_windows (
    endpoint_name, window_start, window_end, run_key, model_name, status, records, bad_records,
    scores, violations, report_uri, processing_job, alert_message_id, created_at, updated_at
) VALUES (
    :endpoint_name, :window_start, :window_end, :run_key, :model_name, :status, :records, :bad_records,
    :scores, :violations, :report_uri, :processing_job, :alert_message_id, :now, :now
)
ON CONFLICT (endpoint_name, window_start) DO UPDATE SET
    window_end = excluded.window_end,
    run_key = excluded.run_key,
    model_name = COALESCE(excluded.model_name, monitoring_windows.model_name),
    status = excluded.status,
    records = excluded.records,
    bad_records = excluded.bad_records,
    scores = excluded.scores,
    violations = excluded.violations,
    report_uri = excluded.report_uri,
    processing_job = excluded.processing_job,
    alert_message_id = excluded.alert_message_id,
    updated_at = excluded.updated_at
