"""The explanation fields of a scoring response (SPEC sections 9 and 10).

A request with ``model_explainability: true`` adds to each classification result:

- ``visualizations``: the 2x2 figure as a base64 PNG (when ``xai_parameters.visualizations``);
- ``attributions``: nested lists ``[3, valid_crop_size, valid_crop_size]`` (when
  ``xai_parameters.attributions``);

one of each for multiclass (the predicted class); for multilabel a list with one per label
whose probability reaches ``confidence_score_threshold_multilabel`` (0.5), empty when none does.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch.nn as nn

from automl_nb.spec.explain import ALGORITHM_KEYS, XAI_PARAMETERS, check_xai_parameters
from automl_nb.spec.inference import AZURE_NAMES
from automl_nb.spec.tasks import MULTILABEL

_SIZES = ("validation_resize_size", "validation_crop_size")
_THRESHOLD = "confidence_score_threshold_multilabel"


def explain_for_request(model: nn.Module, image: Any, labels: Sequence[str], task: str,
                        params: Mapping[str, Any], xai_parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    """The extra response fields of one image of a request with ``model_explainability: true``.

    Validates ``xai_parameters`` before any work, then explains the predicted class (or labels).

    Args:
        model: the classifier (eval mode; on any device). Gradients are enabled inside, so call
            this outside ``torch.inference_mode()``.
        image: the request's image: a PIL image, encoded bytes, or a path.
        labels: class names in the model's output order.
        task: ``image_classification`` or ``image_classification_multilabel``.
        params: the resolved training parameters or inference settings; read for
            ``validation_resize_size`` and ``validation_crop_size`` (or Azure's ``valid_resize_size``,
            ``valid_crop_size``).
        xai_parameters: the request's ``xai_parameters`` (None: every default).

    Returns:
        ``{"visualizations": ..., "attributions": ...}`` with the keys asked for (possibly none).
        Multiclass: a base64 PNG string and a ``[3, crop, crop]`` nested list; multilabel: a list
        of those, one per label scoring >= the threshold, in label order.

    Raises:
        SpecError: a bad ``xai_parameters`` (names the key, the value and what is allowed), or
            a task that is not classification.
        ValueError: ``params`` without the crop sizes.
        DataError: an unreadable image.

    Example:
        >>> fields = explain_for_request(model, image, ["cat", "dog"], "image_classification",
        ...                              {"validation_resize_size": 256, "validation_crop_size": 224},
        ...                              {"xai_algorithm": "guided_gradcam", "attributions": True})
        >>> sorted(fields), len(fields["attributions"])
        (['attributions', 'visualizations'], 3)
    """
    from automl_nb.explain.explainer import Explainer

    settings = check_xai_parameters(xai_parameters, task)
    sizes = _crop_sizes(params)
    method = settings["xai_algorithm"]
    method_settings = {key: settings[key] for key in ALGORITHM_KEYS[method]}
    if not (settings["visualizations"] or settings["attributions"]):
        return {}
    explainer = Explainer(model, labels, task, resize_size=sizes[0], crop_size=sizes[1])
    threshold = settings.get(_THRESHOLD, XAI_PARAMETERS[_THRESHOLD].default)
    explanations = explainer.explain_predicted(image, method, threshold=threshold, **method_settings)
    fields: dict[str, Any] = {}
    if settings["visualizations"]:
        fields["visualizations"] = [item.to_base64() for item in explanations]
    if settings["attributions"]:
        fields["attributions"] = [item.attributions.tolist() for item in explanations]
    if task != MULTILABEL:
        fields = {key: values[0] for key, values in fields.items()}
    return fields


def _crop_sizes(params: Mapping[str, Any]) -> tuple[int, int]:
    ours = {AZURE_NAMES.get(key, key): value for key, value in params.items()}
    missing = [key for key in _SIZES if ours.get(key) is None]
    if missing:
        raise ValueError(f"params: {', '.join(missing)} missing; give the model's resolved training "
                         f"parameters or inference settings")
    return int(ours[_SIZES[0]]), int(ours[_SIZES[1]])
