"""AttributionViewer on a trained (one epoch) classifier: methods side by side, classes, static form."""

import pytest

from automl_nb.data.synthetic import make_dataset
from automl_nb.errors import AutoMLError
from automl_nb.train import Trial, run_trial
from automl_nb.widgets.attribution_viewer import PREDICTED, AttributionViewer


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    root = tmp_path_factory.mktemp("attributions")
    data = make_dataset("image_classification", 20, 32, root / "data", seed=0)
    params = {"model_name": "resnet18", "use_pretrained_model": False, "number_of_epochs": 1,
              "training_batch_size": 8, "training_crop_size": 28, "validation_resize_size": 32,
              "validation_crop_size": 28, "random_seed": 0}
    run_trial(Trial("0", "image_classification", params, str(data), str(root / "trial")))
    return root / "trial"


def test_methods_show_side_by_side_for_the_chosen_class(trial):
    viewer = AttributionViewer(trial)
    assert len(viewer.image.options) == 4  # the trial's validation split (20%)
    assert [e.method for e in viewer.explanations] == ["guided_gradcam"]
    assert viewer.explanations[0].attributions.shape == (3, 28, 28)

    viewer.methods.value = ("guided_gradcam", "guided_backprop")
    assert [e.method for e in viewer.explanations] == ["guided_gradcam", "guided_backprop"]
    assert len(viewer.pictures.children) == 2
    assert viewer.pictures.layout.flex_flow == "row wrap"  # a third method wraps to a new row, not clipped

    viewer.label.value = "square"
    assert {e.label for e in viewer.explanations} == {"square"} and "guided_backprop: square" in viewer.caption.value
    viewer.label.value = PREDICTED
    predicted = viewer.explainer.explain_predicted(viewer.image.value, "guided_gradcam")[0].label
    assert viewer.explanations[0].label == predicted


def test_n_steps_reaches_the_methods_that_take_it(trial):
    viewer = AttributionViewer(trial, methods=("integrated_gradients", "guided_gradcam"))
    viewer.n_steps.value = 7
    assert [e.settings.get("n_steps") for e in viewer.explanations] == [7, None]


def test_the_static_form_carries_the_figures(trial):
    html = AttributionViewer(trial)._repr_mimebundle_()["text/html"]
    assert html.count("<img") == 1 and "data:image/png;base64," in html and "flex-wrap:wrap" in html


def test_a_detector_is_refused(tmp_path):
    (tmp_path / "params.json").write_text('{"task": "image_object_detection", "parameters": {}}')
    with pytest.raises(AutoMLError, match="explanations are for classifiers"):
        AttributionViewer(tmp_path)
