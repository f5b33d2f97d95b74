"""Ogiri captioner: a CNN encoder + LSTM/Transformer decoder for Japanese image captions.

Runs unchanged in SageMaker's PyTorch containers (script mode training, processing, serving) and
locally on the CPU. Never imports Airflow, ``ogiri`` (plugins) or ``localaws``.
"""

__version__ = "1.0.0"
