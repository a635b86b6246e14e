"""Scoring-request explanations: response fields, multilabel maps per label, xai_parameters checks."""

import base64
import io

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from automl_nb.errors import SpecError
from automl_nb.explain import Explainer, explain, explain_for_request
from automl_nb.spec.explain import (
    ALGORITHM_KEYS, XAI_ALGORITHMS, XAI_PARAMETERS, check_method_parameters, check_xai_parameters, xai_keys,
)

LABELS = ["circle", "square", "triangle"]
SIZES = {"validation_resize_size": 24, "validation_crop_size": 20}
MULTILABEL = "image_classification_multilabel"


class BiasedClassifier(nn.Module):
    """A small CNN whose logits are ``bias`` plus a small image-dependent term (so gradients exist)."""

    def __init__(self, bias):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, len(bias))
        with torch.no_grad():
            self.fc.weight.mul_(0.01)
            self.fc.bias.copy_(torch.tensor(bias))

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (30, 26, 3), dtype=np.uint8))


def decode_png(text):
    return Image.open(io.BytesIO(base64.b64decode(text)))


def test_multiclass_response_has_one_figure_and_one_map_of_the_crop(image):
    model = BiasedClassifier([0.0, 3.0, 0.0])
    fields = explain_for_request(model, image, LABELS, "image_classification", SIZES,
                                 {"xai_algorithm": "guided_gradcam", "attributions": True})
    assert sorted(fields) == ["attributions", "visualizations"]
    assert decode_png(fields["visualizations"]).format == "PNG"
    maps = np.array(fields["attributions"])
    assert maps.shape == (3, 20, 20) and np.isfinite(maps).all()
    expected = Explainer(model, LABELS, "image_classification", resize_size=24, crop_size=20).explain(
        image, "guided_gradcam", label="square")  # the predicted class is the one explained
    assert np.allclose(maps, expected.attributions)


def test_multilabel_gives_one_map_per_label_scoring_at_least_the_threshold(image):
    model = BiasedClassifier([2.0, -2.0, 1.0])  # probabilities about 0.88, 0.12, 0.73
    asked = {"xai_algorithm": "integrated_gradients", "n_steps": 3, "attributions": True}
    fields = explain_for_request(model, image, LABELS, MULTILABEL, SIZES, asked)
    assert len(fields["visualizations"]) == 2 and len(fields["attributions"]) == 2
    assert all(np.array(a).shape == (3, 20, 20) for a in fields["attributions"])
    assert not np.allclose(fields["attributions"][0], fields["attributions"][1])  # circle's, then triangle's
    stricter = explain_for_request(model, image, LABELS, MULTILABEL, SIZES,
                                   {**asked, "confidence_score_threshold_multilabel": 0.8})
    assert np.allclose(stricter["attributions"], fields["attributions"][:1])
    none = explain_for_request(BiasedClassifier([-3.0, -3.0, -3.0]), image, LABELS, MULTILABEL, SIZES, asked)
    assert none == {"visualizations": [], "attributions": []}


def test_defaults_give_an_xrai_figure_and_no_attributions(image):
    fields = explain_for_request(BiasedClassifier([1.0, 0.0, 0.0]), image, LABELS, "image_classification",
                                 {"valid_resize_size": 24, "valid_crop_size": 20},  # Azure's spellings work too
                                 {"n_steps": 2})
    assert list(fields) == ["visualizations"]
    assert decode_png(fields["visualizations"]).size == (700, 700)


def test_nothing_asked_for_gives_no_fields(image):
    assert explain_for_request(BiasedClassifier([1.0, 0.0, 0.0]), image, LABELS, "image_classification", SIZES,
                               {"xai_algorithm": "guided_backprop", "visualizations": False}) == {}


@pytest.mark.parametrize("xai_parameters, words", [
    ({"xai_algorithm": "gradcam"}, ["xai_parameters.xai_algorithm", "'gradcam'", "guided_gradcam"]),
    ({"n_steps": 1}, ["xai_parameters.n_steps", "1", "int >= 2"]),
    ({"n_steps": "many"}, ["xai_parameters.n_steps", "'many'", "int >= 2"]),
    ({"xai_algorithm": "integrated_gradients", "approximation_method": "simpson"},
     ["xai_parameters.approximation_method", "'simpson'", "riemann_middle, gausslegendre"]),
    ({"xai_algorithm": "integrated_gradients", "xrai_fast": False},
     ["xai_parameters.xrai_fast", "does not apply to integrated_gradients", "n_steps, approximation_method"]),
    ({"xai_algorithm": "guided_backprop", "n_steps": 10}, ["xai_parameters.n_steps", "no settings"]),
    ({"visualisations": True}, ["xai_parameters.visualisations", "did you mean 'visualizations'"]),
    ({"attributions": "yes"}, ["xai_parameters.attributions", "'yes'", "bool"]),
    ({"confidence_score_threshold_multilabel": 0.3}, ["confidence_score_threshold_multilabel",
                                                      "image_classification_multilabel"]),
    ("xrai", ["xai_parameters", "not a mapping"]),
])
def test_bad_xai_parameters_raise_a_clear_error_before_any_work(image, xai_parameters, words):
    with pytest.raises(SpecError) as caught:
        # No model at all: the parameters must be refused before it is touched.
        explain_for_request(None, image, LABELS, "image_classification", SIZES, xai_parameters)
    for word in words:
        assert word in str(caught.value)


def test_explanations_are_refused_for_detection():
    with pytest.raises(SpecError, match="classification only"):
        check_xai_parameters({}, "image_object_detection")


def test_table_holds_the_spec_defaults():
    resolved = check_xai_parameters(None, MULTILABEL)
    assert resolved == {"xai_algorithm": "xrai", "visualizations": True, "attributions": False,
                        "confidence_score_threshold_multilabel": 0.5, "n_steps": 50, "xrai_fast": True}
    assert check_xai_parameters({"xai_algorithm": "IntegratedGradients"}, "image_classification") == {
        "xai_algorithm": "integrated_gradients", "visualizations": True, "attributions": False,
        "n_steps": 50, "approximation_method": "riemann_middle"}
    assert set(XAI_ALGORITHMS) == set(ALGORITHM_KEYS)
    assert all(key in XAI_PARAMETERS for keys in ALGORITHM_KEYS.values() for key in keys)
    assert xai_keys("guided_gradcam", "image_classification") == ["xai_algorithm", "visualizations", "attributions"]
    assert check_method_parameters("xrai", {"n_steps": "20", "xrai_fast": "false"}) == (
        "xrai", {"n_steps": 20, "xrai_fast": False})


def test_python_api_checks_settings_and_labels(image):
    model = BiasedClassifier([0.0, 0.0, 1.0])
    with pytest.raises(SpecError, match="n_steps: 0 is out of range"):
        explain(model, image, "xrai", labels=LABELS, task="image_classification", n_steps=0)
    with pytest.raises(ValueError, match="'hexagon' is not a class"):
        explain(model, image, "guided_backprop", "hexagon", labels=LABELS, task="image_classification")
    with pytest.raises(ValueError, match="labels and task"):
        explain(model, image)
    result = explain(model, image, "guided_backprop", labels=LABELS, task="image_classification", crop_size=20)
    assert result.label == "triangle" and result.attributions.shape == (3, 20, 20)
    assert result.score == pytest.approx(torch.softmax(torch.tensor([0.0, 0.0, 1.0]), 0)[2].item(), abs=0.01)
