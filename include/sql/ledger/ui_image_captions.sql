-- The UI's gallery: every model's caption (or error) of one image, newest first.
SELECT * FROM batch_captions WHERE image_key = :image_key ORDER BY updated_at DESC
