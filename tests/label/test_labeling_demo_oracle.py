"""The demo's workforce oracle (ogiri_local/labeling_demo.py): answers per manifest line id."""

from __future__ import annotations

from ogiri import catalog
from ogiri.label.selection import rate_object
from ogiri_local.labeling_demo import fit_rating, humour_rating, oracle_answers

BUCKET = "ogiri-demo"
SHA = "ab" * 32


def test_fit_is_5_for_an_exact_match_and_falls_with_character_overlap():
    refs = ["猫が会議で居眠りしている", "社長の椅子を狙う猫"]
    assert fit_rating("猫が会議で居眠りしている", refs) == 5
    assert 1 < fit_rating("猫が会議で寝ている", refs) < 5
    assert fit_rating("空飛ぶペンギン", refs) == 1
    assert fit_rating("anything", []) == 1
    assert {humour_rating(f"caption {i}") for i in range(30)} == {1, 2, 3, 4, 5}


def test_answers_tell_apart_a_model_caption_and_an_audited_caption_of_one_image():
    uri = f"s3://{BUCKET}/{catalog.image_s3_key(SHA)}"
    items = [{catalog.IMAGE_KEY: SHA, catalog.CAPTION: "猫が会議で居眠りしている", catalog.S3_URI: uri}]
    batch = [{"image_key": catalog.image_s3_key(SHA), "caption": "犬が走っている", "model_name": "m"}]
    answers = oracle_answers(batch, items, bucket=BUCKET)
    model = rate_object(catalog.image_s3_key(SHA), "犬が走っている", uri, "batch")["id"]
    audit = rate_object(SHA, "猫が会議で居眠りしている", uri, "audit")["id"]
    assert set(answers) == {model, audit}
    assert answers[audit]["fit"] == 5 and answers[model]["fit"] < 5
    assert all(1 <= a["humour"] <= 5 for a in answers.values())
