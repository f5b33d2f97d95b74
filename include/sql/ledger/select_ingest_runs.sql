-- Ingest runs of one partition date, newest first.
SELECT * FROM ingest_runs WHERE partition_date = :partition_date ORDER BY updated_at DESC
