"""Sanity checks of attributions on a model trained on the synthetic shapes.

Where the object is: the synthetic backgrounds are kept low in colour saturation and the shapes
are strongly coloured (see ``automl_nb.data.synthetic``), so the object of a multiclass image
is its saturated pixels. We take the mask from the validation crop itself rather than drawing
images of our own, so the check runs on exactly the data the trainer makes. (Checked once
against the polygons of the segmentation data of the same generator: IoU 0.99.)

Two checks, per method:
1. On held-out images, the attribution mass inside the object is clearly larger than the
   object's share of the crop, for most images.
2. Model randomisation (Adebayo et al., "Sanity checks for saliency maps", 2018): the same
   architecture with random weights concentrates clearly less mass on the object, so the maps
   follow what the model learnt rather than just the image's edges and colours.

Measured when written (two training seeds): integrated gradients' ratios 1.8-7.6, median 3.5
(random weights: median 2.4); XRAI's 1.6-5.5, median 2.5-2.8 (random weights: 1.4). Guided
backprop is left out: it is known to fail the randomisation check (Adebayo et al.).
"""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from automl_nb.data.synthetic import make_dataset
from automl_nb.explain import Explainer, explain
from automl_nb.models.registry import build_model
from automl_nb.testing import FAST_CLASSIFICATION
from automl_nb.train import Trial, run_trial

pytestmark = pytest.mark.slow

SATURATED = 0.45 * 255  # shapes have saturation >= 0.7, backgrounds far below 0.45
HELD_OUT = 12
SIZE = 48  # at 32 px, XRAI's segments are too coarse for a fair check
PARAMETERS = {**FAST_CLASSIFICATION, "training_crop_size": 42, "validation_resize_size": SIZE,
              "validation_crop_size": 42}
METHOD_SETTINGS = {"integrated_gradients": {"n_steps": 8}, "xrai": {"n_steps": 8}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, learning_seed):
    root = tmp_path_factory.mktemp("sanity")
    data = make_dataset("image_classification", 80, SIZE, root / "train", seed=0)
    result = run_trial(Trial(trial_id="0", task="image_classification",
                             parameters={**PARAMETERS, "random_seed": learning_seed},
                             training_data=str(data), output_dir=str(root / "trial"), validation_data_size=0.25))
    assert result.best_metric >= 0.8  # the model learnt the shapes; otherwise nothing below means much
    return root / "trial"


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """Fresh images (another seed) with labels and object masks in the validation crop."""
    jsonl = make_dataset("image_classification", HELD_OUT, SIZE, tmp_path_factory.mktemp("held_out"), seed=11)
    resize, crop = PARAMETERS["validation_resize_size"], PARAMETERS["validation_crop_size"]
    assert resize == SIZE  # the validation transform is a pure centre crop
    margin = (resize - crop) // 2
    items = []
    for line in jsonl.read_text().splitlines():
        record = json.loads(line)
        image = Image.open(jsonl.parent / record["image_url"]).convert("RGB")
        saturation = np.asarray(image.convert("HSV"))[..., 1]
        mask = saturation[margin:margin + crop, margin:margin + crop] > SATURATED
        assert 0.03 < mask.mean() < 0.7, mask.mean()  # one shape, neither missing nor everywhere
        items.append((image, record["label"], mask))
    return items


def mass_ratios(explainer, items, method):
    """Per image: (share of importance inside the object) / (share of the crop the object covers)."""
    ratios = []
    for image, _, mask in items:
        importance = explainer.explain(image, method, **METHOD_SETTINGS.get(method, {})).importance()
        importance = importance - importance.min()  # XRAI region scores may be negative
        ratios.append(importance[mask].sum() / importance.sum() / mask.mean())
    return np.array(ratios)


@pytest.fixture(scope="module")
def explainers(trained):
    model_explainer = Explainer.from_trial(trained)
    torch.manual_seed(123)
    random_model = build_model("resnet18", num_classes=3, pretrained=False)
    random_explainer = Explainer(random_model, model_explainer.labels, model_explainer.task,
                                 resize_size=model_explainer.resize_size, crop_size=model_explainer.crop_size)
    return model_explainer, random_explainer


@pytest.mark.parametrize("method", ["integrated_gradients", "xrai"])
def test_attribution_mass_concentrates_on_the_object(explainers, held_out, method, record_learning):
    trained_explainer, random_explainer = explainers
    ratios = mass_ratios(trained_explainer, held_out, method)
    control = mass_ratios(random_explainer, held_out, method)
    record_learning(share_above_1_5=float(np.mean(ratios > 1.5)), median=float(np.median(ratios)),
                    median_over_control=float(np.median(ratios) / np.median(control)))
    # Measured (bench/learning_spread.py, seeds 0-2 x 1 and 2 cores): share above 1.5 0.83-1.00; median 3.3-3.9 (IG), 1.8-3.2 (XRAI);
    # median over the random model's 1.35-1.61 (IG), 1.26-2.25 (XRAI), the tightest check here.
    assert np.mean(ratios > 1.5) >= 0.6, ratios.round(2)
    assert np.median(ratios) > 1.4, ratios.round(2)
    assert np.median(ratios) > 1.1 * np.median(control), (ratios.round(2), control.round(2))


def test_trial_folder_explains_its_predicted_class(trained, held_out):
    image, label, _ = held_out[0]
    result = explain(trained, image, "guided_gradcam")
    assert result.label == label and result.score > 0.5
    assert result.attributions.shape == (3, 42, 42)
