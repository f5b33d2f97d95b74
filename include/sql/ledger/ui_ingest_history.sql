-- The UI's ingest page: the latest runs, one row per partition date (run_key is per partition).
SELECT * FROM ingest_runs ORDER BY partition_date DESC, updated_at DESC LIMIT :limit
