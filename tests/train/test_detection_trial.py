"""Detection and segmentation trials: the adapter's scoring, and a detector that learns."""

import json

import pytest
import torch
from torch.utils.data import DataLoader

from automl_nb.data.mltable import load_records
from automl_nb.data.records import class_names
from automl_nb.data.synthetic import make_dataset
from automl_nb.spec import SEGMENTATION, resolve_parameters
from automl_nb.train import Trial, run_trial
from automl_nb.train.detection import DetectionAdapter


class Replay(torch.nn.Module):
    """A fake detector that predicts the validation targets it was given, in loader order."""

    def __init__(self, targets, label_shift=0):
        super().__init__()
        self.targets, self.label_shift, self.seen = targets, label_shift, 0

    def forward(self, images, targets=None):
        if self.training:
            return {"loss_a": torch.tensor(0.25), "loss_b": torch.tensor(0.5)}
        outputs = []
        for _ in images:
            target = self.targets[self.seen]
            self.seen += 1
            count = len(target["labels"])
            labels = (target["labels"] - 1 + self.label_shift) % self.classes + 1
            outputs.append({"boxes": torch.as_tensor(target["boxes"]).float(), "scores": torch.ones(count),
                            "labels": labels,
                            # soft masks: 0.9 on the object, 0.1 elsewhere; the threshold must cut them
                            "masks": (target["masks"].float() * 0.8 + 0.1)[:, None] if "masks" in target else None})
        return outputs


@pytest.fixture(scope="module")
def segmentation_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("segmentation")
    make_dataset(SEGMENTATION, 12, 64, folder, seed=0)
    records = load_records(str(folder), SEGMENTATION)
    return records, class_names(records)


@pytest.mark.parametrize("shift, expected", [(0, 1.0), (1, 0.0)])
def test_adapter_scores_boxes_and_masks_with_the_right_labels(segmentation_data, shift, expected):
    records, classes = segmentation_data
    params = resolve_parameters(SEGMENTATION, {"model_name": "maskrcnn_resnet18_fpn", "log_validation_loss": True})
    adapter = DetectionAdapter(SEGMENTATION, params, records, records, classes)
    targets = [adapter.valid_dataset[i][1] for i in range(len(adapter.valid_dataset))]
    model = Replay(targets, label_shift=shift)
    model.classes = len(classes)
    loader = DataLoader(adapter.valid_dataset, batch_size=5, collate_fn=adapter.collate)
    loss, scores = adapter.evaluate(model, loader, torch.device("cpu"))
    assert loss == pytest.approx(0.75)  # the summed training-mode losses
    assert scores["mean_average_precision"] == pytest.approx(expected)
    assert scores["mask_mean_average_precision"] == pytest.approx(expected)


def test_the_validation_loss_pass_leaves_batch_norm_statistics_alone(tmp_path):
    """From scratch a detector has plain BatchNorm2d; the training-mode pass for the validation loss
    must not fold validation images into its statistics, or the mAP logged is not the saved model's."""
    from automl_nb.spec import DETECTION

    make_dataset(DETECTION, 4, 64, tmp_path, seed=0)
    records = load_records(str(tmp_path), DETECTION)
    params = resolve_parameters(DETECTION, {"model_name": "fasterrcnn_resnet18_fpn", "use_pretrained_model": False,
                                            "min_size": 64, "max_size": 64})
    adapter = DetectionAdapter(DETECTION, params, records, records, class_names(records))
    model = adapter.build_model(pretrained=False)
    assert params["log_validation_loss"] and any(type(m) is torch.nn.BatchNorm2d for m in model.modules())
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    loader = DataLoader(adapter.valid_dataset, batch_size=2, collate_fn=adapter.collate)
    loss, _ = adapter.evaluate(model, loader, torch.device("cpu"))
    assert loss > 0
    assert all(torch.equal(before[name], tensor) for name, tensor in model.state_dict().items())


def test_settings_use_azures_inference_names(segmentation_data):
    records, classes = segmentation_data
    params = resolve_parameters(SEGMENTATION, {"model_name": "maskrcnn_resnet18_fpn", "box_score_threshold": 0.4})
    settings = DetectionAdapter(SEGMENTATION, params, records, records, classes).settings()
    assert settings["box_score_thresh"] == 0.4 and "box_score_threshold" not in settings
    assert settings["box_detections_per_img"] == params["box_detections_per_image"]
    assert settings["mask_pixel_score_threshold"] == params["mask_pixel_score_threshold"]
    assert settings["labels"] == classes and settings["task"] == SEGMENTATION


@pytest.mark.slow
def test_without_a_validation_metric_the_latest_model_is_kept(tmp_path):
    data = make_dataset("image_object_detection", 20, 64, tmp_path / "data", seed=0)
    params = {"model_name": "fasterrcnn_resnet18_fpn", "use_pretrained_model": False, "number_of_epochs": 2,
              "training_batch_size": 8, "min_size": 64, "max_size": 64, "random_seed": 0,
              "validation_metric_type": "none", "early_stopping": True,
              "advanced_settings": {"box_batch_size_per_image": 64}}
    result = run_trial(Trial("0", "image_object_detection", params, str(data), str(tmp_path / "trial")))
    rows = [json.loads(line) for line in (tmp_path / "trial" / "metrics.jsonl").read_text().splitlines()]
    assert result.status == "Completed" and result.best_metric is None and result.best_epoch == 2
    assert [row["epoch"] for row in rows] == [1, 2] and "mean_average_precision" not in rows[-1]
    assert torch.load(tmp_path / "trial" / "model_best.pt", weights_only=False)["epoch"] == 2


@pytest.mark.slow
def test_incremental_training_starts_a_detector_from_the_saved_weights(tmp_path):
    from automl_nb.models.registry import build_model
    from automl_nb.train.folder import BEST_CHECKPOINT, TrialFolder

    torch.manual_seed(123)
    earlier = build_model("fasterrcnn_resnet18_fpn", num_classes=3, pretrained=False, min_size=64, max_size=64)
    TrialFolder(tmp_path / "earlier").save_checkpoint(BEST_CHECKPOINT, {"model": earlier.state_dict()})
    data = make_dataset("image_object_detection", 12, 64, tmp_path / "data", seed=0)
    # learning_rate 0: training changes no weight, so the new model's weights show where it started.
    params = {"model_name": "fasterrcnn_resnet18_fpn", "use_pretrained_model": False, "number_of_epochs": 1,
              "training_batch_size": 8, "min_size": 64, "max_size": 64, "random_seed": 0, "learning_rate": 0.0,
              "weight_decay": 0.0, "advanced_settings": {"box_batch_size_per_image": 64}}

    def weights_after(folder, **extra):
        run_trial(Trial("0", "image_object_detection", {**params, **extra}, str(data), str(tmp_path / folder)))
        return torch.load(tmp_path / folder / BEST_CHECKPOINT, weights_only=False)["model"]

    names = [name for name, _ in earlier.named_parameters()]
    continued = weights_after("continued", checkpoint_run_id=str(tmp_path / "earlier"))
    assert all(torch.equal(continued[name], earlier.state_dict()[name]) for name in names)
    fresh = weights_after("fresh")
    assert not all(torch.equal(fresh[name], earlier.state_dict()[name]) for name in names)


class CornerBox(torch.nn.Module):
    """A fake detector that sees one 8x8 box of class 1 at the top-left of every crop it is given."""

    def forward(self, images, targets=None):
        return [{"boxes": torch.tensor([[0.0, 0.0, 8.0, 8.0]]), "scores": torch.ones(1),
                 "labels": torch.ones(1, dtype=torch.int64)} for _ in images]


def test_tiled_validation_scores_full_images_merged_from_their_tiles(tmp_path, monkeypatch):
    from automl_nb.data.tiling import tile_boxes
    from automl_nb.spec import DETECTION

    make_dataset(DETECTION, 3, 64, tmp_path, seed=0)
    records = load_records(str(tmp_path), DETECTION)
    params = resolve_parameters(DETECTION, {"model_name": "fasterrcnn_resnet18_fpn", "tile_grid_size": "2x1",
                                            "tile_overlap_ratio": 0.25, "log_validation_loss": False})
    adapter = DetectionAdapter(DETECTION, params, records, records, class_names(records))
    scored = []
    monkeypatch.setattr("automl_nb.train.detection.validation_metrics", lambda preds, *rest, **kw: scored.extend(preds))
    loader = DataLoader(adapter.valid_dataset, batch_size=2, collate_fn=adapter.collate)
    adapter.evaluate(CornerBox().eval(), loader, torch.device("cpu"))
    # Each full 64x64 image: the model's corner box from the image and from each tile, moved
    # to image pixels; the first tile's box is the image's own, so NMS keeps it once.
    right_tile = tile_boxes(64, 64, "2x1", 0.25)[1]
    expected = sorted([[0, 0, 8, 8], [right_tile[0], 0, right_tile[0] + 8, 8]])
    assert len(scored) == 3
    assert all(sorted(p.boxes.tolist()) == expected for p in scored)
