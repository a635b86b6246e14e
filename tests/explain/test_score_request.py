"""score_request: Azure's scoring request answered like predict, with explanations where asked."""

import base64
import json

import numpy as np
import pytest

from automl_nb.errors import SpecError
from automl_nb.explain import score_request
from automl_nb.infer import Predictor
from automl_nb.testing import png_bytes, scoring_request

CLASSES = ["circle", "square"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Constant:
    """A classifier whose logits depend on the mean of the image, so different images differ."""

    def __call__(self, batch):
        import torch

        mean = batch.mean(dim=(1, 2, 3))
        return torch.stack([mean, -mean], dim=1)

    def eval(self):
        return self

    def to(self, device):
        return self


def _predictor(task="image_classification"):
    settings = {"validation_resize_size": 32, "validation_crop_size": 32}
    return Predictor(Constant(), task, CLASSES, settings)


def test_score_answers_like_predict_on_the_decoded_images():
    predictor = _predictor()
    pngs = [png_bytes(1), png_bytes(2)]
    scored = score_request(predictor, scoring_request(_b64(pngs[0]), json.dumps({"image_base64": _b64(pngs[1])})))
    assert scored == predictor.predict(pngs)
    assert scored[0] != scored[1] and scored[0]["labels"] == CLASSES


def test_explanations_are_refused_for_detectors():
    from automl_nb.spec import resolve_parameters

    params = resolve_parameters("image_object_detection", {"model_name": "fasterrcnn_resnet18_fpn"})
    predictor = Predictor(Constant(), "image_object_detection", CLASSES, params)
    body = scoring_request(_b64(png_bytes(0)), json.dumps({"image_base64": _b64(png_bytes(0)), "model_explainability": True}))
    with pytest.raises(SpecError, match=r"input_data.data\[1\].model_explainability: true, but explanations are "
                                        "for classification models only"):
        score_request(predictor, body)


def test_an_explained_entry_gets_a_visualization_and_attributions(tmp_path):
    import torch

    from automl_nb.models.registry import build_model

    torch.manual_seed(0)
    model = build_model("resnet18", num_classes=2, pretrained=False).eval()
    settings = {"validation_resize_size": 32, "validation_crop_size": 32}
    predictor = Predictor(model, "image_classification", CLASSES, settings)
    asked = json.dumps({"image_base64": _b64(png_bytes(3)), "model_explainability": True,
                        "xai_parameters": {"xai_algorithm": "guided_gradcam", "attributions": True}})
    plain, explained = score_request(predictor, scoring_request(_b64(png_bytes(3)), asked))
    assert set(plain) == {"probs", "labels"}
    assert explained["probs"] == plain["probs"]
    assert base64.b64decode(explained["visualizations"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.asarray(explained["attributions"]).shape == (3, 32, 32)
    with pytest.raises(SpecError, match="n_steps"):
        score_request(predictor, scoring_request(json.dumps({"image_base64": _b64(png_bytes(3)), "model_explainability": True,
                                                      "xai_parameters": {"xai_algorithm": "integrated_gradients",
                                                                         "n_steps": 1}})))
