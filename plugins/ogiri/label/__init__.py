"""People in the loop: Ground Truth labeling jobs that write and rate captions (DAG ``ogiri_label``).

* :mod:`ogiri.label.params` — the trigger form;
* :mod:`ogiri.label.layout` — the job name and the S3 layout of a job;
* :mod:`ogiri.label.selection` — which images / captions go to people;
* :mod:`ogiri.label.request` — input manifest, worker template and the ``CreateLabelingJob`` request;
* :mod:`ogiri.label.operators` — the re-attaching, deferrable labeling job operator;
* :mod:`ogiri.label.answers` — worker answers → validated labels and rejects;
* :mod:`ogiri.label.ingest` — labels → DynamoDB caption items and ratings;
* :mod:`ogiri.label.report` — the analysis (``summary.json`` and SVG pictures);
* :mod:`ogiri.label.tasks` — what each task of the DAG does, on a :class:`~ogiri.runs.Run`.

Nothing here touches AWS at import time.
"""
