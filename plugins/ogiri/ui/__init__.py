"""The Ogiri pages in the Airflow UI: a read-only FastAPI app (``ogiri.ui.app``) with server-rendered
HTML and SVG charts over what the pipelines write (ledger, S3, the caption table).

A reader layer: it may import the core and the pipelines' layout helpers, and nothing imports it
except the plugin entry module ``plugins/ogiri_ui_plugin.py``.
"""
