-- The captions of the latest batch-caption run (the run that wrote the newest row), lowest score
-- first (unscored last); per-item errors are left out.
SELECT * FROM batch_captions
WHERE caption IS NOT NULL AND error IS NULL
  AND run_key = (SELECT run_key FROM batch_captions WHERE caption IS NOT NULL ORDER BY updated_at DESC LIMIT 1)
ORDER BY CASE WHEN score IS NULL THEN 1 ELSE 0 END, score, image_key
