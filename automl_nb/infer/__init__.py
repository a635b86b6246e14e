"""Inference: a trained trial's model on new images, with Azure-shaped outputs (SPEC section 9).

    >>> from automl_nb.infer import Predictor
    >>> predictor = Predictor.from_trial("outputs/trial_0", box_score_threshold=0.5)
    >>> predictor.predict(["street.jpg"])
    [{'boxes': [{'box': {'topX': 0.1, 'topY': 0.4, 'bottomX': 0.3, 'bottomY': 0.8}, 'label': 'car', 'score': 0.93}]}]
"""

from automl_nb.infer.polygons import mask_to_polygons
from automl_nb.infer.predictor import Predictor
from automl_nb.spec.inference import AZURE_NAMES, check_settings, inference_keys, inference_settings

__all__ = ["AZURE_NAMES", "Predictor", "check_settings", "inference_keys", "inference_settings", "mask_to_polygons"]
