"""SageMaker glue for the training DAG: retry-safe operators, code packaging, image URIs, gate, smoke test,
registry and cost. Modules import boto3/sagemaker lazily so DAG parsing stays light."""
