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

# torch.onnx's two paths; auto tries dynamo, then TorchScript. Here, not in a submodule: the CLI's
# and the magics' parsers list them at import without loading the export code.
EXPORTERS = ("auto", "dynamo", "torchscript")


def check_exporter(exporter: str) -> str:
    """``exporter`` if it is one of :data:`EXPORTERS` (ValueError naming the allowed ones otherwise)."""
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter: {exporter!r} is not allowed; allowed: {', '.join(EXPORTERS)}")
    return exporter

__all__ = ["ExportResult", "OnnxModel", "check_parity", "export_run", "export_trial"]

_HOMES = {
    "ExportResult": "automl_nb.export.trial",
    "export_run": "automl_nb.export.trial",
    "export_trial": "automl_nb.export.trial",
    "OnnxModel": "automl_nb.infer.onnx_model",
    "check_parity": "automl_nb.export.parity",
}

__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
