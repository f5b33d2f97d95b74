"""The Ogiri plugin pages in headless Chromium, against ``make up``'s machinery with real data.

The data is made by the product itself: one night is landed (synthetic images plus the hostile rows
``make up`` lands, so there are rejects), ``ogiri_ingest`` runs it, the asset-triggered
``ogiri_train`` trains, evaluates and deploys a champion, and ``ogiri_batch_caption`` captions the
night's images with it; then the champion endpoint answers two batches of requests captured (100 %)
in two past hours, in-distribution then a shifted palette, ``ogiri_monitor`` checks each hour (the
second violates), and ``ogiri_label`` runs a ``rate`` job (its default conf) on the emulator's
workforce. Then a logged-in user opens every page (top level and inside Airflow's
navigation frame): charts must have drawn marks, every gallery image must have loaded
(``naturalWidth > 0``), no console errors; a logged-out browser and a token-less client are refused.
Screenshots (light and dark) go to ``.local/ui-artifacts/<test>/``; page timings (first byte and full
render, Navigation Timing) are printed and written to ``timings.json`` there — measured, not asserted.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from airflow_ui import AirflowUI, wait_for
from selenium.webdriver.common.by import By

from ogiri.config import Settings
from ogiri_local.airflow_stack import AirflowStack
from ogiri_local.environment import LocalEnvironment
from ogiri_local.monitoring_demo import in_distribution_images, send_traffic, shifted_images, window_start
from ogiri_local.up import hostile_rows

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

N_IMAGES = 60
PAGES = ("ingest", "dataset", "models", "gallery", "monitoring", "labeling")
#: Pages with a gallery whose images must load.
GALLERIES = ("gallery", "labeling")

#: Per chart: how many marks it drew and whether they have a size on screen.
CHARTS_JS = """return [...document.querySelectorAll('svg.chart')].map(s => {
  const marks = [...s.querySelectorAll('rect.bar, circle.point, polyline.line')];
  return {label: s.getAttribute('aria-label'), marks: marks.length,
          thresholds: s.querySelectorAll('polyline.threshold').length,
          violations: s.querySelectorAll('circle.violation').length,
          drawn: marks.filter(m => { const b = m.getBBox(); return b.width > 0 || b.height > 0; }).length,
          width: s.getBoundingClientRect().width};
});"""
IMAGES_JS = """return [...document.querySelectorAll('.gallery img')].map(i => ({src: i.getAttribute('src'),
  complete: i.complete, width: i.naturalWidth}));"""
TIMING_JS = """const n = performance.getEntriesByType('navigation')[0];
return {first_byte_ms: n.responseStart - n.startTime, full_render_ms: n.loadEventEnd - n.startTime,
        server_ms: (n.serverTiming || []).map(t => t.duration)[0] ?? null};"""


def _trigger(stack: AirflowStack, dag_id: str, conf: dict) -> str:
    body = {"logical_date": datetime.now(UTC).isoformat(), "conf": conf}
    return stack.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)["dag_run_id"]


def _state(stack: AirflowStack, dag_id: str, run_id: str) -> str:
    return stack.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{urllib.request.quote(run_id, safe='')}")["state"]


def _finished(stack: AirflowStack, dag_id: str, run_id: str, timeout: float) -> str:
    return wait_for(lambda: (s := _state(stack, dag_id, run_id)) in ("success", "failed") and s, timeout,
                    f"{dag_id} run {run_id} to finish", interval=2)


def _produce_data(stack: AirflowStack, day: str) -> None:
    """ingest → (asset) train → batch caption, as the product runs them."""
    wait_for(lambda: {"ogiri_ingest", "ogiri_train", "ogiri_batch_caption"}
             <= {d["dag_id"] for d in stack.request("GET", "/api/v2/dags")["dags"]}, 180, "the DAGs to register")
    for dag_id in ("ogiri_train", "ogiri_ingest"):  # the consumer first, so it hears the asset event
        stack.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    ingest = _trigger(stack, "ogiri_ingest", {"partition_date": day})
    assert _finished(stack, "ogiri_ingest", ingest, 420) == "success"
    train = wait_for(lambda: stack.request("GET", "/api/v2/dags/ogiri_train/dagRuns")["dag_runs"], 120,
                     "the asset-triggered training run")[0]["dag_run_id"]
    assert _finished(stack, "ogiri_train", train, 600) == "success"
    batch = _trigger(stack, "ogiri_batch_caption", {"ingest_date": day})
    stack.request("PATCH", "/api/v2/dags/ogiri_batch_caption", {"is_paused": False})
    assert _finished(stack, "ogiri_batch_caption", batch, 420) == "success"


def _produce_monitoring_and_labeling_data(stack: AirflowStack, env: LocalEnvironment, now: datetime) -> None:
    """Traffic on the champion endpoint as ``make demo`` sends it (in-distribution images captured in
    the hour two hours back, a shifted palette one hour back), then one ``ogiri_monitor`` run per hour
    (``window_start``: the first passes, the second violates) and one ``ogiri_label`` job with its
    default conf (a ``rate`` job over the latest batch captions, answered by the emulator's workforce)."""
    wait_for(lambda: {"ogiri_monitor", "ogiri_label"} <= {d["dag_id"] for d in stack.request("GET", "/api/v2/dags")["dags"]},
             180, "the monitoring and labeling DAGs to register")
    # The drift event would queue a retraining; this test is about the pages, not a second training.
    stack.request("PATCH", "/api/v2/dags/ogiri_train", {"is_paused": True})
    endpoint = stack.env.get("OGIRI_ENDPOINT_NAME") or Settings.endpoint_name
    windows = []
    for images, hours_ago in ((in_distribution_images(env), 2), (shifted_images(), 1)):
        start = window_start(now, hours_ago)
        # The capture clock set to the middle of that hour, however long the test has run so far.
        back = (datetime.now(UTC) - start - timedelta(minutes=30)).total_seconds() / 3600
        assert send_traffic(env, endpoint, images, back) == len(images)
        windows.append(f"{start:%Y-%m-%dT%H}")
    runs = [("ogiri_monitor", _trigger(stack, "ogiri_monitor", {"window_start": start})) for start in windows]
    runs.append(("ogiri_label", _trigger(stack, "ogiri_label", {})))
    for dag_id in ("ogiri_monitor", "ogiri_label"):
        stack.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    for dag_id, run_id in runs:
        assert _finished(stack, dag_id, run_id, 600) == "success", dag_id


def _check_page(ui: AirflowUI, page: str) -> dict:
    """Open ``page`` at top level; the charts, images, banners and timings it shows."""
    ui.open(f"/ogiri/{page}")
    wait_for(lambda: ui.driver.execute_script("return document.readyState") == "complete", 30, f"{page} to load")
    text = ui.body_text()
    assert "Traceback" not in text
    assert not ui.driver.find_elements(By.CSS_SELECTOR, ".banner"), f"{page}: {text[:500]}"
    charts = ui.driver.execute_script(CHARTS_JS)
    images = wait_for(lambda: (imgs := ui.driver.execute_script(IMAGES_JS)) is not None
                      and all(i["complete"] for i in imgs) and imgs, 30, "gallery images") if page in GALLERIES else []
    timing = wait_for(lambda: (t := ui.driver.execute_script(TIMING_JS))["full_render_ms"] > 0 and t, 30, "timings")
    ui.screenshot(f"ogiri-{page}")
    return {"charts": charts, "images": images, "timing": timing, "text": text}


def _refused_without_a_session(url: str) -> tuple[int, str, int]:
    """A token-less page request (browser-like) and image request, without following redirects."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    page = urllib.request.Request(f"{url}/ogiri/models", headers={"Accept": "text/html"})
    try:
        opener.open(page, timeout=30)
        page_status, location = 200, ""
    except urllib.error.HTTPError as exc:
        page_status, location = exc.code, exc.headers.get("Location", "")
    try:
        opener.open(f"{url}/ogiri/rejects/2026-01-01", timeout=30)
        data_status = 200
    except urllib.error.HTTPError as exc:
        data_status = exc.code
    return page_status, location, data_status


def test_every_ogiri_page_renders_real_data_in_chromium(tmp_path, postgres_metadata_db, chromium, ui_artifacts):
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    day = (now.date() - timedelta(days=1)).isoformat()
    with LocalEnvironment(tmp_path / "env", n_images=N_IMAGES) as env:
        rows = env.synthetic_rows(tmp_path / "all.csv")
        env.land(now.date() - timedelta(days=1), [*rows, *hostile_rows(env.images.base_url)])
        stack_env = {**env.env, "OGIRI_INGEST_START_DATE": now.isoformat(), "OGIRI_SAGEMAKER_POLL_SECONDS": "2",
                     "OGIRI_LANDING_POKE_S": "2", "OGIRI_LANDING_TIMEOUT_S": "300",
                     "OGIRI_TRAINING_INSTANCE_TYPE": "ml.m5.xlarge", "OGIRI_ENDPOINT_INSTANCE_TYPE": "ml.m5.large"}
        with AirflowStack(tmp_path / "airflow", env=stack_env, sql_alchemy_conn=postgres_metadata_db) as stack:
            _produce_data(stack, day)
            _produce_monitoring_and_labeling_data(stack, env, now)
            refused = _refused_without_a_session(stack.url)
            ui = AirflowUI(chromium, stack.url, artifacts=ui_artifacts)
            ui.login("admin", stack.password)
            seen = {page: _check_page(ui, page) for page in PAGES}
            errors = ui.console_errors()
            # Dark mode: the theme the Airflow UI stored is followed.
            ui.driver.execute_script("localStorage.setItem('theme', 'dark')")
            ui.open("/ogiri/models")
            theme = wait_for(lambda: ui.driver.execute_script("return document.documentElement.dataset.theme"), 10,
                             "the theme")
            ui.screenshot("ogiri-models-dark")
            ui.driver.execute_script("localStorage.setItem('theme', 'light')")
            # Inside Airflow: the "Ogiri" navigation entry frames the pages.
            ui.open("/plugin/ogiri")
            frame = wait_for(lambda: ui.driver.find_elements(By.CSS_SELECTOR, "iframe"), 60, "the Ogiri frame")[0]
            ui.driver.switch_to.frame(frame)
            framed = wait_for(lambda: ui.driver.find_elements(By.CSS_SELECTOR, "svg.chart"), 60, "charts in the frame")
            ui.driver.switch_to.default_content()
            ui.screenshot("ogiri-in-airflow-nav")
            errors += ui.console_errors()
            # Logged out: the browser is sent to the login page.
            ui.driver.delete_all_cookies()
            ui.open("/ogiri/gallery")
            wait_for(lambda: "/auth/login" in ui.driver.current_url, 30, "the login page")
            ui.console_errors()  # the login page's own 401 on /ui/config is Airflow's

    timings = {page: s["timing"] for page, s in seen.items()}
    (ui_artifacts / "timings.json").write_text(json.dumps(timings, indent=1))
    print("\nOgiri page timings (ms):")
    for page, t in timings.items():
        print(f"  {page:8s} first byte {t['first_byte_ms']:7.0f}  full render {t['full_render_ms']:7.0f}"
              f"  server {t['server_ms'] if t['server_ms'] is not None else '-'}")

    assert refused[0] == 303 and "/auth/login" in refused[1], refused
    assert refused[2] == 401, refused
    expected_charts = {"ingest": 2, "dataset": 2, "models": 2, "gallery": 0}
    for page, s in seen.items():
        if page in expected_charts:
            assert len(s["charts"]) == expected_charts[page], (page, s["charts"], s["text"][:800])
        for chart in s["charts"]:
            assert chart["marks"] > 0 and chart["drawn"] == chart["marks"] and chart["width"] > 100, (page, chart)
    # Monitoring: one drift chart per scored feature, each with its threshold line.
    assert seen["monitoring"]["charts"], seen["monitoring"]["text"][:800]
    assert all(c["thresholds"] == 1 for c in seen["monitoring"]["charts"]), seen["monitoring"]["charts"]
    assert "No monitoring windows yet" not in seen["monitoring"]["text"]
    # The shifted window violates: its marks are ringed on the charts and its row says so.
    assert any(c["violations"] for c in seen["monitoring"]["charts"]), seen["monitoring"]["charts"]
    # Labeling: the latest job's analysis (annotations per worker, agreement, time per task at least)
    # and its best/worst gallery, every image loaded through the plugin.
    assert len(seen["labeling"]["charts"]) >= 3, (seen["labeling"]["charts"], seen["labeling"]["text"][:800])
    assert "labeling_failed" not in seen["labeling"]["text"], seen["labeling"]["text"][:2000]
    labeled = seen["labeling"]["images"]
    assert labeled and all(i["width"] > 0 for i in labeled), labeled
    assert all(i["src"].startswith("/ogiri/images/") for i in labeled), labeled
    assert "scheme_not_allowed" in seen["ingest"]["text"] and day in seen["ingest"]["text"]
    assert "★ champion" in seen["models"]["text"] and "deploy" in seen["models"]["text"]
    images = seen["gallery"]["images"]
    assert images and all(i["width"] > 0 for i in images), images
    assert all(i["src"].startswith("/ogiri/images/") for i in images), images
    assert "no model caption yet" not in seen["gallery"]["text"], seen["gallery"]["text"][:800]
    assert theme == "dark"
    assert framed
    assert errors == [], errors
