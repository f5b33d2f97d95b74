"""code/inference.py handlers: round trips for every content type and clear errors for bad payloads."""

import base64
import importlib.util
import io
import json
import os
import subprocess
import sys

import boto3
import pytest
from moto import mock_aws
from PIL import Image


@pytest.fixture(scope="module")
def handlers(trained):
    path = trained["model_dir"] / "code" / "inference.py"
    saved = list(sys.path)
    spec = importlib.util.spec_from_file_location("inference_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.path[:] = saved
    return module


@pytest.fixture(scope="module")
def model(handlers, trained):
    return handlers.model_fn(str(trained["model_dir"]))


@pytest.fixture(scope="module")
def image_bytes(synthetic):
    path = sorted(synthetic["images"].rglob("*.jpg"))[0]
    return path.read_bytes()


def _png(jpeg: bytes) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).save(buf, format="PNG")
    return buf.getvalue()


def _call(h, model, body, ctype, accept="application/json"):
    return h.output_fn(h.predict_fn(h.input_fn(body, ctype), model), accept)


def test_image_round_trip_jpeg_and_png(handlers, model, image_bytes):
    out = json.loads(_call(handlers, model, image_bytes, "application/x-image"))
    assert set(out) == {"caption", "score", "alternatives"}
    assert out["caption"] and isinstance(out["score"], float) and out["score"] <= 0
    assert 1 <= len(out["alternatives"]) <= 2  # default beam width 3
    assert all(a["score"] <= out["score"] and a["caption"] != out["caption"] for a in out["alternatives"])
    assert ("左" in out["caption"]) or ("右" in out["caption"])
    png = json.loads(_call(handlers, model, _png(image_bytes), "image/png"))
    assert png["caption"] == out["caption"]


def test_json_base64_with_beam_width_one_is_greedy(handlers, model, image_bytes):
    body = json.dumps({"image_b64": base64.b64encode(image_bytes).decode(), "beam_width": 1})
    out = json.loads(_call(handlers, model, body, "application/json; charset=utf-8"))
    assert out["alternatives"] == []
    (greedy,) = model.caption([Image.open(io.BytesIO(image_bytes)).convert("RGB")], beam_width=1)
    assert out["caption"] == greedy["caption"]


def test_json_s3_uri(handlers, model, image_bytes, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="ogiri")
        s3.put_object(Bucket="ogiri", Key="images/x.jpg", Body=image_bytes)
        out = json.loads(_call(handlers, model, json.dumps({"s3_uri": "s3://ogiri/images/x.jpg"}),
                               "application/json"))
        assert out["caption"]
        with pytest.raises(ValueError, match=r"cannot read s3://ogiri/missing\.jpg: NoSuchKey"):
            handlers.input_fn(json.dumps({"s3_uri": "s3://ogiri/missing.jpg"}), "application/json")


def test_json_lines_batch_keeps_order_and_reports_bad_items(handlers, model, image_bytes):
    b64 = base64.b64encode(image_bytes).decode()
    lines = [json.dumps({"id": "a", "image_b64": b64}), json.dumps({"id": "b", "image_b64": "%%%"}), "{oops",
             json.dumps({"id": 4, "image_b64": b64, "beam_width": 1}), json.dumps({"id": "e"})]
    out = _call(handlers, model, "\n".join(lines) + "\n", "application/jsonlines", "application/jsonlines")
    rows = [json.loads(x) for x in out.splitlines()]
    assert [r.get("id") for r in rows] == ["a", "b", None, 4, "e"]
    assert rows[0]["caption"] and rows[3]["caption"] and rows[3]["alternatives"] == []
    assert rows[1]["error"] == "line 2: image_b64 is not valid base64"
    assert rows[2]["error"].startswith("line 3: not valid JSON")
    assert "needs 'image_b64' or 's3_uri'" in rows[4]["error"]
    assert rows[0]["caption"] == json.loads(_call(handlers, model, image_bytes, "image/jpeg"))["caption"]
    # a batch stays JSON Lines whatever the client accepts (transform output is line-aligned)
    assert _call(handlers, model, lines[0], "application/jsonlines", "application/json") == out.splitlines()[0] + "\n"


@pytest.mark.parametrize(("body", "ctype", "message"), [
    (b"\x89PNG\r\n garbage", "application/x-image", "cannot decode image"),
    (b"", "image/jpeg", "request body is empty"),
    (b"{", "application/json", "not valid UTF-8 JSON"),
    (b"[1, 2]", "application/json", "must be a JSON object"),
    (b'{"foo": 1}', "application/json", "needs 'image_b64' or 's3_uri'"),
    (b'{"image_b64": "not base64!"}', "application/json", "image_b64 is not valid base64"),
    (b'{"image_b64": "aGVsbG8=", "beam_width": 0}', "application/json", "beam_width must be an integer"),
    (b'{"image_b64": "aGVsbG8="}', "application/json", "cannot decode image"),
    (b'{"s3_uri": "http://x/y"}', "application/json", "s3_uri must look like s3://bucket/key"),
    (b"a,b", "text/csv", "unsupported content type 'text/csv'"),
])
def test_broken_payloads_raise_clear_value_errors(handlers, body, ctype, message):
    with pytest.raises(ValueError, match=message):
        handlers.input_fn(body, ctype)


def test_unsupported_accept_type(handlers, model, image_bytes):
    with pytest.raises(ValueError, match="unsupported accept type 'text/csv'"):
        _call(handlers, model, image_bytes, "image/jpeg", accept="text/csv")


def test_model_tarball_code_is_self_contained(trained, image_bytes, tmp_path):
    """The packed code/ runs with nothing but itself on sys.path, as in the SageMaker model server."""
    code = trained["model_dir"] / "code"
    (tmp_path / "img.jpg").write_bytes(image_bytes)
    script = (
        "import sys, json; sys.path.insert(0, sys.argv[1]); import inference, ogiri_captioner;"
        "m = inference.model_fn(sys.argv[2]);"
        "out = inference.output_fn(inference.predict_fn(inference.input_fn(open(sys.argv[3], 'rb').read(),"
        " 'image/jpeg'), m), 'application/json');"
        "print(json.dumps({'pkg': ogiri_captioner.__file__, 'out': json.loads(out)}))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run([sys.executable, "-c", script, str(code), str(trained["model_dir"]),
                           str(tmp_path / "img.jpg")], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["pkg"].startswith(str(code))
    assert result["out"]["caption"]
