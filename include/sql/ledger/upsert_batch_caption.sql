-- One caption per (image, model); a rerun of a transform overwrites (error cleared on success).
INSERT INTO batch_captions (
    image_key, model_name, caption, score, error, job_name, run_key, created_at, updated_at
) VALUES (
    :image_key, :model_name, :caption, :score, :error, :job_name, :run_key, :now, :now
)
ON CONFLICT (image_key, model_name) DO UPDATE SET
    caption = excluded.caption,
    score = excluded.score,
    error = excluded.error,
    job_name = excluded.job_name,
    run_key = excluded.run_key,
    updated_at = excluded.updated_at
