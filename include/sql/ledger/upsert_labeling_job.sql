-- One row per Ground Truth labeling job; a rerun of the run's tasks overwrites its counts.
INSERT INTO labeling_jobs (
    job_name, run_key, task_type, status, objects_in, labeled, rejected, expired, workers_per_object,
    mean_agreement, report_uri, created_at, updated_at
) VALUES (
    :job_name, :run_key, :task_type, :status, :objects_in, :labeled, :rejected, :expired, :workers_per_object,
    :mean_agreement, :report_uri, :now, :now
)
ON CONFLICT (job_name) DO UPDATE SET
    run_key = excluded.run_key,
    task_type = excluded.task_type,
    status = excluded.status,
    objects_in = excluded.objects_in,
    labeled = excluded.labeled,
    rejected = excluded.rejected,
    expired = excluded.expired,
    workers_per_object = excluded.workers_per_object,
    mean_agreement = excluded.mean_agreement,
    report_uri = excluded.report_uri,
    updated_at = excluded.updated_at
