"""Bulk captioning with SageMaker batch transform (DAG ``ogiri_batch_caption``).

Modules, from input to ledger:

* :mod:`ogiri.batch.layout` — S3 layout of a run and deterministic transform job names;
* :mod:`ogiri.batch.planning` — sources (prefixes, manifest) → input sets → JSON Lines request
  files and transform job configs; :mod:`ogiri.batch.sources` — the images ingested on a day;
* :mod:`ogiri.batch.operators` — the retry-safe, deferrable transform operator;
* :mod:`ogiri.batch.results` — ``.out`` files → caption rows and per-item failures, the run's
  ``captions.jsonl``, ledger rows and the run summary;
* :mod:`ogiri.batch.tasks` — what each task of the DAG does, over boto3 clients and a ledger.

Nothing here imports torch or touches AWS at import time.
"""
