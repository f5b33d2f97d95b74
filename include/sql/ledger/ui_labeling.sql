-- The UI's labeling page: the latest labeling jobs, newest first.
SELECT * FROM labeling_jobs ORDER BY created_at DESC, job_name DESC LIMIT :limit
