"""From YOLOv5's raw outputs to boxes: decoding and non-maximum suppression.

Decoding (YOLOv5 v6 and later), for anchor ``(aw, ah)`` in pixels at a cell ``(cx, cy)`` of a
map with stride ``s``, with ``σ`` the sigmoid of the raw numbers:

- centre ``= (2 σ(tx, ty) - 0.5 + (cx, cy)) * s``: the centre may sit from half a cell
  before to half a cell past its own cell, which is what lets the loss assign a box to
  neighbouring cells too (:mod:`automl_nb.models.yolo.loss`);
- size ``= (2 σ(tw, th))² * (aw, ah)``: from 0 to 4 times the anchor, bounded (unlike the
  exponential of earlier YOLOs), so a wild output cannot produce a huge box;
- score ``= σ(objectness) * σ(class logit)``. With a single class there is no class
  to choose and the class output is not trained (see the loss): the score is the objectness.

NMS is class-aware (``torchvision.ops.batched_nms``) and multi-label: one box may be kept for
several classes whose scores pass the threshold, as YOLOv5 validates.
"""

from __future__ import annotations

import torch
from torchvision.ops import batched_nms

# Most (box, class) candidates passed to NMS per image, best first; bounds NMS time when an
# untrained model scores everything above a low threshold.
MAX_CANDIDATES = 30000


def decode_outputs(outputs: list[torch.Tensor], anchors: torch.Tensor, strides: torch.Tensor) -> torch.Tensor:
    """Decode raw head outputs into ``[B, N, 5 + C]`` rows ``(cx, cy, w, h, objectness, class probs)``.

    Args:
        outputs: per scale ``[B, A, H, W, 5 + C]`` raw numbers.
        anchors: ``[scales, A, 2]`` anchor sizes in grid cells of their scale.
        strides: ``[scales]`` pixels per cell.

    Returns:
        Centres and sizes in input pixels, probabilities in [0, 1] (float32).
    """
    rows = []
    for output, scale_anchors, stride in zip(outputs, anchors, strides):
        batch, num_anchors, height, width, channels = output.shape
        p = output.float().sigmoid()
        ys, xs = torch.meshgrid(torch.arange(height, device=p.device), torch.arange(width, device=p.device),
                                indexing="ij")
        grid = torch.stack([xs, ys], dim=-1).view(1, 1, height, width, 2).float()
        anchor_pixels = (scale_anchors.float() * stride).view(1, num_anchors, 1, 1, 2)
        centre = (p[..., :2] * 2 - 0.5 + grid) * stride
        size = (p[..., 2:4] * 2) ** 2 * anchor_pixels
        rows.append(torch.cat([centre, size, p[..., 4:]], dim=-1).view(batch, -1, channels))
    return torch.cat(rows, dim=1)


def xywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """``(cx, cy, w, h)`` to ``(x1, y1, x2, y2)``."""
    half = boxes[..., 2:4] / 2
    return torch.cat([boxes[..., :2] - half, boxes[..., :2] + half], dim=-1)


def non_max_suppression(decoded: torch.Tensor, score_threshold: float, iou_threshold: float,
                        max_detections: int = 300) -> list[dict[str, torch.Tensor]]:
    """Per image, the (box, class) pairs scoring above ``score_threshold`` that survive class-aware NMS.

    Args:
        decoded: ``[B, N, 5 + C]`` from :func:`decode_outputs`.
        score_threshold: minimum objectness x class probability (``box_score_threshold``).
        iou_threshold: boxes of one class overlapping more than this are suppressed.
        max_detections: most boxes kept per image, best first.

    Returns:
        One dict per image: ``boxes`` ``[K, 4]`` XYXY in input pixels, ``scores`` ``[K]``,
        ``labels`` ``[K]`` 0-based class indices, sorted by decreasing score.
    """
    results = []
    single_class = decoded.shape[-1] == 6
    for rows in decoded:
        rows = rows[rows[:, 4] > score_threshold]  # score <= objectness: a cheap first cut
        scores = rows[:, 4:5] if single_class else rows[:, 5:] * rows[:, 4:5]
        box_index, labels = (scores > score_threshold).nonzero(as_tuple=True)
        scores = scores[box_index, labels]
        if len(scores) > MAX_CANDIDATES:
            scores, top = scores.topk(MAX_CANDIDATES)
            box_index, labels = box_index[top], labels[top]
        boxes = xywh_to_xyxy(rows[box_index, :4])
        keep = batched_nms(boxes, scores, labels, iou_threshold)[:max_detections]
        results.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
    return results
