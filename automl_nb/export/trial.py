"""Export a trial's best model to ONNX, with its settings, labels, preprocessing and a parity report."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automl_nb._atomic import atomic_write_json
from automl_nb.errors import AutoMLError, TrialError
from automl_nb.export import check_exporter, layout


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote, which exporter made the graph, and its parity check.

    Attributes:
        path: the ``.onnx`` file; ``settings.json``, ``labels.json``, ``preprocessing.json`` and
            (after a parity check) ``parity.json`` lie beside it.
        task: the model's task.
        exporter: ``dynamo`` or ``torchscript``.
        parity: the parity report (:func:`automl_nb.export.parity.check_parity`), or None when skipped.
    """

    path: Path
    task: str
    exporter: str
    parity: dict | None = field(default=None, repr=False)

    @property
    def passed(self) -> bool | None:
        """The parity check passed (None when it was skipped)."""
        return None if self.parity is None else self.parity["passed"]

    def lines(self) -> list[str]:
        """A few lines for a terminal or a notebook cell."""
        lines = [f"exported {self.task} model to {self.path} ({self.exporter} exporter; onnx.checker passed)"]
        if self.parity is None:
            return lines + ["parity: not checked"]
        p, metric, latency = self.parity, self.parity["metric"], self.parity["latency_ms"]
        verdict = "passed" if p["passed"] else "FAILED (the file is kept; see parity.json beside it)"
        boxes = f"max box diff {p['max_box_diff_px']:.2g} px, " if "max_box_diff_px" in p else ""  # detectors
        lines.append(f"parity {verdict} on {p['images']} validation images: max abs diff {p['max_abs_diff']:.2g}, "
                     f"{boxes}{metric['name']} pytorch {metric['pytorch']:.4f} vs onnxruntime "
                     f"{metric['onnxruntime']:.4f} ({metric['difference_points']:.2f} points)")
        for batch in latency["pytorch"]:
            eager, ort = latency["pytorch"][batch], latency["onnxruntime"][batch]
            lines.append(f"latency at batch {batch}: pytorch {eager:.1f} ms, onnxruntime {ort:.1f} ms "
                         f"({eager / ort:.2f}x)")
        return lines


def export_trial(trial_dir: str | os.PathLike, output: str | os.PathLike | None = None, *,
                 exporter: str = "auto", parity: bool = True, batch_size: int = 1, **timing: Any) -> ExportResult:
    """Export a trial's best model (``model_best.pt``) to ONNX and check it against PyTorch.

    Args:
        trial_dir: the trial folder.
        output: the ``.onnx`` file (default: ``<trial_dir>/onnx/model.onnx``); its folder gets
            ``settings.json``, ``labels.json``, ``preprocessing.json`` and ``parity.json``.
        exporter: ``auto`` (dynamo, else TorchScript; TorchScript for YOLOv5, whose NMS of a
            data-dependent number of boxes dynamo cannot export), ``dynamo`` or ``torchscript``.
        parity: run the parity check on the trial's validation images.
        batch_size: a detector's images per run, fixed in the graph (torchvision's detectors take
            a list of images, which tracing unrolls), with outputs ``boxes_i``, ``labels_i``... per
            image as in Azure's batch export; a classifier's batch is free whatever this says.
        **timing: ``latency_batches`` (default 1 and 8) and ``repeats`` (default 3) of the latency
            measurement (:func:`~automl_nb.export.parity.check_parity`).

    Returns:
        An :class:`ExportResult`; a failed parity check is reported there, not raised.

    Raises:
        TrialError: not a trial folder, or a trial without a trained model.
        AutoMLError: the model cannot be exported, or onnx/onnxruntime are not installed.
        ValueError: an unknown ``exporter``, or a ``batch_size`` that is not an int >= 1.

    Example:
        >>> result = export_trial("runs/shapes/trials/0")
        >>> print("\\n".join(result.lines()))
    """
    import torch

    from automl_nb.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    from automl_nb.export.graphs import ClassifierGraph, DetectorGraph
    from automl_nb.export.onnx_file import write_onnx
    from automl_nb.infer.onnx_model import OnnxModel, detection_keys
    from automl_nb.infer import Predictor
    from automl_nb.spec.inference import settings_json
    from automl_nb.spec.tasks import is_classification

    check_exporter(exporter)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: {batch_size!r} is not allowed; allowed: an int >= 1 (images per run)")
    trial_dir = Path(trial_dir)
    predictor = Predictor.from_trial(trial_dir)  # TrialError for a folder without a trained model
    task, settings = predictor.task, dict(predictor.settings)
    params = _params(trial_dir)
    yolo = params.get("model_name") == "yolov5"
    model_name = _detector_name(params)
    if not yolo and not is_classification(task) and not hasattr(predictor.model, "transform"):
        raise AutoMLError(f"{trial_dir}: ONNX export of {model_name or 'this detector'} is not supported; allowed: "
                          "classifiers and the Faster R-CNN, Mask R-CNN, RetinaNet, SSD and YOLOv5 detectors")
    in_graph = bool(params.get("enable_onnx_normalization")) and is_classification(task)
    batch = 1 if is_classification(task) else batch_size
    steps = layout.preprocessing(task, settings, IMAGENET_MEAN, IMAGENET_STD, in_graph, model_name=model_name,
                                 batch_size=batch, extra_fixed=("image_shape",) if model_name == "ssd" else ())
    if is_classification(task):
        graph = ClassifierGraph(predictor.model, task, IMAGENET_MEAN, IMAGENET_STD, normalise=in_graph)
        crop = settings["validation_crop_size"]
        example = torch.rand(2, 3, crop, crop)  # batch 2: the dynamo exporter fixes an axis seen as 1
    elif yolo:  # the caller letterboxes (as for Azure's YOLOv5 export); decoding and NMS are in the graph
        from automl_nb.data.yolo_transforms import FILL
        from automl_nb.export.graphs import YoloGraph
        from automl_nb.models.yolo import MAX_DETECTIONS

        model = predictor.model
        graph = YoloGraph(model, settings["box_score_threshold"], model.nms_iou_threshold, MAX_DETECTIONS)
        example = torch.rand(batch, 3, model.image_size, model.image_size)
        steps = layout.yolo_preprocessing(settings, model.image_size, FILL, MAX_DETECTIONS, batch)
    else:
        graph = DetectorGraph(predictor.model, detection_keys(task, model_name))
        example = torch.rand(batch, 3, 64, 80)
    path = Path(output) if output is not None else trial_dir / layout.EXPORT_FOLDER / layout.MODEL_FILE
    if path.suffix != ".onnx":
        raise AutoMLError(f"--output {str(path)!r}: not an .onnx file name; allowed: a path ending in .onnx")
    used = write_onnx(graph.eval(), example, path, input_names=layout.input_names(task),
                      output_names=steps["output_names"], dynamic_axes=layout.dynamic_axes(task, model_name, batch),
                      exporter="torchscript" if yolo and exporter == "auto" else exporter)
    model_params = {**params, **settings}
    atomic_write_json(path.with_name(layout.SETTINGS_FILE), settings_json(task, model_params, predictor.labels))
    atomic_write_json(path.with_name(layout.LABELS_FILE), predictor.labels)
    atomic_write_json(path.with_name(layout.PREPROCESSING_FILE), {**steps, "exporter": used})
    report = None
    if parity:
        from automl_nb.export.parity import check_parity
        from automl_nb.train.folder import TrialFolder
        from automl_nb.train.setup import make_adapter

        trial = TrialFolder(trial_dir).trial()
        run_params = {**trial.parameters, "log_validation_loss": False}  # parity needs predictions only
        adapter = make_adapter(trial, run_params, run_params["random_seed"])
        report = check_parity(graph, OnnxModel(path), adapter, in_graph, IMAGENET_MEAN, IMAGENET_STD, **timing)
        atomic_write_json(path.with_name(layout.PARITY_FILE), {"exporter": used, **report})
    return ExportResult(path=path, task=task, exporter=used, parity=report)


def export_run(run: Any, trial_id: str | int | None = None, output: str | os.PathLike | None = None,
               **options: Any) -> ExportResult:
    """Export a run's trial (the best by default); see :func:`export_trial` for ``options``.

    Args:
        run: a :class:`~automl_nb.sweep.Run` or a run folder.
        trial_id: the trial (default: the one with the best primary metric).
        output: the ``.onnx`` file (default: ``<trial folder>/onnx/model.onnx``).

    Raises:
        TrialError: no such trial, no trial with a metric yet, or a trial without a trained model.
    """
    from automl_nb.sweep import Run

    run = run if isinstance(run, Run) else Run(run)
    if trial_id is None:
        best = run.best_trial
        if best is None:
            raise TrialError(f"{run.folder}: no trial has a trained model yet ({run.status}); "
                             "wait for a trial's first evaluation")
        trial_id = best.trial_id
    known = [record.trial_id for record in run.trials()]
    if str(trial_id) not in known:
        raise TrialError(f"trial {trial_id!r}: no such trial in {run.folder}; allowed: {', '.join(known) or 'none yet'}")
    folder = run.store.trial_folder(str(trial_id))
    from automl_nb.train.folder import TrialFolder

    if not TrialFolder(folder).has_best_model():
        raise TrialError(f"trial {trial_id}: no trained model yet (no model_best.pt in {folder}); "
                         "a trial writes it at its first evaluation")
    result = export_trial(folder, output, **options)
    if output is None:  # in the trial's folder: a run on a URL keeps it there too, for every machine
        run.store.upload((Path(folder) / layout.EXPORT_FOLDER).relative_to(run.store.folder).as_posix())
    return result


def _detector_name(params: dict) -> str | None:
    """The model's name: ``ssd`` for SageMaker's SSD (whose params also carry the default ``model_name``)."""
    from automl_nb.spec import uses_sagemaker_ssd

    return "ssd" if uses_sagemaker_ssd(params) else params.get("model_name")


def _params(trial_dir: Path) -> dict:
    """The trial's resolved training parameters: params.json, else the checkpoint's."""
    from automl_nb.train.folder import BEST_CHECKPOINT, TrialFolder

    folder = TrialFolder(trial_dir)
    if folder.has("params.json"):
        return folder.params()
    return folder.load_checkpoint(BEST_CHECKPOINT)["params"]
