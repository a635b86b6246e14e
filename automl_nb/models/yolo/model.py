"""The YOLOv5 network (v6.0/v7.0 layout) and its registered builder.

Layout (layer index: block, for ``model_size`` large; the others scale channels and depth):

====  ======================  ===========================================
index block                   role
====  ======================  ===========================================
0     Conv 6x6 stride 2       stem, 1/2 resolution
1     Conv 3x3 stride 2       1/4
2     C3 x3                   CSP stage
3     Conv 3x3 stride 2       1/8 (P3)
4     C3 x6                   CSP stage
5     Conv 3x3 stride 2       1/16 (P4)
6     C3 x9                   CSP stage
7     Conv 3x3 stride 2       1/32 (P5)
8     C3 x3                   CSP stage
9     SPPF                    end of the backbone
10-23 PANet neck              top-down (upsample, concat with 6 and 4),
                              then bottom-up (stride-2 conv, concat with 14
                              and 10); C3 without shortcuts
24    Detect                  on the outputs of 17 (P3), 20 (P4), 23 (P5)
====  ======================  ===========================================

The layers sit in ``self.model`` (an ``nn.ModuleList``), so parameter names are
``model.0.conv.weight`` ... ``model.24.m.2.bias``, the names of the published checkpoints;
``layers_to_freeze`` counts ``model.0.`` .. ``model.9.``, the backbone (SPEC section 7).

``model_size`` sets YOLOv5's depth and width multiples: a C3 of ``n`` bottlenecks gets
``max(round(n * depth), 1)``, a layer of ``c`` channels gets ``c * width`` rounded up to a
multiple of 8. With 80 classes the sizes have 7.2M (small), 21.2M (medium), 46.5M (large) and
86.7M (extra_large) parameters, as published.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any, Mapping, Union

import torch
import torch.nn as nn

from automl_nb.errors import SpecError
from automl_nb.models.registry import register_model
from automl_nb.models.yolo.blocks import C3, SPPF, Concat, Conv, make_divisible
from automl_nb.models.yolo.head import Detect

# model_size -> (depth multiple, width multiple).
SIZES = MappingProxyType({
    "small": (0.33, 0.50),
    "medium": (0.67, 0.75),
    "large": (1.0, 1.0),
    "extra_large": (1.33, 1.25),
})
BACKBONE_LAYERS = 10  # model.0 .. model.9
MAX_STRIDE = 32  # input sides must be multiples of it
# Most detections returned per image (YOLOv5's max_det); yolov5 has no box_detections_per_image key.
MAX_DETECTIONS = 300

# -1: the previous layer's output; a tuple: those layers' outputs (-1 again the previous one).
Source = Union[int, tuple[int, ...]]


def network_size(image_size: int) -> int:
    """``image_size`` rounded up to a multiple of the largest stride (32), at least 32.

    Example:
        >>> network_size(640), network_size(100)
        (640, 128)
    """
    return max(MAX_STRIDE, int(math.ceil(image_size / MAX_STRIDE)) * MAX_STRIDE)


def _layers(num_classes: int, depth: float, width: float) -> list[tuple[Source, nn.Module]]:
    """The 25 layers of YOLOv5 as ``(source, module)``, scaled by ``depth`` and ``width``."""
    def c(channels: int) -> int:
        return make_divisible(channels * width, 8)

    def n(blocks: int) -> int:
        return max(round(blocks * depth), 1)

    return [
        # backbone
        (-1, Conv(3, c(64), 6, 2, 2)),                  # 0  1/2
        (-1, Conv(c(64), c(128), 3, 2)),                # 1  1/4
        (-1, C3(c(128), c(128), n(3))),                 # 2
        (-1, Conv(c(128), c(256), 3, 2)),               # 3  1/8
        (-1, C3(c(256), c(256), n(6))),                 # 4  -> P3 skip
        (-1, Conv(c(256), c(512), 3, 2)),               # 5  1/16
        (-1, C3(c(512), c(512), n(9))),                 # 6  -> P4 skip
        (-1, Conv(c(512), c(1024), 3, 2)),              # 7  1/32
        (-1, C3(c(1024), c(1024), n(3))),               # 8
        (-1, SPPF(c(1024), c(1024), 5)),                # 9
        # neck, top-down
        (-1, Conv(c(1024), c(512), 1, 1)),              # 10 -> bottom-up skip
        (-1, nn.Upsample(scale_factor=2, mode="nearest")),  # 11
        ((-1, 6), Concat()),                            # 12
        (-1, C3(c(512) * 2, c(512), n(3), False)),      # 13
        (-1, Conv(c(512), c(256), 1, 1)),               # 14 -> bottom-up skip
        (-1, nn.Upsample(scale_factor=2, mode="nearest")),  # 15
        ((-1, 4), Concat()),                            # 16
        (-1, C3(c(256) * 2, c(256), n(3), False)),      # 17 P3 out
        # neck, bottom-up
        (-1, Conv(c(256), c(256), 3, 2)),               # 18
        ((-1, 14), Concat()),                           # 19
        (-1, C3(c(256) * 2, c(512), n(3), False)),      # 20 P4 out
        (-1, Conv(c(512), c(512), 3, 2)),               # 21
        ((-1, 10), Concat()),                           # 22
        (-1, C3(c(512) * 2, c(1024), n(3), False)),     # 23 P5 out
        ((17, 20, 23), Detect(num_classes, (c(256), c(512), c(1024)))),  # 24
    ]


class YoloV5(nn.Module):
    """YOLOv5: backbone, PANet neck and three-scale anchor head.

    Called with a batch tensor ``[B, 3, H, W]`` (floats in [0, 1], sides multiples of 32) it
    returns the head's raw outputs, one ``[B, 3, H/s, W/s, 5 + num_classes]`` tensor per
    stride ``s`` in (8, 16, 32): what :func:`~automl_nb.models.yolo.loss.yolo_loss` trains
    and :func:`~automl_nb.models.yolo.decode.decode_outputs` decodes.

    Called like a torchvision detector, with a *list* of ``[3, H, W]`` images in [0, 1] of any
    size, it letterboxes each to ``image_size``, predicts, and returns one dict per image with
    ``boxes`` (XYXY in that image's pixels), ``scores`` (objectness x class probability, above
    ``box_score_threshold``) and ``labels`` **1..num_classes** (the torchvision convention of
    :mod:`automl_nb.models.detection`), after NMS at ``nms_iou_threshold``. So the predictor
    and tiled inference use it like the other detectors.

    Args:
        num_classes: object classes.
        model_size: "small", "medium", "large" or "extra_large" (:data:`SIZES`).
        image_size: inference size for list inputs (rounded up to a multiple of 32).
        box_score_threshold: minimum score of a returned box, for list inputs.
        nms_iou_threshold: NMS IoU, for list inputs.
        Settings left as None take yolov5's defaults from the hyperparameter table.

    Raises:
        ValueError: unknown ``model_size`` or ``num_classes`` < 1.

    Example:
        >>> model = YoloV5(num_classes=3, model_size="small")
        >>> [tuple(o.shape) for o in model(torch.zeros(1, 3, 64, 96))]
        [(1, 3, 8, 12, 8), (1, 3, 4, 6, 8), (1, 3, 2, 3, 8)]
    """

    def __init__(self, num_classes: int, model_size: str | None = None, *, image_size: int | None = None,
                 box_score_threshold: float | None = None, nms_iou_threshold: float | None = None) -> None:
        super().__init__()
        model_size, image_size, box_score_threshold, nms_iou_threshold = (
            _yolo_default(name) if value is None else value
            for name, value in (("model_size", model_size), ("image_size", image_size),
                                ("box_score_threshold", box_score_threshold),
                                ("nms_iou_threshold", nms_iou_threshold)))
        if model_size not in SIZES:
            raise ValueError(f"model_size: {model_size!r} is not a yolov5 size; allowed: {', '.join(SIZES)}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes: {num_classes!r} is not an int >= 1")
        self.num_classes, self.model_size = num_classes, model_size
        self.image_size = network_size(image_size)
        self.box_score_threshold, self.nms_iou_threshold = box_score_threshold, nms_iou_threshold
        layers = _layers(num_classes, *SIZES[model_size])
        self.sources: tuple[Source, ...] = tuple(source for source, _ in layers)
        self.model = nn.ModuleList(module for _, module in layers)
        # Outputs that a later layer reads besides its predecessor: only these are kept.
        self._kept = {s for source in self.sources for s in _as_tuple(source) if s >= 0}

    @property
    def head(self) -> Detect:
        """The detection head (``model.24``): anchors, strides, class count."""
        return self.model[-1]

    def forward(self, x):
        if isinstance(x, (list, tuple)):
            from automl_nb.models.yolo.predict import detect_images

            return detect_images(self, x, self.image_size, self.box_score_threshold, self.nms_iou_threshold,
                                 label_offset=1)
        return self.raw_outputs(x)

    def raw_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The head's raw outputs for a batch ``[B, 3, H, W]`` (sides multiples of 32)."""
        height, width = x.shape[-2:]
        if height % MAX_STRIDE or width % MAX_STRIDE:
            raise ValueError(f"yolov5 input sides must be multiples of {MAX_STRIDE}, got {height}x{width}")
        outputs: list[torch.Tensor | None] = []
        for index, (source, layer) in enumerate(zip(self.sources, self.model)):
            if source != -1:  # Concat and Detect take a list of earlier outputs
                x = [x if s == -1 else outputs[s] for s in source]
            x = layer(x)
            outputs.append(x if index in self._kept else None)
        return x


def _as_tuple(source: Source) -> tuple[int, ...]:
    return source if isinstance(source, tuple) else (source,)


def build_yolov5(*, num_classes: int, pretrained: bool, model_size: str | None = None,
                 image_size: int | None = None, box_score_threshold: float | None = None,
                 nms_iou_threshold: float | None = None, weights_path: str | None = None,
                 **_: object) -> YoloV5:
    """Build YOLOv5; options left as None take their defaults from the hyperparameter table.

    Args:
        num_classes: object classes.
        pretrained: load a YOLOv5 v6/v7 checkpoint from ``weights_path`` or the local cache
            (:func:`~automl_nb.models.yolo.weights.cached_weights_path`), downloading the v7.0
            release file there first when it is missing and the host answers (:mod:`.download`).
        model_size, image_size, box_score_threshold, nms_iou_threshold: see :class:`YoloV5`.
        weights_path: a local checkpoint to load when ``pretrained``.

    Raises:
        TrialError: ``pretrained`` and no checkpoint file (nor a reachable host), a failed download
            or sha256 check, or a file not of this size.
        ValueError: bad ``model_size`` or ``num_classes``.

    Example:
        >>> build_yolov5(num_classes=2, pretrained=False, model_size="small").head.num_classes
        2
    """
    from automl_nb.spec import DETECTION, default_value

    def option(name: str, value):
        return default_value(name, DETECTION, "yolov5") if value is None else value

    model = YoloV5(num_classes, option("model_size", model_size), image_size=option("image_size", image_size),
                   box_score_threshold=option("box_score_threshold", box_score_threshold),
                   nms_iou_threshold=option("nms_iou_threshold", nms_iou_threshold))
    if pretrained:
        from automl_nb.models.yolo.download import fetch_release_file
        from automl_nb.models.yolo.weights import cached_weights_path, load_pretrained

        path = weights_path or cached_weights_path(model.model_size)
        if weights_path is None:
            fetch_release_file(path)  # into the hub cache when missing and the release host answers
        load_pretrained(model, path)
    return model


register_model("yolov5", "detection")(build_yolov5)

# The resolved parameters a yolov5 model is built with; at inference the last three may
# change (settings.json), model_size may not (it fixes the architecture).
YOLO_MODEL_OPTIONS = ("model_size", "image_size", "box_score_threshold", "nms_iou_threshold")


def yolo_from_params(params: Mapping[str, Any], num_classes: int, *, pretrained: bool = False,
                     **options: Any) -> YoloV5:
    """The yolov5 model that resolved training ``params`` describe.

    Args:
        params: resolved training parameters (``model_size``, ``image_size``,
            ``box_score_threshold``, ``nms_iou_threshold``).
        num_classes: object classes in the data.
        pretrained: load pretrained weights (see :func:`build_yolov5`); False when rebuilding
            a checkpoint.
        **options: inference settings that replace the trained ones: ``image_size``,
            ``box_score_threshold``, ``nms_iou_threshold`` (and ``model_size`` equal to the
            trained one).

    Raises:
        ValueError: an option that is not in :data:`YOLO_MODEL_OPTIONS`.
        SpecError: another ``model_size`` than the trained one.

    Example:
        >>> model = yolo_from_params(params, num_classes=3, box_score_threshold=0.5)
    """
    unknown = sorted(set(options) - set(YOLO_MODEL_OPTIONS))
    if unknown:
        raise ValueError(f"options {unknown} are not yolov5 options; allowed: {', '.join(YOLO_MODEL_OPTIONS)}")
    if options.get("model_size", params["model_size"]) != params["model_size"]:
        raise SpecError(f"model_size: {options['model_size']!r} differs from the trained {params['model_size']!r}; "
                        f"the size of a trained model cannot change")
    return build_yolov5(num_classes=num_classes, pretrained=pretrained,
                        **{**{key: params[key] for key in YOLO_MODEL_OPTIONS}, **options})


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def _yolo_default(name: str):
    from automl_nb.spec import DETECTION, default_value

    return default_value(name, DETECTION, "yolov5")
