"""The Ogiri pages through Airflow's real API app (``airflow.api_fastapi.app.create_app``, which loads
``plugins/ogiri_ui_plugin.py`` and mounts it at ``/ogiri``), with FastAPI's TestClient.

Auth is Airflow's own (SimpleAuthManager, JWTs it signs). Data is written by the product's own
writers (the ledger's ``record_*``, the ingest's image normaliser and rejects writer, the catalog's
item codec) into the emulator with the template's stack deployed, and the pages read it as the
Airflow worker principal, so every read is also checked against the worker's IAM policy.
The fixtures (``airflow_app``, ``client``, ``product``) are in ``conftest.py``.
"""

from __future__ import annotations

import io
import json
import re

import pytest
from PIL import Image
from plugin_client import PARAMS, image_bytes, token, viewer

DAY = "2026-11-30"


# -- auth ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/ogiri/ingest", "/ogiri/dataset", "/ogiri/models", "/ogiri/gallery"])
def test_a_browser_without_a_session_is_sent_to_the_login_page(client, path):
    r = client.get(path, headers={"Accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert r.headers["location"].startswith("/auth/login"), r.headers["location"]
    assert "next=" in r.headers["location"]


@pytest.mark.parametrize("path", ["/ogiri/ingest", "/ogiri/images/" + "a" * 64 + ".jpg", f"/ogiri/rejects/{DAY}"])
def test_a_client_without_a_token_gets_401(client, path):
    r = client.get(path, follow_redirects=False)
    assert r.status_code == 401, r.text


def test_a_forged_token_is_refused(client):
    client.cookies.set("_token", "not.a.jwt")
    assert client.get("/ogiri/ingest", follow_redirects=False).status_code in (401, 403)


def test_a_user_who_may_not_read_the_dags_gets_403(client):
    client.cookies.set("_token", token(None, "outsider"))  # no role: SimpleAuthManager grants nothing
    for path in ("/ogiri/ingest", "/ogiri/models", "/ogiri/images/" + "a" * 64 + ".jpg", "/ogiri/dag/ogiri_train"):
        assert client.get(path, follow_redirects=False).status_code == 403, path


def test_a_bearer_token_works_like_the_cookie(client, product):
    r = client.get("/ogiri/ingest", headers={"Authorization": f"Bearer {token('viewer')}"})
    assert r.status_code == 200, r.text


# -- empty, outage, validation ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/ogiri/ingest", "No ingest runs recorded yet"),
        ("/ogiri/dataset", "No dataset version yet"),
        ("/ogiri/models", "No training run yet"),
        ("/ogiri/gallery", "No image ingested yet"),
    ],
)
def test_a_fresh_install_says_there_is_no_data_yet(client, product, path, says):
    r = viewer(client).get(path)
    assert r.status_code == 200, r.text
    assert says in r.text
    assert 'class="banner"' not in r.text


def test_a_ledger_outage_shows_a_banner_not_a_traceback(client, product, monkeypatch, tmp_path):
    missing = tmp_path / "no-such-dir" / "ledger.db"
    monkeypatch.setenv("AIRFLOW_CONN_OGIRI_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(missing)}))
    r = viewer(client).get("/ogiri/models")
    assert r.status_code == 200
    banner = re.search(r'<div class="banner" role="alert">(.*?)</div>', r.text)
    assert banner and "could not read the run ledger" in banner.group(1), r.text
    assert "Traceback" not in r.text and 'File "' not in r.text


def test_an_s3_outage_shows_a_banner(client, product, aws):
    _seed_ingest(product, aws)
    aws.client("dynamodb").delete_table(TableName=PARAMS["TableName"])
    r = viewer(client).get("/ogiri/gallery")
    assert r.status_code == 200
    assert "could not read the caption table" in r.text and "ResourceNotFoundException" in r.text


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/ogiri/gallery?date=2026-13-01", "is not a date"),
        ("/ogiri/gallery?date=yesterday", "is not a date"),
        ("/ogiri/gallery?page=0", "whole number from 1"),
        ("/ogiri/gallery?page=abc", "whole number from 1"),
        ("/ogiri/gallery?label=%3Cscript%3E", "is not a label name"),
        ("/ogiri/gallery?page=1&page=2", "given 2 times"),
        ("/ogiri/ingest?limit=5", "unknown query parameter &#x27;limit&#x27;"),
        ("/ogiri/dataset?version=../../etc", "is not a dataset version"),
        ("/ogiri/dataset?top=51", "whole number from 1 to 50"),
        (f"/ogiri/gallery?date={DAY}&page=2", "past the last page"),
    ],
)
def test_bad_query_parameters_get_400_with_a_message(client, product, path, why):
    r = viewer(client).get(path)
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert why in r.text
    assert r.text.count("<script") == 1  # the theme script only: the bad value is escaped


def test_a_bad_image_key_or_date_gets_400(client, product):
    c = viewer(client)
    assert c.get("/ogiri/images/..%2F..%2Fsecret.jpg").status_code in (400, 404)
    assert c.get("/ogiri/images/" + "A" * 64 + ".jpg").status_code == 400
    assert c.get("/ogiri/rejects/2026-02-30").status_code == 400


# -- pages with data ----------------------------------------------------------------------------------------

def _endpoint() -> str:
    from ogiri.config import get_settings

    return get_settings().endpoint_name


def _seed_ingest(ledger, aws) -> list[str]:
    """One ingest run of DAY through the product's writers: two images, their items, a reject."""
    from ogiri import catalog
    from ogiri.aws import put_if_absent
    from ogiri.ingest.accounting import ChunkResult, rejects_jsonl, rejects_key
    from ogiri.ingest.images import normalise_image
    from ogiri.ingest.plan import run_name
    from ogiri.ledger import IngestRun

    s3, ddb = aws.client("s3"), aws.client("dynamodb")
    keys = []
    for i, colour in enumerate([(200, 30, 30), (30, 30, 200)]):
        img = normalise_image(image_bytes(colour), max_pixels=10**6, max_side=64)
        put_if_absent(s3, PARAMS["BucketName"], img.key, img.jpeg, "image/jpeg")
        labels = catalog.ImageLabels(labels=(("Red" if i == 0 else "Blue", 99.0), ("Shape", 80.0)), model_version="3.0")
        item = catalog.CaptionItem(image_key=img.sha256, caption=f"a {'red' if i == 0 else 'blue'} box",
                                   source_url=f"http://x/{i}.png", s3_uri=f"s3://{PARAMS['BucketName']}/{img.key}",
                                   ingest_date=DAY, source_ref=f"landing/dt={DAY}/c.csv#L{i + 2}",
                                   run_key=f"ogiri_ingest:{DAY}", labels=labels, width=img.width, height=img.height)
        ddb.put_item(TableName=PARAMS["TableName"], Item=item.item())
        keys.append(img.sha256)
    reject = {"source": f"landing/dt={DAY}/c.csv", "line": 4, "reason": "empty_caption", "detail": "",
              "image_url": "http://x/3.png", "caption": "", "raw": None}
    body = rejects_jsonl([ChunkResult(chunk=0, rejects=[reject])])
    s3.put_object(Bucket=PARAMS["BucketName"], Key=rejects_key(DAY, run_name(f"ogiri_ingest:{DAY}")), Body=body)
    ledger.record_ingest_run(IngestRun(run_key=f"ogiri_ingest:{DAY}", dag_id="ogiri_ingest", run_id=f"manual__{DAY}",
                                       partition_date=DAY, status="success", rows_in=4, accepted=2, duplicates=1,
                                       rejected=1, rejected_by_reason={"empty_caption": 1}))
    return keys


def test_the_ingest_page_charts_each_date_and_links_rejects_and_run(client, product, aws):
    _seed_ingest(product, aws)
    c = viewer(client)
    r = c.get("/ogiri/ingest")
    assert r.status_code == 200
    assert r.text.count('<svg class="chart"') == 2
    assert re.search(r'<rect class="bar"[^>]*><title>2026-11-30 · accepted: 2</title>', r.text), r.text
    assert "empty_caption: 1" in r.text
    assert f'href="/dags/ogiri_ingest/runs/manual__{DAY}"' in r.text
    rejects = c.get(f"/ogiri/rejects/{DAY}")
    assert rejects.status_code == 200
    assert json.loads(rejects.text.splitlines()[0])["reason"] == "empty_caption"
    assert c.get("/ogiri/rejects/2026-01-01").status_code == 404


def test_the_gallery_serves_images_through_the_plugin_with_captions(client, product, aws):
    from ogiri.ledger import BatchCaption, Deployment

    keys = _seed_ingest(product, aws)
    product.record_deployment(Deployment(run_key="ogiri_train:r1", endpoint_name=_endpoint(),
                                         action="create", status="succeeded", model_name="ogiri-model-r1",
                                         training_job="ogiri-train-r1"))
    product.record_batch_captions([BatchCaption(image_key=f"images/{keys[0][:2]}/{keys[0]}.jpg",
                                                model_name="ogiri-model-r1", caption="a red square")])
    c = viewer(client)
    page = c.get(f"/ogiri/gallery?date={DAY}&label=Red")
    assert page.status_code == 200, page.text
    srcs = re.findall(r'<img [^>]*src="([^"]+)"', page.text)
    assert srcs == [f"/ogiri/images/{keys[0]}.jpg"], srcs
    assert "a red box" in page.text and "a blue box" not in page.text
    assert '<p class="champion">a red square</p>' in page.text
    assert not re.search(r"https?://[^\"]*amazonaws|X-Amz-Signature", page.text)  # never a public/presigned URL
    img = c.get(srcs[0])
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(img.content)).size == (48, 32)
    assert c.get(f"/ogiri/images/{'0' * 64}.jpg").status_code == 404


def test_the_models_page_ranks_runs_and_marks_the_champion(client, product, aws):
    from ogiri.ledger import Deployment, Evaluation, TrainingRun

    for n, (cider, decision) in enumerate([(0.30, "deploy"), (0.25, "skip")], start=1):
        product.record_training_run(TrainingRun(
            job_name=f"ogiri-train-r{n}", status="Completed", run_key=f"ogiri_train:r{n}", dataset_version="ds-0123456789ab",
            hyperparameters={"epochs": 8, "lr": 0.001}, billable_seconds=60 * n, cost_usd=0.01 * n,
            metrics={"val_bleu4": 0.1 * n, "val_cider": 0.2 * n}))
        product.record_evaluation(Evaluation(candidate_job=f"ogiri-train-r{n}", decision=decision,
                                             reason="better" if decision == "deploy" else "no CIDEr gain",
                                             candidate_metrics={"bleu4": 0.05 * n, "cider": cider}))
    product.record_deployment(Deployment(run_key="ogiri_train:r1", endpoint_name=_endpoint(), action="create",
                                         status="succeeded", model_name="ogiri-model-r1", training_job="ogiri-train-r1"))
    product.record_deployment(Deployment(run_key="ogiri_train:r2", endpoint_name=_endpoint(), action="skip",
                                         status="succeeded", reason="no CIDEr gain"))
    r = viewer(client).get("/ogiri/models")
    assert r.status_code == 200
    assert "ogiri-train-r1 <span class=\"champion\">★ champion</span>" in r.text
    assert "skip: no CIDEr gain" in r.text and "0.300" in r.text
    assert r.text.count('<svg class="chart"') == 2  # metrics over time, deployment timeline
    assert r.text.count('<polyline class="line"') == 4
    assert '<text x="' in r.text and ">champion</text>" in r.text


def test_the_dag_tab_opens_the_page_of_that_dag(client, product):
    c = viewer(client)
    r = c.get("/ogiri/dag/ogiri_train", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ogiri/models"
    assert "No Ogiri page" in c.get("/ogiri/dag/some_other_dag").text


def test_the_plugin_registers_the_nav_entry_and_the_dag_tab(client):
    c = viewer(client)
    views = [v for p in c.get("/api/v2/plugins").json()["plugins"] for v in p["external_views"]]
    ogiri = {v["destination"]: v for v in views if v["name"] == "Ogiri"}
    assert ogiri["nav"]["href"] == "ogiri/ingest"
    assert ogiri["dag"]["href"] == "ogiri/dag/{DAG_ID}"
