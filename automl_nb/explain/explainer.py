"""The Python API of explanations: an :class:`Explainer` around a classifier, :class:`Explanation` results.

    >>> from automl_nb.explain import explain
    >>> result = explain("outputs/trial_0", "cat.jpg", method="integrated_gradients", n_steps=20)
    >>> result.label, result.score, result.attributions.shape
    ('cat', 0.97, (3, 224, 224))
    >>> result                       # a notebook shows the 2x2 figure
    >>> result.figure()              # the same as a matplotlib Figure
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from automl_nb.errors import SpecError
from automl_nb.explain import visualise
from automl_nb.spec.explain import XAI_PARAMETERS, check_method_parameters
from automl_nb.spec.table import PARAMETERS
from automl_nb.spec.tasks import CLASSIFICATION_TASKS, MULTILABEL, check_task

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_METHOD = XAI_PARAMETERS["xai_algorithm"].default
DEFAULT_THRESHOLD = XAI_PARAMETERS["confidence_score_threshold_multilabel"].default
# The validation transform's sizes when none are given: the table's classification defaults.
DEFAULT_RESIZE_SIZE = PARAMETERS["validation_resize_size"].default
DEFAULT_CROP_SIZE = PARAMETERS["validation_crop_size"].default


@dataclass(frozen=True, eq=False)
class Explanation:
    """One attribution map of one image for one class, and its pictures.

    Attributes:
        image: the cropped input the model saw, ``[crop, crop, 3]`` RGB floats in [0, 1].
        attributions: ``[3, crop, crop]`` float32 (SPEC section 10's shape).
        method: the attribution method.
        label: the explained class's name; ``label_index`` its output index.
        score: the model's probability for that class (softmax, or sigmoid for multilabel).
        settings: the method's settings as used (``n_steps``...).
    """

    image: np.ndarray
    attributions: np.ndarray
    method: str
    label: str
    label_index: int
    score: float
    settings: Mapping[str, Any] = field(default_factory=dict)

    def importance(self) -> np.ndarray:
        """Per-pixel importance ``[crop, crop]`` (see :mod:`automl_nb.explain.visualise`)."""
        return visualise.importance(self.attributions, self.method)

    def top_mask(self, fraction: float = visualise.TOP_FRACTION) -> np.ndarray:
        """Boolean ``[crop, crop]`` mask of the ``fraction`` most important pixels."""
        return visualise.top_mask(self.attributions, self.method, fraction)

    def panels(self) -> dict[str, np.ndarray]:
        """The four panels of the figure as arrays (``input``, ``heatmap``, ``blend``, ``masked``)."""
        return visualise.panels(self.image, self.attributions, self.method)

    def figure(self, size_inches: float = 7.0) -> "Figure":
        """The 2x2 figure of SPEC section 10 (a notebook shows a returned Figure inline)."""
        title = f"{self.method} for {self.label!r} (score {self.score:.2f})"
        return visualise.figure(self.image, self.attributions, self.method, title, size_inches)

    def to_png(self, dpi: int = 100) -> bytes:
        """The figure as PNG bytes."""
        return visualise.to_png(self.figure(), dpi)

    def to_base64(self, dpi: int = 100) -> str:
        """The figure as a base64 PNG string, as scoring responses carry it."""
        return visualise.to_base64(self.to_png(dpi))

    def _repr_png_(self) -> bytes:
        return self.to_png()

    def __repr__(self) -> str:
        size = "x".join(str(n) for n in self.attributions.shape)
        return f"Explanation(method={self.method!r}, label={self.label!r}, score={self.score:.3f}, attributions={size})"


class Explainer:
    """A classifier, its labels and validation transform: explains images one class at a time.

    Build one with :meth:`from_trial` (a trained trial folder) or :meth:`from_predictor`; the
    constructor takes the parts directly. The model is put in eval mode.

    Args:
        model: a classifier, ``model([B, 3, crop, crop]) -> [B, classes]`` logits.
        labels: class names in output order.
        task: ``image_classification`` or ``image_classification_multilabel``.
        resize_size: ``valid_resize_size``: the short side before the centre crop.
        crop_size: ``valid_crop_size``: the square the model sees and attributions cover.
        batch_size: path points per forward pass in integrated gradients and XRAI.

    Raises:
        SpecError: a task that is not classification.
        ValueError: no labels, or sizes that are not positive ints.

    Example:
        >>> explainer = Explainer.from_trial("outputs/trial_0")
        >>> explainer.explain("cat.jpg", "guided_gradcam").figure()
    """

    def __init__(self, model: nn.Module, labels: Sequence[str], task: str, *,
                 resize_size: int = DEFAULT_RESIZE_SIZE, crop_size: int = DEFAULT_CROP_SIZE,
                 batch_size: int = 16) -> None:
        task = check_task(task)
        if task not in CLASSIFICATION_TASKS:
            raise SpecError(f"task: explanations are for classification only, not {task!r}; "
                            f"allowed: {', '.join(CLASSIFICATION_TASKS)}")
        if not labels:
            raise ValueError("labels: empty; give the class names in the model's output order")
        for name, value in (("resize_size", resize_size), ("crop_size", crop_size), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: {value!r} is not an int >= 1")
        self.model = model.eval()
        self.labels = list(labels)
        self.task = task
        self.resize_size = resize_size
        self.crop_size = crop_size
        self.batch_size = batch_size

    @classmethod
    def from_predictor(cls, predictor: Any, batch_size: int = 16) -> "Explainer":
        """The explainer of a classification :class:`automl_nb.infer.Predictor` (same model and settings)."""
        settings = predictor.settings
        return cls(predictor.model, predictor.labels, predictor.task, resize_size=settings["validation_resize_size"],
                   crop_size=settings["validation_crop_size"], batch_size=batch_size)

    @classmethod
    def from_trial(cls, trial_dir: str | os.PathLike, device: str | torch.device = "cpu",
                   batch_size: int = 16, **settings: Any) -> "Explainer":
        """The best model of a trial folder, with its inference settings (see ``Predictor.from_trial``).

        Raises:
            TrialError: not a trial folder with a trained model.
            SpecError: a bad inference setting, or a model that is not a classifier.
        """
        from automl_nb.infer.predictor import Predictor

        return cls.from_predictor(Predictor.from_trial(trial_dir, device, **settings), batch_size)

    # ----- images -------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        parameter = next(self.model.parameters(), None)
        return parameter.device if parameter is not None else torch.device("cpu")

    def preprocess(self, image: Any) -> tuple[torch.Tensor, np.ndarray]:
        """The validation transform of an image: ``([1, 3, crop, crop]`` normalised, ``[crop, crop, 3]`` RGB)."""
        from automl_nb.data.transforms import IMAGENET_MEAN, IMAGENET_STD, classification_valid_transform

        tensor = classification_valid_transform(self.resize_size, self.crop_size)(_as_pil(image))
        mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
        rgb = (tensor * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()
        return tensor[None].to(self.device), rgb

    @torch.no_grad()
    def probabilities(self, inputs: torch.Tensor) -> np.ndarray:
        """Class probabilities of one preprocessed image (softmax; sigmoid for multilabel)."""
        logits = self.model(inputs).float()[0]
        probs = torch.sigmoid(logits) if self.task == MULTILABEL else torch.softmax(logits, dim=0)
        return probs.cpu().numpy()

    # ----- explanations -------------------------------------------------------------------
    def explain(self, image: Any, method: str = DEFAULT_METHOD, label: str | int | None = None,
                **settings: Any) -> Explanation:
        """Explain one class of one image.

        Args:
            image: a PIL image, a path or fsspec URL, or encoded image bytes.
            method: ``xrai``, ``integrated_gradients``, ``guided_gradcam`` or ``guided_backprop``.
            label: the class to explain, by name or index (None: the highest-scoring class).
            **settings: the method's settings (``n_steps``, ``xrai_fast``,
                ``approximation_method``); the rest take their defaults.

        Returns:
            An :class:`Explanation`.

        Raises:
            SpecError: an unknown method or setting, a setting of another method, or a bad value.
            ValueError: an unknown label.
            DataError: an unreadable image.
        """
        method, resolved = check_method_parameters(method, settings, self.task, where="")
        inputs, rgb = self.preprocess(image)
        probs = self.probabilities(inputs)
        index = int(np.argmax(probs)) if label is None else self._label_index(label)
        return self._explain(inputs, rgb, probs, index, method, resolved)

    def explain_predicted(self, image: Any, method: str = DEFAULT_METHOD, threshold: float = DEFAULT_THRESHOLD,
                          **settings: Any) -> list[Explanation]:
        """Explain what the model predicts: the top class (multiclass), or each label scoring >= threshold
        (multilabel; possibly none), in output order.

        Args and raises as for :meth:`explain`; ``threshold`` applies to multilabel only.
        """
        method, resolved = check_method_parameters(method, settings, self.task, where="")
        inputs, rgb = self.preprocess(image)
        probs = self.probabilities(inputs)
        indices = [int(i) for i in np.flatnonzero(probs >= threshold)] if self.task == MULTILABEL \
            else [int(np.argmax(probs))]
        return [self._explain(inputs, rgb, probs, index, method, resolved) for index in indices]

    def _explain(self, inputs: torch.Tensor, rgb: np.ndarray, probs: np.ndarray, index: int, method: str,
                 settings: dict[str, Any]) -> Explanation:
        from automl_nb.explain.attributions import attribute

        attributions = attribute(self.model, inputs, index, method, settings, image=rgb, batch_size=self.batch_size)
        return Explanation(image=rgb, attributions=attributions.numpy().astype(np.float32), method=method,
                           label=self.labels[index], label_index=index, score=float(probs[index]),
                           settings=dict(settings))

    def _label_index(self, label: str | int) -> int:
        if isinstance(label, (int, np.integer)) and not isinstance(label, bool) and 0 <= label < len(self.labels):
            return int(label)
        if isinstance(label, str) and label in self.labels:
            return self.labels.index(label)
        raise ValueError(f"label: {label!r} is not a class of this model; allowed: {', '.join(self.labels)} "
                         f"or an index 0..{len(self.labels) - 1}")


def explain(model_or_trial_dir: nn.Module | str | os.PathLike, image: Any, method: str = DEFAULT_METHOD,
            label: str | int | None = None, *, labels: Sequence[str] | None = None, task: str | None = None,
            resize_size: int = DEFAULT_RESIZE_SIZE, crop_size: int = DEFAULT_CROP_SIZE,
            device: str | torch.device = "cpu",
            **settings: Any) -> Explanation:
    """Explain one class of one image with a trained trial or a model.

    Args:
        model_or_trial_dir: a trial folder (its best model and inference settings are used), or
            a classifier, which then needs ``labels`` and ``task`` (and its crop sizes).
        image: a PIL image, a path or fsspec URL, or encoded image bytes.
        method: ``xrai`` (default), ``integrated_gradients``, ``guided_gradcam`` or ``guided_backprop``.
        label: the class to explain, by name or index (None: the highest-scoring class).
        labels, task, resize_size, crop_size: for a model given directly.
        device: where a trial's model is loaded.
        **settings: the method's settings: ``n_steps``, ``xrai_fast``, ``approximation_method``.

    Returns:
        An :class:`Explanation`: ``.attributions``, ``.figure()``, ``.to_base64()``; a notebook
        shows it as the 2x2 figure.

    Raises:
        SpecError: an unknown method or setting, or a bad value (names the key, value and what is allowed).
        TrialError: not a trial folder with a trained model.
        ValueError: a model without ``labels`` and ``task``, or an unknown label.

    Example:
        >>> explain("outputs/trial_0", "cat.jpg", method="xrai", n_steps=30, xrai_fast=False)
        Explanation(method='xrai', label='cat', score=0.970, attributions=3x224x224)
    """
    if isinstance(model_or_trial_dir, nn.Module):
        if labels is None or task is None:
            raise ValueError("labels and task: give both with a model (or pass a trial folder instead)")
        explainer = Explainer(model_or_trial_dir, labels, task, resize_size=resize_size, crop_size=crop_size)
    else:
        explainer = Explainer.from_trial(model_or_trial_dir, device)
    return explainer.explain(image, method, label, **settings)


def _as_pil(image: Any) -> Image.Image:
    """An RGB PIL image from a PIL image, a path or URL, or encoded bytes."""
    import io

    from automl_nb.data.images import open_image
    from automl_nb.errors import DataError

    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    if isinstance(image, (str, os.PathLike)):
        return open_image(image)
    if isinstance(image, (bytes, bytearray, memoryview)):
        try:
            with Image.open(io.BytesIO(bytes(image))) as opened:
                return opened.convert("RGB")
        except Exception as error:  # PIL raises OSError, SyntaxError, ValueError... on bad data
            raise DataError(f"cannot read image (bytes): {error}") from error
    raise DataError(f"image: a {type(image).__name__} is not an image; allowed: a PIL image, a path or URL, "
                    f"or encoded image bytes")
