"""YOLOv5 loss: CIoU, anchor matching by shape, neighbouring cells, and images without boxes."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.ops import complete_box_iou_loss

from automl_nb.models.yolo import YoloV5
from automl_nb.models.yolo.loss import assign_targets, complete_iou, yolo_loss

ANCHORS = torch.tensor([[1.25, 1.625], [2.0, 3.75], [4.125, 2.875]])  # stride-8 anchors in cells


def test_complete_iou_agrees_with_torchvision():
    generator = torch.Generator().manual_seed(0)
    centres, sizes = torch.rand(50, 2, generator=generator) * 20, torch.rand(50, 2, generator=generator) * 8 + 1
    other = torch.cat([centres + torch.randn(50, 2, generator=generator), sizes * 1.3], dim=1)
    ours = complete_iou(torch.cat([centres, sizes], dim=1), other)
    xyxy = [torch.cat([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], dim=1)
            for b in (torch.cat([centres, sizes], dim=1), other)]
    assert torch.allclose(1 - ours, complete_box_iou_loss(*xyxy), atol=1e-5)
    same = torch.tensor([[5.0, 5.0, 2.0, 3.0]])
    assert complete_iou(same, same).item() == pytest.approx(1.0, abs=1e-6)
    far = torch.tensor([[50.0, 50.0, 2.0, 3.0]])
    assert complete_iou(same, far).item() < 0  # disjoint boxes still get a distance penalty


def test_a_box_goes_to_its_cell_and_the_two_nearest_neighbours():
    # Centre (3.3, 5.8): nearer the left edge of its cell (x) and the lower edge (y).
    targets = torch.tensor([[0, 1, 3.3, 5.8, 1.25, 1.625]])
    positives = assign_targets(targets, ANCHORS[:1], (10, 10))
    cells = sorted(zip(positives["cell_x"].tolist(), positives["cell_y"].tolist()))
    assert cells == [(2, 5), (3, 5), (3, 6)]
    # The target's centre relative to each assigned cell stays within the decodable -0.5 .. 1.5.
    assert positives["box"][:, :2].min() >= -0.5 and positives["box"][:, :2].max() <= 1.5
    assert positives["classes"].tolist() == [1, 1, 1]


def test_no_neighbour_beyond_the_map_edge():
    targets = torch.tensor([[0, 0, 0.3, 0.2, 1.25, 1.625]])  # top-left cell, near both outer edges
    positives = assign_targets(targets, ANCHORS[:1], (4, 4))
    assert list(zip(positives["cell_x"].tolist(), positives["cell_y"].tolist())) == [(0, 0)]


def test_anchors_are_matched_by_shape_ratio_below_four():
    # 5 x 6.5 cells is exactly 4x the first anchor (not < 4) and within 4x of the other two.
    targets = torch.tensor([[0, 0, 4.5, 4.5, 5.0, 6.5], [0, 0, 4.5, 4.5, 40.0, 40.0]])
    positives = assign_targets(targets, ANCHORS, (10, 10))
    own_cell = (positives["cell_x"] == 4) & (positives["cell_y"] == 4)
    assert sorted(positives["anchor"][own_cell].tolist()) == [1, 2]  # the 40 x 40 box fits none


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return YoloV5(num_classes=3, model_size="small").train()


def test_images_without_boxes_give_a_finite_loss_and_gradients(model):
    model.zero_grad()
    outputs = model(torch.rand(2, 3, 64, 64))
    loss, parts = yolo_loss(outputs, torch.zeros((0, 6)), model.head.anchors, model.head.stride, 64)
    loss.backward()
    assert math.isfinite(loss.item()) and loss.item() > 0
    assert parts["box"] == 0 and parts["classes"] == 0 and parts["objectness"] > 0
    gradients = [p.grad for p in model.parameters() if p.grad is not None]
    assert gradients and all(torch.isfinite(g).all() for g in gradients)
    # Only objectness is learnt: every prediction is pushed towards "no object".
    assert model.head.m[0].bias.grad.view(3, 8)[:, 4].gt(0).all()


def test_a_prediction_equal_to_its_target_has_no_box_loss(model):
    # Raw outputs that decode, at every assigned cell and anchor, to the target box exactly.
    targets = torch.tensor([[0, 2, 28.0, 36.0, 18.0, 20.0]])  # one 18 x 20 px box, class 2
    outputs = [torch.zeros(1, 3, 64 // s, 64 // s, 8) for s in (8, 16, 32)]
    for output, anchors, stride in zip(outputs, model.head.anchors, model.head.stride):
        grid = targets.clone()
        grid[:, 2:] /= stride
        positives = assign_targets(grid, anchors, tuple(output.shape[2:4]))
        at = (positives["image"], positives["anchor"], positives["cell_y"], positives["cell_x"])
        xy = (positives["box"][:, :2] + 0.5) / 2
        wh = (positives["box"][:, 2:] / anchors[positives["anchor"]]).sqrt() / 2
        output[at + (slice(0, 4),)] = torch.logit(torch.cat([xy, wh], dim=1))
    loss, parts = yolo_loss(outputs, targets, model.head.anchors, model.head.stride, 64)
    assert parts["box"] == pytest.approx(0.0, abs=1e-5)
    shifted = [o.clone() for o in outputs]
    shifted[0][..., 0] += 1.0  # move every stride-8 prediction
    assert yolo_loss(shifted, targets, model.head.anchors, model.head.stride, 64)[1]["box"] > 0.01
