import pytest
import torch

from automl_nb.data.records import ImageRecord
from automl_nb.train.classification import ClassificationAdapter

SIZES = {"training_crop_size": 28, "validation_resize_size": 32, "validation_crop_size": 28,
         "model_name": "resnet18", "augmentation": "default"}


def records(counts):
    """Images labelled by class; balanced weights are n / (classes * count): 10 / (2 * [8, 2])."""
    return [ImageRecord(image_url=f"/x/{label}{i}.png", label=label)
            for label, n in counts.items() for i in range(n)]


@pytest.mark.parametrize("mode, expected", [(0, None), (2, [0.625, 2.5]), (1, [0.625 ** 0.5, 2.5 ** 0.5])])
def test_weighted_loss_uses_inverse_class_frequency(mode, expected):
    train = records({"a": 8, "b": 2})
    adapter = ClassificationAdapter("image_classification", {**SIZES, "weighted_loss": mode}, train, train, ["a", "b"])
    weight = adapter.criterion.weight
    if expected is None:
        assert weight is None
    else:
        assert weight.tolist() == pytest.approx(expected)


def test_multilabel_targets_are_multi_hot_and_scored_by_iou():
    train = [ImageRecord(image_url="/x/1.png", label=("a", "c")), ImageRecord(image_url="/x/2.png", label=("b",))]
    adapter = ClassificationAdapter("image_classification_multilabel", {**SIZES, "weighted_loss": 0},
                                    train, train, ["a", "b", "c"])
    assert adapter.train_dataset.targets[0].tolist() == [1.0, 0.0, 1.0]
    assert adapter.primary_metric == "iou"
    logits = torch.tensor([[5.0, -5.0, 5.0], [-5.0, 5.0, 5.0]])
    targets = torch.stack(adapter.train_dataset.targets)
    assert adapter.score(logits, targets)["iou"] == pytest.approx((1 + 0.5) / 2)
