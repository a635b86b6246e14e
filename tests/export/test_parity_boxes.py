"""A detector's parity check pairs the two runtimes' detections and compares their boxes, not only scores.

``check_parity`` runs on a real detection adapter over tiny synthetic data (its mAP included), with a
fixed fake detector as the PyTorch graph and, as ONNX Runtime, a fake model that returns the graph's
outputs changed in one way: no model is built and no ONNX file written.
"""

import math

import numpy as np
import pytest
import torch

from automl_nb.data.synthetic import make_dataset
from automl_nb.export.parity import BOX_TOLERANCE_PX, METRIC_TOLERANCE_POINTS, OUTPUT_TOLERANCE, check_parity
from automl_nb.spec import DETECTION, resolve_parameters
from automl_nb.train import Trial
from automl_nb.train.setup import make_adapter

# Three small boxes in a corner of the 40 px images, far from their objects, so the mAP stays 0 whatever a
# change here does to them: only the output comparison can fail the check. Scores as given per case.
BOXES = [[0.0, 0.0, 2.0, 2.0], [1.0, 0.0, 3.0, 2.5], [0.0, 1.0, 2.5, 3.0]]
LABELS = [1, 2, 1]


class FixedDetector(torch.nn.Module):
    """A DetectorGraph stand-in: for every image the same detections (boxes, labels, scores)."""

    keys = ("boxes", "labels", "scores")

    def __init__(self, scores) -> None:
        super().__init__()
        self.outputs = (torch.tensor(BOXES), torch.tensor(LABELS), torch.tensor(scores, dtype=torch.float32))

    def forward(self, images):
        return tuple(value.clone() for _ in images for value in self.outputs)


class ChangedRuntime:
    """An OnnxModel stand-in for a detector exported at batch 1: the graph's outputs per image, changed."""

    batch_size = 1

    def __init__(self, graph: FixedDetector, change) -> None:
        self.graph, self.change = graph, change

    def run_detector(self, images):
        found = []
        for pixels in images:
            outputs = self.graph(torch.from_numpy(np.asarray(pixels))[None])
            found.append(self.change({key: value.numpy() for key, value in zip(self.graph.keys, outputs)}))
        return found

    detect_batch = run_detector  # one shape per image and no letterbox: the same here


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    root = tmp_path_factory.mktemp("parity_boxes")
    make_dataset(DETECTION, 10, 40, root / "data", seed=1)
    params = dict(resolve_parameters(DETECTION, {"model_name": "fasterrcnn_resnet18_fpn", "random_seed": 0,
                                                 "log_validation_loss": False}))
    trial = Trial(trial_id="0", task=DETECTION, parameters=params, training_data=str(root / "data"),
                  output_dir=str(root / "trial"))
    return make_adapter(trial, params, 0)


def _check(adapter, scores, change):
    graph = FixedDetector(scores)
    return check_parity(graph, ChangedRuntime(graph, change), adapter, False, (0.5,) * 3, (0.25,) * 3,
                        latency_batches=(1,), repeats=1)


def _shifted(pixels):
    return lambda found: {**found, "boxes": found["boxes"] + np.float32(pixels)}


def _reversed(found):
    return {key: value[::-1].copy() for key, value in found.items()}


def _scores_swapped(found):  # the best and the worst box trade scores: the sorted scores stay the same
    return {**found, "scores": found["scores"][[2, 1, 0]].copy()}


def _one_fewer(found):
    return {key: value[:-1] for key, value in found.items()}


def _relabelled(found):  # the label 2 detection becomes a label 1 one
    return {**found, "labels": np.ones_like(found["labels"])}


TIED, VARIED = [0.5, 0.5, 0.5], [0.9, 0.6, 0.3]


@pytest.mark.parametrize("scores, change", [(TIED, lambda found: found), (VARIED, _reversed),
                                            (VARIED, _shifted(BOX_TOLERANCE_PX / 2))],
                         ids=["identical", "same-detections-in-another-order", "within-tolerance"])
def test_the_same_detections_pass(adapter, scores, change):
    report = _check(adapter, scores, change)
    assert report["passed"] and report["unpaired_images"] == 0 and report["images"] == len(adapter.valid_dataset)
    assert report["max_abs_diff"] == 0.0 and report["max_box_diff_px"] <= BOX_TOLERANCE_PX
    assert report["tolerance"] == {"max_abs_diff": OUTPUT_TOLERANCE, "metric_points": METRIC_TOLERANCE_POINTS,
                                   "max_box_diff_px": BOX_TOLERANCE_PX}
    assert set(report["latency_ms"]) == {"pytorch", "onnxruntime"} and report["metric"]["difference_points"] == 0


def test_boxes_a_few_pixels_off_fail_though_every_score_matches(adapter):
    report = _check(adapter, TIED, _shifted(3.0))  # tied scores: any pairing by score would pass
    assert not report["passed"]
    assert report["max_box_diff_px"] == pytest.approx(3.0) and report["unpaired_images"] == 0
    # Nothing else fails: the scores are the same and the mAP too.
    assert report["max_abs_diff"] == 0.0 and report["metric"]["difference_points"] <= METRIC_TOLERANCE_POINTS


def test_scores_on_the_wrong_boxes_fail_though_the_sorted_scores_match(adapter):
    report = _check(adapter, VARIED, _scores_swapped)
    assert not report["passed"]
    assert report["max_abs_diff"] == pytest.approx(0.6) and report["max_box_diff_px"] == 0.0


@pytest.mark.parametrize("change", [_one_fewer, _relabelled], ids=["one-detection-fewer", "labels-changed"])
def test_detections_that_cannot_be_paired_fail(adapter, change):
    report = _check(adapter, VARIED, change)
    assert not report["passed"] and report["unpaired_images"] == report["images"] > 0
    assert math.isinf(report["max_abs_diff"]) and math.isinf(report["max_box_diff_px"])
