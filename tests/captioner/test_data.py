import json

import pytest

from ogiri_captioner.data import open_image, read_manifests, resolve_image


def _layout(tmp_path):
    img = tmp_path / "images" / "ab" / "abc.jpg"
    img.parent.mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (8, 8), (255, 0, 0)).save(img)
    return img


def test_image_refs_resolve_against_the_mirrored_channel(tmp_path):
    img = _layout(tmp_path)
    images = tmp_path / "images"
    assert resolve_image("images/ab/abc.jpg", [images]) == img
    assert resolve_image("ab/abc.jpg", [images]) == img
    assert resolve_image("s3://bucket/images/ab/abc.jpg", [images]) == img
    with pytest.raises(ValueError, match="not found"):
        resolve_image("images/ab/missing.jpg", [images])
    with pytest.raises(ValueError, match=r"'\.\.'"):
        resolve_image("../etc/passwd", [images])


def test_manifest_relative_to_its_own_channel_and_all_jsonl_read(tmp_path):
    _layout(tmp_path)
    (tmp_path / "a.jsonl").write_text(json.dumps({"image": "images/ab/abc.jpg", "caption": "赤"}) + "\n\n",
                                      encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(json.dumps({"image": "images/ab/abc.jpg", "caption": "丸",
                                                  "labels": ["Red"]}) + "\n", encoding="utf-8")
    recs = read_manifests(tmp_path)
    assert [r.caption for r in recs] == ["赤", "丸"] and recs[1].labels == ("Red",)


@pytest.mark.parametrize(("line", "message"), [
    ("{not json", "not valid JSON"),
    (json.dumps({"image": "images/ab/abc.jpg"}), "needs 'image' and 'caption'"),
    (json.dumps({"image": "images/ab/abc.jpg", "caption": " "}), "non-empty string"),
    (json.dumps({"image": "nope.jpg", "caption": "x"}), r"m\.jsonl:1: image 'nope\.jpg' not found"),
])
def test_bad_manifest_lines_name_file_line_and_problem(tmp_path, line, message):
    _layout(tmp_path)
    (tmp_path / "m.jsonl").write_text(line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_manifests(tmp_path)


def test_missing_channel_and_undecodable_image(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        read_manifests(tmp_path / "nope")
    with pytest.raises(ValueError, match="no \\*.jsonl"):
        read_manifests(tmp_path)
    with pytest.raises(ValueError, match="cannot decode image"):
        open_image(b"definitely not an image")
