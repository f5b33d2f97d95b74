-- One row per ingest run; a rerun of the same run_key overwrites its summary (never duplicates).
INSERT INTO ingest_runs (
    run_key, dag_id, run_id, partition_date, rows_in, accepted, duplicates, rejected,
    rejected_by_reason, images_fetched, bytes_fetched, labels, elapsed_s, status, message,
    created_at, updated_at
) VALUES (
    :run_key, :dag_id, :run_id, :partition_date, :rows_in, :accepted, :duplicates, :rejected,
    :rejected_by_reason, :images_fetched, :bytes_fetched, :labels, :elapsed_s, :status, :message,
    :now, :now
)
ON CONFLICT (run_key) DO UPDATE SET
    dag_id = excluded.dag_id,
    run_id = excluded.run_id,
    partition_date = excluded.partition_date,
    rows_in = excluded.rows_in,
    accepted = excluded.accepted,
    duplicates = excluded.duplicates,
    rejected = excluded.rejected,
    rejected_by_reason = excluded.rejected_by_reason,
    images_fetched = excluded.images_fetched,
    bytes_fetched = excluded.bytes_fetched,
    labels = excluded.labels,
    elapsed_s = excluded.elapsed_s,
    status = excluded.status,
    message = excluded.message,
    updated_at = excluded.updated_at
