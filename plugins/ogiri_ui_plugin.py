"""Airflow plugin "Ogiri": the read-only Ogiri pages (ingest, dataset, models, gallery, monitoring, labeling).

The FastAPI app of :mod:`ogiri.ui.app` is mounted on the API server at ``/ogiri``; an ``external_views``
entry puts "Ogiri" in the navigation, and a DAG-level entry adds an "Ogiri" tab to every DAG page that
opens the page showing that DAG's results (``ogiri_train`` → Models, ``ogiri_ingest`` → Ingest,
``ogiri_batch_caption`` → Gallery, ``ogiri_monitor`` → Monitoring,
``ogiri_label`` → Labeling). The hrefs are relative (no leading slash): the UI resolves them
against its ``<base href>``, so they keep working when Airflow is served under a path prefix.
Building the app reads nothing: no AWS or ledger call at import.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from ogiri.ui.app import MOUNT, create_app


class OgiriUIPlugin(AirflowPlugin):
    """The Ogiri pages, their navigation entry and the DAG tab."""

    name = "ogiri_ui"
    fastapi_apps = [{"app": create_app(), "url_prefix": MOUNT, "name": "Ogiri pages"}]
    external_views = [
        {"name": "Ogiri", "href": f"{MOUNT.lstrip('/')}/ingest", "url_route": "ogiri", "destination": "nav",
         "nav_top_level": True, "icon": None},
        {"name": "Ogiri", "href": f"{MOUNT.lstrip('/')}/dag/{{DAG_ID}}", "url_route": "ogiri_dag", "destination": "dag"},
    ]
