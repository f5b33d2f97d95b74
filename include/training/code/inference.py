"""SageMaker PyTorch serving entry point, packed into ``model.tar.gz`` as ``code/inference.py``.

The ``ogiri_captioner`` package sits beside this file (``code/ogiri_captioner``); the model server
puts ``code/`` on ``sys.path``. See ``ogiri_captioner.serving`` for the request/response formats.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
if not os.path.isdir(os.path.join(_HERE, "ogiri_captioner")):  # source tree: the package is one level up
    sys.path.append(os.path.dirname(_HERE))

from ogiri_captioner.serving import input_fn, model_fn, output_fn, predict_fn  # noqa: E402

__all__ = ["input_fn", "model_fn", "output_fn", "predict_fn"]
