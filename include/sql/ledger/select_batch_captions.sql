-- Captions written by one batch transform job.
SELECT * FROM batch_captions WHERE job_name = :job_name ORDER BY image_key, model_name
