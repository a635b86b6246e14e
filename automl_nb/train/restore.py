"""Rebuild a trained model from a trial folder, and score it again."""

from __future__ import annotations

from pathlib import Path

import torch

from automl_nb.models.detection import detector_from_params
from automl_nb.models.registry import build_model
from automl_nb.spec.tasks import is_classification
from automl_nb.train.evaluate import evaluate_model
from automl_nb.train.folder import BEST_CHECKPOINT, TrialFolder
from automl_nb.train.setup import make_adapter


def load_best_model(trial_dir: str | Path, device: str | torch.device = "cpu",
                    **model_options) -> tuple[torch.nn.Module, dict]:
    """The model saved at the trial's best epoch, in eval mode, and its checkpoint record.

    The record holds ``task``, ``labels``, ``params`` (resolved training parameters), ``epoch``
    and ``metric``. See :func:`rebuild_model` for how the model is rebuilt.

    Args:
        trial_dir: the trial folder holding ``model_best.pt``.
        device: where to load the weights and put the model.
        **model_options: detector options that replace the trained ones (inference settings,
            e.g. ``box_score_threshold=0.5``); none for a classifier.

    Raises:
        ValueError: ``model_options`` for a classifier, or an unknown detector option.

    Example:
        >>> model, record = load_best_model("outputs/trial_0", box_score_threshold=0.5)
    """
    state = TrialFolder(trial_dir).load_checkpoint(BEST_CHECKPOINT, device)
    return rebuild_model(state, device, **model_options)


def rebuild_model(state: dict, device: str | torch.device = "cpu", **model_options) -> tuple[torch.nn.Module, dict]:
    """The model of a loaded checkpoint, in eval mode, and the checkpoint's other entries.

    A detector is rebuilt by :func:`~automl_nb.models.detection.detector_from_params`: with the
    options it was trained with, or ``model_options`` in their place, and the batch norm kind
    of its run, so the state dict fits.

    Args:
        state: a checkpoint: ``model`` (state dict), ``task``, ``params``, ``labels``...
        device: where to put the model.
        **model_options: detector options that replace the trained ones; none for a classifier.

    Raises:
        ValueError: ``model_options`` for a classifier, or an unknown detector option.
    """
    params = state["params"]
    num_classes = len(state["labels"])
    if is_classification(state["task"]):
        if model_options:
            raise ValueError(f"options {sorted(model_options)} apply only to detectors, not to a classifier")
        model = build_model(params["model_name"], num_classes=num_classes, pretrained=False,
                            crop_size=params.get("training_crop_size"))
    else:
        model = detector_from_params(params, num_classes, pretrained=False, **model_options)
    model.load_state_dict(state["model"])
    record = {k: v for k, v in state.items() if k != "model"}
    return model.to(device).eval(), record


def rescore(trial_dir: str | Path) -> dict:
    """Evaluate the best checkpoint on the trial's validation data again.

    Rebuilds the trial's split from params.json (same seed, same split), so the result
    equals the metric recorded at the best epoch.
    """
    trial = TrialFolder(trial_dir).trial()
    params = dict(trial.parameters)
    model, _ = load_best_model(trial_dir)
    adapter = make_adapter(trial, params, params["random_seed"])
    loader = torch.utils.data.DataLoader(adapter.valid_dataset, batch_size=params["validation_batch_size"],
                                         collate_fn=adapter.collate)
    _, scores = evaluate_model(model, loader, adapter, torch.device("cpu"))
    return scores
