import csv
import json

import pytest

from ogiri_captioner.synthetic import Scene, generate, main, write_url_csv


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    generate(tmp_path / "a", n=12, seed=3)
    generate(tmp_path / "b", n=12, seed=3)
    generate(tmp_path / "c", n=12, seed=4)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert _files(tmp_path / "a") != _files(tmp_path / "c")


def test_layout_captions_and_splits(tmp_path):
    paths = generate(tmp_path, n=40, seed=1)
    rows = {s: [json.loads(x) for x in (paths[s] / f"{s}.jsonl").read_text(encoding="utf-8").splitlines()]
            for s in ("train", "val", "test")}
    images = {s: {r["image"] for r in rs} for s, rs in rows.items()}
    assert not images["train"] & images["val"] and not images["val"] & images["test"]
    assert sum(len(v) for v in images.values()) == 40
    for rs in rows.values():
        for r in rs:
            assert (tmp_path / r["image"]).is_file()
            assert r["image"] == f"images/{r['image_key'][:2]}/{r['image_key']}.jpg"
            assert ("左" in r["caption"] or "右" in r["caption"]) and r["labels"]
    # val/test images carry every template of their scene as references
    per_image = {}
    for r in rows["test"]:
        per_image.setdefault(r["image"], []).append(r["caption"])
    assert all(len(set(c)) in (2, 3) for c in per_image.values())


def test_scene_captions_name_colour_shape_and_position():
    caps = Scene(("赤", "丸"), ("青", "四角")).captions()
    assert caps[0] == "左に赤い丸、右に青い四角"
    assert all("赤い丸" in c and "青い四角" in c for c in caps)
    assert Scene(None, ("黄", "三角")).captions()[0] == "右に黄色い三角がひとつ"


def test_url_csv_helper(tmp_path):
    paths = generate(tmp_path / "d", n=10, seed=2)
    n = write_url_csv(paths["root"], "http://127.0.0.1:8765/", tmp_path / "c.csv", splits=("train",))
    with open(tmp_path / "c.csv", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["image_url", "caption"] and len(rows) == n + 1
    url, caption = rows[1]
    assert url.startswith("http://127.0.0.1:8765/images/")
    assert (paths["root"] / url.removeprefix("http://127.0.0.1:8765/")).is_file() and caption
    with pytest.raises(ValueError, match="no val manifest"):
        write_url_csv(tmp_path, "http://x/", tmp_path / "x.csv", splits=("val",))


def test_cli(tmp_path, capsys):
    main(["--out", str(tmp_path), "--n", "6", "--seed", "0", "--csv-base-url", "http://127.0.0.1:9/"])
    assert json.loads(capsys.readouterr().out)["train"] == str(tmp_path / "train")
    assert (tmp_path / "captions.csv").read_text(encoding="utf-8").startswith("image_url,caption")
