"""Ogiri MLOps: the importable logic behind the DAGs (config, naming, ledger, ingestion, SageMaker glue)."""
