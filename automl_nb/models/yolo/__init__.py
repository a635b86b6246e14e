"""YOLOv5 for object detection, written for this project (no ultralytics code).

- :mod:`.blocks`: Conv, C3, SPPF; :mod:`.head`: the anchor head; :mod:`.model`: the network
  and its registered builder (``model_name: yolov5``);
- :mod:`.loss`: objectness/class BCE, CIoU box loss, anchor matching;
- :mod:`.decode`: raw outputs to boxes, NMS; :mod:`.predict`: images in, detections in
  their pixels out (letterbox and back);
- :mod:`.weights`: pretrained YOLOv5 v6/v7 checkpoints from a local file; :mod:`.download`:
  the v7.0 release files into the torch hub cache.

Importing this package registers ``yolov5`` in :mod:`automl_nb.models.registry`.
"""

from automl_nb.models.yolo.model import (
    MAX_DETECTIONS, SIZES, YOLO_MODEL_OPTIONS, YoloV5, build_yolov5, network_size, yolo_from_params,
)

__all__ = ["MAX_DETECTIONS", "SIZES", "YOLO_MODEL_OPTIONS", "YoloV5", "build_yolov5", "network_size",
           "yolo_from_params"]
