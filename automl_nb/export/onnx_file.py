"""Write a module as an ONNX file with torch's exporter, and check it with ``onnx.checker``."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import torch

from automl_nb._atomic import atomic_write_bytes
from automl_nb.errors import AutoMLError
from automl_nb.export import check_exporter
from automl_nb.infer.onnx_model import require

OPSET = 18


def write_onnx(module: torch.nn.Module, example: torch.Tensor, path: str | os.PathLike, *,
               input_names: Sequence[str], output_names: Sequence[str],
               dynamic_axes: Mapping[str, Mapping[int, str]], exporter: str = "auto") -> str:
    """Export ``module`` (eval mode) to ``path`` atomically and check the file; return the exporter used.

    ``auto`` tries the dynamo exporter (``torch.onnx.export(dynamo=True)``, torch's maintained
    path) and falls back to the TorchScript one (``dynamo=False``) when it fails, e.g. on a
    detector's data-dependent shapes.

    Args:
        module: what to export; it is put in eval mode.
        example: one input of the right shape.
        path: the ``.onnx`` file to write.
        input_names, output_names: the graph's names.
        dynamic_axes: ``{input or output name: {axis: name}}``, the axes left free.
        exporter: ``auto``, ``dynamo`` or ``torchscript``.

    Returns:
        ``dynamo`` or ``torchscript``.

    Raises:
        AutoMLError: neither exporter could export the module, or the checker refused the file.
    """
    check_exporter(exporter)
    onnx = require("onnx")
    module = module.eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tried = ["dynamo", "torchscript"] if exporter == "auto" else [exporter]
    errors = []
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as folder:
        scratch = Path(folder) / path.name
        for name in tried:
            try:
                _export(name, module, example, scratch, input_names, output_names, dynamic_axes)
                break
            except Exception as error:  # each exporter raises its own kinds on an unsupported model
                errors.append(f"{name}: {type(error).__name__}: {str(error).strip().splitlines()[0][:200]}")
        else:
            raise AutoMLError(f"{path}: ONNX export failed ({'; '.join(errors)})")
        try:
            onnx.checker.check_model(str(scratch))
        except onnx.checker.ValidationError as error:
            raise AutoMLError(f"{path}: the exported graph fails onnx.checker: {error}") from None
        atomic_write_bytes(path, scratch.read_bytes())
    return name


def _export(name: str, module, example, path: Path, input_names, output_names, dynamic_axes) -> None:
    common = dict(input_names=list(input_names), output_names=list(output_names), opset_version=OPSET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporters warn about tracing details the checks below cover
        if name == "torchscript":
            torch.onnx.export(module, (example,), str(path), dynamo=False, dynamic_axes=dict(dynamic_axes),
                              **common)
            return
        require("onnxscript")  # the dynamo exporter's translator
        shapes = ({axis: torch.export.Dim(axis_name, min=1) for axis, axis_name in
                   dynamic_axes.get(input_names[0], {}).items()},)
        with contextlib.redirect_stdout(io.StringIO()):  # its progress lines would flood a notebook cell
            torch.onnx.export(module, (example,), str(path), dynamo=True, dynamic_shapes=shapes,
                              external_data=False, **common)
