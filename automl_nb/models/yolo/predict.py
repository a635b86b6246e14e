"""Images in, detections in each image's own pixels out: letterbox, network, decode, NMS, map back.

Used by :class:`~automl_nb.models.yolo.model.YoloV5` when it is called with a list of images
(the torchvision detector convention the predictor and tiled inference rely on), and by the
training adapter's validation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch

from automl_nb.data.yolo_transforms import Letterbox, letterbox
from automl_nb.models.yolo.decode import decode_outputs, non_max_suppression

if TYPE_CHECKING:
    from automl_nb.models.yolo.model import YoloV5


def postprocess(model: "YoloV5", outputs: list[torch.Tensor], letterboxes: Sequence[Letterbox],
                score_threshold: float, iou_threshold: float, max_detections: int | None = None
                ) -> list[dict[str, torch.Tensor]]:
    """Raw outputs of a letterboxed batch to detections in each original image's pixels.

    Args:
        model: the network whose head made ``outputs`` (its anchors and strides decode them).
        outputs: the network's raw outputs for the batch.
        letterboxes: each image's :class:`~automl_nb.data.yolo_transforms.Letterbox`.
        score_threshold, iou_threshold: see :func:`~automl_nb.models.yolo.decode.non_max_suppression`.
        max_detections: most boxes per image (None: :data:`~automl_nb.models.yolo.model.MAX_DETECTIONS`).

    Returns:
        One dict per image: ``boxes`` XYXY in original pixels (clipped to the image; boxes
        left empty by clipping are dropped), ``scores``, ``labels`` 0-based.
    """
    from automl_nb.models.yolo.model import MAX_DETECTIONS

    decoded = decode_outputs(outputs, model.head.anchors, model.head.stride)
    detections = non_max_suppression(decoded, score_threshold, iou_threshold, max_detections or MAX_DETECTIONS)
    for detection, geometry in zip(detections, letterboxes):
        boxes = geometry.to_image(detection["boxes"])
        # A box that lay on the letterbox padding is empty once clipped to the image: drop it.
        kept = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        detection.update({key: value[kept] for key, value in detection.items() if key != "boxes"}, boxes=boxes[kept])
    return detections


@torch.no_grad()
def detect_images(model: "YoloV5", images: Sequence[torch.Tensor], image_size: int, score_threshold: float,
                  iou_threshold: float, label_offset: int = 0) -> list[dict[str, torch.Tensor]]:
    """Detect objects in images of any size.

    Args:
        model: the network (its mode is left as it is; call ``model.eval()`` first).
        images: ``[3, H, W]`` float tensors in [0, 1], each its own size, on the model's device.
        image_size: letterbox size (a multiple of 32).
        score_threshold, iou_threshold: ``box_score_threshold``, ``nms_iou_threshold``.
        label_offset: added to the 0-based labels (1 gives torchvision's 1..C).

    Returns:
        One dict per image: ``boxes`` ``[K, 4]`` XYXY in that image's pixels, ``scores``,
        ``labels``.

    Example:
        >>> detections = detect_images(model.eval(), [image], 640, 0.1, 0.5)
    """
    if not len(images):
        return []
    boxed = [letterbox(image, image_size) for image in images]
    batch = torch.stack([canvas for canvas, _ in boxed])
    outputs = model.raw_outputs(batch)
    detections = postprocess(model, outputs, [geometry for _, geometry in boxed], score_threshold, iou_threshold)
    for detection in detections:
        detection["labels"] = detection["labels"] + label_offset
    return detections


def predict_pil(model: "YoloV5", images, device: str | torch.device = "cpu", *, image_size: int | None = None,
                score_threshold: float | None = None, iou_threshold: float | None = None
                ) -> list[dict[str, torch.Tensor]]:
    """Detect objects in PIL images; boxes in each image's pixels, labels 0-based.

    Settings left as None are the model's (``model.image_size``...).

    Example:
        >>> from PIL import Image
        >>> predict_pil(model, [Image.open("street.jpg")])[0]["boxes"]
    """
    from torchvision.transforms.v2 import functional as F

    from automl_nb.models.yolo.model import network_size

    tensors = [F.to_dtype(F.to_image(image.convert("RGB")), torch.float32, scale=True).to(device)
               for image in images]
    return detect_images(model, tensors, network_size(image_size) if image_size else model.image_size,
                         model.box_score_threshold if score_threshold is None else score_threshold,
                         model.nms_iou_threshold if iou_threshold is None else iou_threshold)
