"""YOLOv5's training loss: CIoU box loss, objectness and class BCE, anchor matching by shape.

How targets are assigned (per scale, independently):

- **By shape, not by IoU.** A ground-truth box goes to every anchor of the scale whose width
  and height ratios to the box are both within ``anchor_ratio`` (4): ``max(w/aw, aw/w,
  h/ah, ah/h) < 4``. A box may thus be learnt by several anchors and several scales, and a
  scale whose anchors are all too different ignores it.
- **Neighbouring cells.** The decoded centre may lie from -0.5 to 1.5 cells from a cell's
  corner (:mod:`automl_nb.models.yolo.decode`), so the box is also assigned to the two
  neighbouring cells nearest to its centre: left or right, and up or down. Three cells per
  matched anchor triple the positives, which speeds up training.
- **Objectness target = IoU.** A positive's objectness target is the (detached, >= 0) CIoU of
  its predicted box with the ground truth, so the objectness learns to rank boxes by quality.
  When two targets land on the same anchor of the same cell, the higher IoU is kept
  (a deterministic choice). All other anchors and cells have objectness target 0.
- **Class loss** is BCE of the class logits against one-hot targets, only at positives; with a
  single class there is nothing to learn, so none is computed (and the decoder scores by
  objectness alone).

Weights (YOLOv5's hyp.scratch defaults): box 0.05, objectness 1.0, class 0.5, scaled by
``3 / scales``; class also by ``classes / 80``; objectness also by ``(image_size / 640)²``,
and the per-scale objectness balance is 4.0, 1.0, 0.4 for strides 8, 16, 32 (fine maps
have many more negatives). The sum is multiplied by the batch size, so the default learning
rate (0.01 for yolov5) has YOLOv5's meaning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as nnf


@dataclass(frozen=True)
class LossWeights:
    """The loss's constants (YOLOv5's defaults); see the module docstring."""

    box: float = 0.05
    objectness: float = 1.0
    classes: float = 0.5
    anchor_ratio: float = 4.0
    scale_balance: tuple[float, ...] = (4.0, 1.0, 0.4)


def complete_iou(predicted: torch.Tensor, target: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """CIoU of matching ``(cx, cy, w, h)`` boxes: IoU minus a centre-distance and an aspect term.

    The distance term (squared centre distance over the squared diagonal of the enclosing box)
    still gives a gradient when the boxes do not overlap; the aspect term pulls the width to
    height ratio towards the target's.
    """
    p1, p2 = predicted[:, :2] - predicted[:, 2:] / 2, predicted[:, :2] + predicted[:, 2:] / 2
    t1, t2 = target[:, :2] - target[:, 2:] / 2, target[:, :2] + target[:, 2:] / 2
    overlap = (torch.minimum(p2, t2) - torch.maximum(p1, t1)).clamp(min=0).prod(1)
    union = predicted[:, 2:].prod(1) + target[:, 2:].prod(1) - overlap + eps
    iou = overlap / union
    enclosing = torch.maximum(p2, t2) - torch.minimum(p1, t1)
    diagonal = enclosing.pow(2).sum(1) + eps
    distance = (predicted[:, :2] - target[:, :2]).pow(2).sum(1)
    aspect = (4 / math.pi ** 2) * (torch.atan(target[:, 2] / (target[:, 3] + eps))
                                   - torch.atan(predicted[:, 2] / (predicted[:, 3] + eps))).pow(2)
    with torch.no_grad():
        alpha = aspect / (aspect - iou + (1 + eps))
    return iou - (distance / diagonal + alpha * aspect)


def assign_targets(targets: torch.Tensor, anchors: torch.Tensor, grid_size: tuple[int, int],
                   anchor_ratio: float = 4.0) -> dict[str, torch.Tensor]:
    """The positives of one scale: which image, anchor and cell learns which box.

    Args:
        targets: ``[M, 6]`` ``(image, class, cx, cy, w, h)`` in grid cells of this scale.
        anchors: ``[A, 2]`` anchor sizes in grid cells.
        grid_size: ``(height, width)`` of the map.
        anchor_ratio: largest allowed width or height ratio between box and anchor.

    Returns:
        ``image``, ``anchor``, ``cell_y``, ``cell_x`` (``[P]`` long), ``classes`` (``[P]`` long),
        ``box`` (``[P, 4]``: centre relative to the cell's corner, then size, in cells).
    """
    height, width = grid_size
    if len(targets):
        ratio = targets[None, :, 4:6] / anchors[:, None]  # [A, M, 2]
        matched = torch.maximum(ratio, 1 / ratio).amax(2) < anchor_ratio
        anchor, index = matched.nonzero(as_tuple=True)
    else:
        anchor = index = torch.zeros(0, dtype=torch.long, device=targets.device)
    centre = targets[index, 2:4]
    cell = centre.floor()
    # Each positive in its own cell, plus the nearer horizontal and the nearer vertical
    # neighbour: the one on the side the centre is within half a cell of, if it exists.
    fraction, limits = centre - cell, centre.new_tensor([width, height])
    parts = [(index, anchor, cell)]
    for axis in (0, 1):
        before = (fraction[:, axis] < 0.5) & (centre[:, axis] > 1)
        after = (fraction[:, axis] > 0.5) & (limits[axis] - centre[:, axis] > 1)
        for near, step in ((before, -1.0), (after, 1.0)):
            shifted = cell[near].clone()
            shifted[:, axis] += step
            parts.append((index[near], anchor[near], shifted))
    index = torch.cat([part[0] for part in parts])
    anchor = torch.cat([part[1] for part in parts])
    cells = torch.minimum(torch.cat([part[2] for part in parts]).clamp(min=0), limits - 1)  # a centre on the edge
    centre = targets[index, 2:4]
    box = torch.cat([centre - cells, targets[index, 4:6]], dim=1)
    return {"image": targets[index, 0].long(), "anchor": anchor, "cell_y": cells[:, 1].long(),
            "cell_x": cells[:, 0].long(), "classes": targets[index, 1].long(), "box": box}


def yolo_loss(outputs: list[torch.Tensor], targets: torch.Tensor, anchors: torch.Tensor, strides: torch.Tensor,
              image_size: int, weights: LossWeights = LossWeights()) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss of one batch.

    Args:
        outputs: raw head outputs, per scale ``[B, A, H, W, 5 + C]``.
        targets: ``[M, 6]`` ``(image index, class, cx, cy, w, h)`` in input pixels (see
            :func:`automl_nb.data.yolo_transforms.targets_tensor`); may be empty.
        anchors: ``[scales, A, 2]`` in grid cells (``model.head.anchors``).
        strides: ``[scales]`` (``model.head.stride``).
        image_size: the configured input size, for the objectness weight.
        weights: the loss constants.

    Returns:
        ``(loss, parts)``: the scalar to minimise and its ``box``, ``objectness``, ``classes``
        components (floats, per image, before the batch-size factor).

    Example:
        >>> loss, parts = yolo_loss(model(images), targets_tensor(targets), model.head.anchors,
        ...                         model.head.stride, image_size=640)
    """
    batch, num_classes = outputs[0].shape[0], outputs[0].shape[-1] - 5
    device = outputs[0].device
    zero = torch.zeros((), device=device)
    box_loss, objectness_loss, class_loss = zero, zero, zero
    for output, scale_anchors, stride, balance in zip(outputs, anchors, strides, weights.scale_balance):
        output = output.float()
        grid_targets = targets.to(device).float().clone()
        grid_targets[:, 2:6] /= stride
        positives = assign_targets(grid_targets, scale_anchors.float(), tuple(output.shape[2:4]), weights.anchor_ratio)
        objectness_target = torch.zeros_like(output[..., 4])
        if len(positives["image"]):
            at = (positives["image"], positives["anchor"], positives["cell_y"], positives["cell_x"])
            predicted = output[at]
            xy = predicted[:, :2].sigmoid() * 2 - 0.5
            wh = (predicted[:, 2:4].sigmoid() * 2) ** 2 * scale_anchors.float()[positives["anchor"]]
            iou = complete_iou(torch.cat([xy, wh], dim=1), positives["box"])
            box_loss = box_loss + (1.0 - iou).mean()
            # Several positives on one anchor of one cell: keep the highest IoU.
            flat = ((at[0] * output.shape[1] + at[1]) * output.shape[2] + at[2]) * output.shape[3] + at[3]
            objectness_target.view(-1).scatter_reduce_(0, flat, iou.detach().clamp(min=0), reduce="amax")
            if num_classes > 1:
                one_hot = nnf.one_hot(positives["classes"], num_classes).float()
                class_loss = class_loss + nnf.binary_cross_entropy_with_logits(predicted[:, 5:], one_hot)
        objectness_loss = objectness_loss + balance * nnf.binary_cross_entropy_with_logits(
            output[..., 4], objectness_target)
    per_scale = 3 / len(outputs)
    box_loss = box_loss * weights.box * per_scale
    objectness_loss = objectness_loss * weights.objectness * (image_size / 640) ** 2 * per_scale
    class_loss = class_loss * weights.classes * num_classes / 80 * per_scale
    total = (box_loss + objectness_loss + class_loss) * batch
    parts = {"box": float(box_loss.detach()), "objectness": float(objectness_loss.detach()),
             "classes": float(class_loss.detach())}
    return total, parts
