"""Azure's scoring requests, with explanations where asked (SPEC sections 9 and 10).

:func:`score_request` answers a request with a :class:`~automl_nb.infer.Predictor`; it
lives here, above ``infer/``, because an entry may ask for explanations.

A request with ``model_explainability: true`` adds to each classification result:

- ``visualizations``: the 2x2 figure as a base64 PNG (when ``xai_parameters.visualizations``);
- ``attributions``: nested lists ``[3, valid_crop_size, valid_crop_size]`` (when
  ``xai_parameters.attributions``);

one of each for multiclass (the predicted class); for multilabel a list with one per label
whose probability reaches ``confidence_score_threshold_multilabel`` (0.5), empty when none does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import torch.nn as nn

from automl_nb.errors import SpecError
from automl_nb.infer.request import parse_request
from automl_nb.spec.explain import ALGORITHM_KEYS, XAI_PARAMETERS, check_xai_parameters
from automl_nb.spec.inference import AZURE_NAMES
from automl_nb.spec.tasks import MULTILABEL, is_classification

if TYPE_CHECKING:
    from automl_nb.infer.predictor import Predictor

_SIZES = ("validation_resize_size", "validation_crop_size")
_THRESHOLD = "confidence_score_threshold_multilabel"


def score_request(predictor: Predictor, request: str | bytes | Mapping[str, Any]) -> list[dict]:
    """Answer an Azure scoring request (SPEC section 9), one output per image in order.

    Args:
        predictor: the model and its inference settings.
        request: ``{"input_data": {"columns": ["image"], "data": [...]}}`` as JSON text or
            parsed; each entry a base64 image, or a JSON string with ``image_base64``,
            ``model_explainability`` and ``xai_parameters``.

    Returns:
        What ``predictor.predict`` returns for the decoded images; an entry that asked for
        explanations also has ``visualizations`` and/or ``attributions`` (see
        :func:`explain_for_request`).

    Raises:
        DataError: a malformed request or image (names the entry).
        SpecError: explanations asked of a detector (they are for classifiers only), or bad
            ``xai_parameters`` (names the key).

    Example:
        >>> score_request(predictor, {"input_data": {"columns": ["image"], "data": [b64_png]}})
        [{'probs': [0.97, 0.03], 'labels': ['cat', 'dog']}]
    """
    items = parse_request(request)
    explained = [i for i, item in enumerate(items) if item.explain]
    if explained and not is_classification(predictor.task):
        raise SpecError(f"input_data.data[{explained[0]}].model_explainability: true, but explanations are for "
                        f"classification models only; this model is {predictor.task}")
    for i in explained:  # every request's settings are checked before any work
        check_xai_parameters(items[i].xai_parameters, predictor.task)
    results = predictor.predict([item.image for item in items])
    for i in explained:
        results[i].update(explain_for_request(predictor.model, items[i].image, predictor.labels, predictor.task,
                                              predictor.settings, items[i].xai_parameters))
    return results


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
