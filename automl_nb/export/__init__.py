"""ONNX export of a trial's model, a parity check against PyTorch, and ONNX Runtime inference.

    >>> from automl_nb.export import export_trial
    >>> result = export_trial("runs/shapes/trials/0")  # -> trials/0/onnx/model.onnx + settings, labels, parity
    >>> result.passed
    True

onnx and onnxruntime are optional (``pip install 'automl_nb[export]'``) and imported at use; the
layout of the files is in docs/export.md.
"""

from __future__ import annotations

from automl_nb.lazy_exports import lazy_exports

__all__ = ["ExportResult", "OnnxModel", "check_parity", "export_run", "export_trial"]

_HOMES = {
    "ExportResult": "automl_nb.export.trial",
    "export_run": "automl_nb.export.trial",
    "export_trial": "automl_nb.export.trial",
    "OnnxModel": "automl_nb.infer.onnx_model",
    "check_parity": "automl_nb.export.parity",
}

__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
