"""Drift monitoring of the serving endpoint (DAG ``ogiri_monitor``), one hourly capture window per run.

Modules, by phase:

* :mod:`ogiri.monitor.params` — the trigger form (endpoint, thresholds, sample size, window override);
* :mod:`ogiri.monitor.window` — the hour a run checks and where its data and report live in S3;
* :mod:`ogiri.monitor.steps` — resolve the serving model, configure the Processing job running
  ``include/training/monitor.py``;
* :mod:`ogiri.monitor.results` — read ``report.json``: ledger row, CloudWatch metrics, the alert and
  the ``ogiri_drift`` event.

Imports only the core (``ogiri.*``), never a sibling pipeline; nothing touches AWS at import time.
"""
