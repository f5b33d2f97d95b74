-- Run ledger schema. Portable between SQLite (>= 3.24, local default) and PostgreSQL (production).
-- Idempotent: every statement is IF NOT EXISTS, so ensure_schema() may run on every task.
-- Conventions: timestamps are ISO-8601 UTC text with microseconds (sortable on both engines);
-- *_json columns hold JSON text; run_key is ogiri.naming.run_key(dag_id, run_id, logical_date).

CREATE TABLE IF NOT EXISTS ingest_runs (
    run_key             TEXT PRIMARY KEY,
    dag_id              TEXT NOT NULL,
    run_id              TEXT NOT NULL,
    partition_date      TEXT NOT NULL,
    rows_in             INTEGER NOT NULL DEFAULT 0,
    accepted            INTEGER NOT NULL DEFAULT 0,
    duplicates          INTEGER NOT NULL DEFAULT 0,
    rejected            INTEGER NOT NULL DEFAULT 0,
    rejected_by_reason  TEXT NOT NULL DEFAULT '{}',
    images_fetched      INTEGER NOT NULL DEFAULT 0,
    bytes_fetched       BIGINT NOT NULL DEFAULT 0,
    labels              INTEGER NOT NULL DEFAULT 0,
    elapsed_s           DOUBLE PRECISION NOT NULL DEFAULT 0,
    status              TEXT NOT NULL,
    message             TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS ix_ingest_runs_partition ON ingest_runs (partition_date);

CREATE TABLE IF NOT EXISTS training_runs (
    job_name            TEXT PRIMARY KEY,
    run_key             TEXT,
    dataset_version     TEXT,
    hyperparameters     TEXT,
    instance_type       TEXT,
    instance_count      INTEGER,
    billable_seconds    INTEGER,
    cost_usd            DOUBLE PRECISION,
    status              TEXT NOT NULL,
    failure_reason      TEXT,
    model_artifact      TEXT,
    metrics             TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS ix_training_runs_dataset ON training_runs (dataset_version);

CREATE TABLE IF NOT EXISTS evaluations (
    candidate_job       TEXT PRIMARY KEY,
    run_key             TEXT,
    champion_job        TEXT,
    champion_model      TEXT,
    candidate_metrics   TEXT,
    champion_metrics    TEXT,
    decision            TEXT NOT NULL,
    reason              TEXT,
    evaluation_uri      TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS deployments (
    run_key             TEXT NOT NULL,
    endpoint_name       TEXT NOT NULL,
    endpoint_config     TEXT,
    model_name          TEXT,
    training_job        TEXT,
    model_artifact      TEXT,
    action              TEXT NOT NULL,
    reason              TEXT,
    status              TEXT NOT NULL,
    deployed_at         TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    PRIMARY KEY (run_key, endpoint_name)
);

CREATE INDEX IF NOT EXISTS ix_deployments_endpoint ON deployments (endpoint_name, status, deployed_at);

CREATE TABLE IF NOT EXISTS batch_captions (
    image_key           TEXT NOT NULL,
    model_name          TEXT NOT NULL,
    caption             TEXT,
    score               DOUBLE PRECISION,
    error               TEXT,
    job_name            TEXT,
    run_key             TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    PRIMARY KEY (image_key, model_name)
);

CREATE INDEX IF NOT EXISTS ix_batch_captions_job ON batch_captions (job_name);

-- Monitoring (issue 14): one row per endpoint and hourly capture window (ogiri_monitor).
-- status: ok | violation | empty | no_baseline (as report.json) | failed; scores = report.json
-- "features"; violations = the violated feature names (JSON list).
CREATE TABLE IF NOT EXISTS monitoring_windows (
    endpoint_name       TEXT NOT NULL,
    window_start        TEXT NOT NULL,
    window_end          TEXT NOT NULL,
    run_key             TEXT,
    model_name          TEXT,
    status              TEXT NOT NULL,
    records             INTEGER NOT NULL DEFAULT 0,
    bad_records         INTEGER NOT NULL DEFAULT 0,
    scores              TEXT NOT NULL DEFAULT '{}',
    violations          TEXT NOT NULL DEFAULT '[]',
    report_uri          TEXT,
    processing_job      TEXT,
    alert_message_id    TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    PRIMARY KEY (endpoint_name, window_start)
);

-- Ground Truth labeling jobs of ogiri_label (issue 16): objects in = labeled + rejected + expired.
CREATE TABLE IF NOT EXISTS labeling_jobs (
    job_name            TEXT PRIMARY KEY,
    run_key             TEXT,
    task_type           TEXT NOT NULL,
    status              TEXT NOT NULL,
    objects_in          INTEGER NOT NULL DEFAULT 0,
    labeled             INTEGER NOT NULL DEFAULT 0,
    rejected            INTEGER NOT NULL DEFAULT 0,
    expired             INTEGER NOT NULL DEFAULT 0,
    workers_per_object  INTEGER,
    mean_agreement      DOUBLE PRECISION,
    report_uri          TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
