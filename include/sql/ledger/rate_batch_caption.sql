-- People's ratings (ogiri_label, task rate) of one model caption from ogiri_batch_caption.
UPDATE batch_captions SET
    rating_fit = :rating_fit,
    rating_humour = :rating_humour,
    rating = :rating,
    rating_count = :rating_count,
    rating_job = :rating_job
WHERE image_key = :image_key AND model_name = :model_name
