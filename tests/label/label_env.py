"""Constants shared by the labeling tests."""

from pathlib import Path

BUCKET = "ogiri-mlops"
TABLE = "ogiri-captions"
LAMBDAS = Path(__file__).resolve().parents[2] / "include" / "labeling"
