"""Monitoring: baseline.json from training, window statistics, drift scores and monitor.py's report.

Windows are built as SageMaker data capture writes them, from the training images themselves
(identical: every score ~0), from darkened or re-coloured images (shifted: above threshold), and
from malformed lines (counted, never raised, never logged).
"""

from __future__ import annotations

import ast
import base64
import io
import json
import tarfile
import uuid
from pathlib import Path

import monitor
import pytest
from conftest import make_config, quiet_train
from PIL import Image, ImageEnhance

from ogiri_captioner import monitoring, statistics, synthetic
from ogiri_captioner.artifacts import load_model_dir
from ogiri_captioner.data import read_manifests

SAMPLE = 96


def capture_line(raw: bytes, result: dict, content_type: str = "image/jpeg") -> str:
    """One data-capture line of an image request and the endpoint's JSON answer."""
    return json.dumps({
        "captureData": {
            "endpointInput": {"observedContentType": content_type, "mode": "INPUT",
                              "data": base64.b64encode(raw).decode(), "encoding": "BASE64"},
            "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                               "data": json.dumps(result, ensure_ascii=False), "encoding": "JSON"}},
        "eventMetadata": {"eventId": str(uuid.uuid4()), "inferenceTime": "2026-12-07T15:04:05Z"},
        "eventVersion": "0"}, ensure_ascii=False)


def jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=92)
    return buf.getvalue()


@pytest.fixture(scope="module")
def model(synthetic, feature_cache, tmp_path_factory) -> dict:
    """A small model trained for 3 epochs; its model dir, ``model.tar.gz`` and loaded captioner."""
    root = tmp_path_factory.mktemp("monitored")
    cfg = make_config(synthetic, root / "model", epochs=3, feature_cache_dir=str(feature_cache),
                      baseline_max_images=SAMPLE)
    quiet_train(cfg)
    tarball = root / "packed" / "model.tar.gz"
    tarball.parent.mkdir()
    with tarfile.open(tarball, "w:gz") as tar:
        for p in sorted(Path(cfg.model_dir).iterdir()):
            tar.add(p, arcname=p.name)
    return {"dir": Path(cfg.model_dir), "tarball": tarball, "captioner": load_model_dir(cfg.model_dir)}


def write_window(path: Path, model: dict, images: list[bytes], extra_lines: tuple[str, ...] = ()) -> Path:
    """A capture file of ``images`` answered by the model (as the endpoint would), plus ``extra_lines``."""
    path.mkdir(parents=True, exist_ok=True)
    results = model["captioner"].caption([Image.open(io.BytesIO(r)).convert("RGB") for r in images])
    lines = [capture_line(raw, res) for raw, res in zip(images, results, strict=True)]
    (path / "10-00-000-x.jsonl").write_text("\n".join([*lines, *extra_lines]) + "\n", encoding="utf-8")
    return path


def run_monitor(tmp_path: Path, capture: Path, model_dir: Path, *extra: str) -> tuple[dict, dict]:
    out = tmp_path / "report"
    argv = ["--capture", str(capture), "--model", str(model_dir), "--output", str(out), "--endpoint", "ogiri-ep",
            "--window-start", "2026-12-07T15:00:00+00:00", "--window-end", "2026-12-07T16:00:00+00:00",
            "--model-name", "ogiri-model-1", "--max-images", "0", *extra]
    assert monitor.main(argv) == 0
    return (json.loads((out / "report.json").read_text(encoding="utf-8")),
            json.loads((out / "constraint_violations.json").read_text(encoding="utf-8")))


def baseline_images(synthetic) -> list[bytes]:
    """The training images the baseline sampled (first distinct paths in path order)."""
    paths = sorted({r.image for r in read_manifests(synthetic["train"], synthetic["images"])}, key=str)
    return [p.read_bytes() for p in paths[:SAMPLE]]


def test_training_writes_a_baseline_with_fixed_bins_for_every_feature(model, synthetic):
    names = {m.name for m in tarfile.open(model["tarball"])}
    assert "baseline.json" in names  # top level of model.tar.gz, beside model.pt
    baseline = json.loads((model["dir"] / "baseline.json").read_text(encoding="utf-8"))
    assert baseline["version"] == 1 and baseline["records"] == SAMPLE
    assert baseline["model"]["split"] == "train" and baseline["model"]["config"]["encoder"] == "resnet18"
    assert list(baseline["features"]) == list(statistics.FEATURES)
    for name, f in baseline["features"].items():
        if name == "embedding":
            assert f["kind"] == "embedding" and f["dim"] == statistics.EMBED_DIM == len(f["mean"])
            assert len(f["cov"]) == f["dim"] and all(len(row) == f["dim"] for row in f["cov"])
            assert isinstance(f["projection_seed"], int)
            continue
        assert f["kind"] == "histogram" and sum(f["counts"]) > 0, name
        bins = f.get("edges") or f["categories"]
        assert len(f["counts"]) == len(bins) - (1 if "edges" in f else 0), name
    assert baseline["features"]["input_width"]["counts"][statistics.SIZE_EDGES.index(96.0)] == SAMPLE
    labels = baseline["features"]["rekognition_labels"]
    assert {"Red", "Circle"} <= set(labels["categories"]) and labels["categories"][-1] == "other"
    assert baseline["features"]["output_char_frequency"]["categories"][-1] == "other"


def test_identical_window_scores_zero_and_ok(model, synthetic, tmp_path):
    capture = write_window(tmp_path / "capture", model, baseline_images(synthetic))
    report, violations = run_monitor(tmp_path, capture, model["tarball"].parent)
    assert report["status"] == "ok" and report["records"] == SAMPLE and violations == {"violations": []}
    assert report["model_name"] == "ogiri-model-1" and report["endpoint"] == "ogiri-ep"
    assert report["window"] == {"start": "2026-12-07T15:00:00+00:00", "end": "2026-12-07T16:00:00+00:00"}
    assert report["bad_records"] == {"invalid_json": 0, "undecodable": 0, "unsupported_content_type": 0}
    assert report["thresholds"] == {"psi": 0.25, "js": 0.1, "distance": monitoring.DISTANCE_THRESHOLD}
    for name, f in report["features"].items():
        if name == "rekognition_labels":  # --max-images 0: no DetectLabels call, so reported unavailable
            assert f["available"] is False and f["value"] is None and f["violation"] is False
            continue
        assert f["available"] and not f["violation"] and f["value"] < 1e-4, (name, f)
        assert f["metric"] == ("distance" if name == "embedding" else "js" if name in monitoring.CATEGORICAL
                               else "psi")


def test_darkened_window_is_a_violation(model, synthetic, tmp_path):
    dark = [jpeg(ImageEnhance.Brightness(Image.open(io.BytesIO(r)).convert("RGB")).enhance(0.5))
            for r in baseline_images(synthetic)[:40]]
    report, violations = run_monitor(tmp_path, write_window(tmp_path / "capture", model, dark),
                                     model["tarball"].parent)
    assert report["status"] == "violation"
    for name in ("input_brightness", "input_red", "input_green", "input_blue", "embedding"):
        f = report["features"][name]
        assert f["violation"] and f["value"] > f["threshold"], (name, f)
    assert not report["features"]["input_width"]["violation"]  # same sizes
    flagged = {v["feature_name"] for v in violations["violations"]}
    assert "input_brightness" in flagged
    assert {v["constraint_check_type"] for v in violations["violations"]} == {"baseline_drift_check"}


def test_recoloured_window_is_a_violation(model, tmp_path, monkeypatch):
    for name, rgb in {"赤": (120, 0, 120), "青": (0, 200, 200), "緑": (250, 120, 0), "黄": (90, 60, 20)}.items():
        monkeypatch.setitem(synthetic.COLOURS, name, rgb)
    shifted = synthetic.generate(tmp_path / "shifted", n=60, seed=5)
    images = sorted({r.image for r in read_manifests(shifted["train"], shifted["images"])}, key=str)
    report, _ = run_monitor(tmp_path, write_window(tmp_path / "capture", model, [p.read_bytes() for p in images]),
                            model["tarball"].parent)
    assert report["status"] == "violation"
    assert report["features"]["input_brightness"]["violation"]
    assert report["features"]["input_brightness"]["psi"] > monitoring.thresholds()["psi"]


def test_thresholds_are_overridable(model, synthetic, tmp_path):
    dark = [jpeg(ImageEnhance.Brightness(Image.open(io.BytesIO(r)).convert("RGB")).enhance(0.5))
            for r in baseline_images(synthetic)[:20]]
    report, violations = run_monitor(tmp_path, write_window(tmp_path / "capture", model, dark),
                                     model["tarball"].parent, "--psi-threshold", "1000", "--js-threshold", "1",
                                     "--distance-threshold", "1000")
    assert report["status"] == "ok" and violations == {"violations": []}
    assert report["thresholds"] == {"psi": 1000.0, "js": 1.0, "distance": 1000.0}


def test_malformed_lines_are_counted_not_raised_nor_logged(model, synthetic, tmp_path, caplog):
    good = baseline_images(synthetic)[:3]
    secret = "PERSONAL-DATA-MARKER"
    ok_output = json.dumps({"caption": "左に赤い丸", "score": -1.0, "alternatives": []}, ensure_ascii=False)
    json_body = json.dumps({"image_b64": base64.b64encode(good[0]).decode()})

    def line(inp: dict, out: dict | None = None) -> str:
        out = out or {"observedContentType": "application/json", "mode": "OUTPUT", "data": ok_output,
                      "encoding": "JSON"}
        return json.dumps({"captureData": {"endpointInput": {"mode": "INPUT", **inp}, "endpointOutput": out},
                           "eventMetadata": {"eventId": "e", "inferenceTime": "2026-12-07T15:00:00Z"},
                           "eventVersion": "0"})

    bad = (
        f"not json {secret}",
        json.dumps({"eventVersion": "0", "note": secret}),  # no captureData
        line({"observedContentType": "image/jpeg", "data": f"!!{secret}!!", "encoding": "BASE64"}),
        line({"observedContentType": "image/png", "data": base64.b64encode(secret.encode()).decode(),
              "encoding": "BASE64"}),  # base64 of something that is not an image
        line({"observedContentType": "text/csv", "data": f"1,2,{secret}", "encoding": "CSV"}),
        line({"observedContentType": "application/json", "data": json.dumps({"s3_uri": f"s3://b/{secret}"}),
              "encoding": "JSON"}),
        line({"observedContentType": "image/jpeg", "data": base64.b64encode(good[1]).decode(), "encoding": "BASE64"},
             {"observedContentType": "application/json", "data": secret, "encoding": "JSON"}),  # output not JSON
        line({"observedContentType": "application/json", "data": json_body, "encoding": "JSON"}),  # valid
        "",
    )
    capture = write_window(tmp_path / "capture", model, good, bad)
    report, _ = run_monitor(tmp_path, capture, model["tarball"].parent)
    assert report["records"] == 4  # 3 images + the application/json {"image_b64"} request
    assert report["bad_records"] == {"invalid_json": 2, "undecodable": 3, "unsupported_content_type": 2}
    assert report["status"] in ("ok", "violation")  # a tiny window: scored, whatever the verdict
    assert report["features"]["embedding"]["available"] is False  # 4 records < 16 projected dims
    assert secret not in caplog.text and secret not in json.dumps(report)


def test_jsonlines_batches_pair_inputs_with_output_lines(tmp_path):
    img = jpeg(Image.new("RGB", (40, 30), (200, 10, 10)))
    body = "\n".join([json.dumps({"id": 1, "image_b64": base64.b64encode(img).decode()}),
                      json.dumps({"id": 2, "image_b64": "%%%"})])
    answer = (json.dumps({"id": 1, "caption": "赤", "score": -0.5, "alternatives": []}) + "\n"
              + json.dumps({"id": 2, "error": "line 2: image_b64 is not valid base64"}) + "\n")
    record = {"captureData": {
        "endpointInput": {"observedContentType": "application/jsonlines", "mode": "INPUT", "data": body,
                          "encoding": "JSON"},
        "endpointOutput": {"observedContentType": "application/jsonlines", "mode": "OUTPUT",
                           "data": base64.b64encode(answer.encode()).decode(), "encoding": "BASE64"}}}
    from ogiri_captioner.capture import parse_line

    records, bad = parse_line(json.dumps(record))
    assert [(r.size, r.caption, r.score) for r in records] == [((40, 30), "赤", -0.5)]
    assert bad == ["undecodable"]


@pytest.mark.parametrize("make_capture", [lambda p: p / "missing", lambda p: p])
def test_empty_window(model, tmp_path, make_capture):
    (tmp_path / "capture").mkdir()
    report, violations = run_monitor(tmp_path, make_capture(tmp_path / "capture"), model["tarball"].parent)
    assert report["status"] == "empty" and report["records"] == 0 and report["features"] == {}
    assert violations == {"violations": []}


def test_model_without_baseline_is_no_baseline(model, synthetic, tmp_path):
    packed = tmp_path / "old" / "model.tar.gz"
    packed.parent.mkdir()
    with tarfile.open(packed, "w:gz") as tar:
        for p in sorted(model["dir"].iterdir()):
            if p.name != "baseline.json":
                tar.add(p, arcname=p.name)
    capture = write_window(tmp_path / "capture", model, baseline_images(synthetic)[:5])
    report, violations = run_monitor(tmp_path, capture, packed.parent)
    assert (report["status"], report["model_name"], report["records"]) == ("no_baseline", "ogiri-model-1", 5)
    assert report["features"] == {} and violations == {"violations": []}
    (tmp_path / "nothing").mkdir()
    assert run_monitor(tmp_path, capture, tmp_path / "nothing")[0]["status"] == "no_baseline"


def test_rekognition_unreachable_marks_labels_unavailable(model, synthetic, tmp_path, monkeypatch):
    for k, v in {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_DEFAULT_REGION": "us-east-1",
                 "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}.items():
        monkeypatch.setenv(k, v)
    capture = write_window(tmp_path / "capture", model, baseline_images(synthetic)[:4])
    report, _ = run_monitor(tmp_path, capture, model["tarball"].parent, "--max-images", "2")
    labels = report["features"]["rekognition_labels"]
    assert labels["available"] is False and labels["violation"] is False and labels["value"] is None
    assert "unreachable" in labels["reason"]
    assert report["features"]["input_brightness"]["available"]


STACK_PARAMS = {"EnvironmentName": "test", "BucketName": "ogiri-test", "TableName": "ogiri-test-captions"}


def _keys_with_policy(iam, name: str, policy: str | None) -> dict[str, str]:
    iam.create_user(UserName=name)
    if policy:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


def test_rekognition_labels_under_the_execution_roles_policy(aws, stack, model, synthetic, tmp_path, monkeypatch):
    """monitor.py's DetectLabels is allowed by the template's execution-role policy (IAM enforced), and a
    principal without it gets the feature marked unavailable instead of a crash."""
    stack(STACK_PARAMS)
    iam = aws.client("iam")
    role = "ogiri-test-sagemaker-execution"
    doc = iam.get_role_policy(RoleName=role, PolicyName="ogiri-sagemaker-execution")["PolicyDocument"]
    if isinstance(doc, str):  # the emulator hands a CloudFormation-made inline policy back as a Python literal
        doc = ast.literal_eval(doc)
    as_role = _keys_with_policy(iam, "as-execution-role", json.dumps(doc))
    nobody = _keys_with_policy(iam, "nobody", None)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.url)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)  # long-term user keys carry no token
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    capture = write_window(tmp_path / "capture", model, baseline_images(synthetic)[:6])
    for k, v in as_role.items():
        monkeypatch.setenv(k, v)
    report, _ = run_monitor(tmp_path, capture, model["tarball"].parent, "--max-images", "4")
    labels = report["features"]["rekognition_labels"]
    assert labels["available"] is True and labels["metric"] == "js" and 0.0 <= labels["value"] <= 1.0, labels["reason"]
    for k, v in nobody.items():
        monkeypatch.setenv(k, v)
    report, _ = run_monitor(tmp_path, capture, model["tarball"].parent, "--max-images", "4")
    labels = report["features"]["rekognition_labels"]
    assert labels["available"] is False and "AccessDenied" in labels["reason"]


def test_monitor_script_runs_as_the_processing_entry_point(tmp_path):
    """``python monitor.py`` with CONTRACTS' arguments, as the processing container runs it: exit 0."""
    import subprocess
    import sys

    script = Path(monitor.__file__)
    out = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, str(script), "--capture", str(tmp_path / "capture"), "--model", str(tmp_path / "model"),
         "--output", str(out), "--endpoint", "ogiri-ep", "--window-start", "2026-12-07T15:00:00+00:00",
         "--window-end", "2026-12-07T16:00:00+00:00", "--model-name", "m", "--max-images", "200",
         "--psi-threshold", "0.25", "--js-threshold", "0.1", "--distance-threshold", "0.3"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["status"] == "empty" and report["thresholds"]["distance"] == 0.3
    assert json.loads((out / "constraint_violations.json").read_text(encoding="utf-8")) == {"violations": []}
