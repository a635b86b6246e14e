"""A Predictor whose model is an exported ONNX file under ONNX Runtime: numpy, pillow, no torch.

The Predictor's own steps (images in, thresholds, polygons, Azure outputs) run unchanged; only
running the model differs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from automl_nb.errors import SpecError
from automl_nb.infer.outputs import classification_output
from automl_nb.infer.predictor import Predictor
from automl_nb.spec.inference import DESCRIPTION_KEYS, check_settings
from automl_nb.spec.tasks import is_classification

# Settings the graph applies inside: they can be tightened after export, not loosened.
_RAISE_ONLY = ("box_score_threshold",)
_LOWER_ONLY = ("box_detections_per_image",)


class OnnxPredictor(Predictor):
    """:class:`Predictor` over an :class:`~automl_nb.infer.onnx_model.OnnxModel` (build it with
    :meth:`Predictor.from_onnx`)."""

    def _classify(self, images: Sequence[Image.Image]) -> list[dict]:
        return [classification_output(row, self.labels) for row in self.model.classify(images).tolist()]

    def _detect(self, images: Sequence[Image.Image]) -> list[dict[str, np.ndarray]]:
        return [self._keep(self.model.detect(self.model.detection_input(image))) for image in images]


def onnx_predictor(path: str | os.PathLike, *, batch_size: int = 8, threads: int | None = None,
                   **settings: Any) -> OnnxPredictor:
    """The Predictor of an ONNX file written by ``automl-nb export`` (``settings.json`` beside it).

    Args:
        path: the ``.onnx`` file.
        batch_size: images per run of a classifier (a detector takes one image per run).
        threads: ONNX Runtime's threads (default: its own choice).
        **settings: inference settings as for :meth:`Predictor.from_trial`; those the graph
            applies (``min_size``, ``nms_iou_threshold``, the crop size...) are fixed at export, and
            the score threshold can only be raised, the detection cap only lowered.

    Raises:
        AutoMLError: no such file, files missing beside it, or onnxruntime is not installed.
        SpecError: a bad setting, or one that the graph fixed.
    """
    from automl_nb.infer.onnx_model import SETTINGS_FILE, OnnxModel

    model = OnnxModel(path, threads=threads)
    saved = json.loads(Path(path).with_name(SETTINGS_FILE).read_text(encoding="utf-8"))
    task, model_name, labels = (saved[key] for key in DESCRIPTION_KEYS)
    exported = check_settings(task, model_name, {k: v for k, v in saved.items() if k not in DESCRIPTION_KEYS},
                              where="settings.json key")
    given = check_settings(task, model_name, settings)
    for key, value in given.items():
        before = exported.get(key)
        if key in model.preprocessing["fixed_in_graph"] and value != before:
            raise SpecError(f"{key}: {value!r} cannot apply to an ONNX model: its graph was exported with "
                            f"{before!r}; export the trial again with that setting")
        if (key in _RAISE_ONLY and value < before) or (key in _LOWER_ONLY and value > before):
            bound = "at least" if key in _RAISE_ONLY else "at most"
            raise SpecError(f"{key}: {value!r}: the ONNX graph applies {before!r} already; allowed: {bound} {before!r}")
    if exported.get("tile_grid_size") or given.get("tile_grid_size"):
        raise SpecError("tile_grid_size: tiled inference is not supported for ONNX models yet; "
                        "use Predictor.from_trial")
    return OnnxPredictor(model, task, labels, {**exported, **given}, device=None,
                         batch_size=batch_size if is_classification(task) else 1)
