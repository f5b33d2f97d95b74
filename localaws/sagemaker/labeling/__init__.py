"""SageMaker Ground Truth labeling jobs that really run: custom worker templates, the pre-annotation
and consolidation Lambdas run as Python subprocesses (``localaws.lambdas``), a simulated private
workforce (``workforce.py``, admin API ``/_localaws/workforce``) and Ground Truth's output layout.

* ``models.py``: the job's state, CreateLabelingJob's validation, Describe/List answers;
* ``responses.py``: the API handlers added to moto's ``SageMakerResponse``;
* ``run.py``: the job thread (as the execution role); ``crowd.py`` / ``oracle.py``: the workers;
* ``output.py``: the S3 layout under ``<S3OutputPath>/<job>/``.
"""
