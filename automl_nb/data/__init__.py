"""Image data: JSONL/MLTable reading, COCO/VOC/ImageFolder conversion, splits, toy datasets.

Torch datasets and transforms live in :mod:`automl_nb.data.datasets` and
:mod:`automl_nb.data.transforms` and are not imported here, so this package stays light.
"""

from automl_nb.data.convert import coco_to_jsonl, folder_to_jsonl, voc_to_jsonl
from automl_nb.data.images import image_info, image_size, open_image
from automl_nb.data.jsonl import read_jsonl, record_from_json, write_jsonl
from automl_nb.data.mltable import is_mltable_folder, jsonl_paths, load_records, write_mltable
from automl_nb.data.records import ImageRecord, ObjectLabel, class_names
from automl_nb.data.split import check_minimum_images, label_counts, split_records, warn_small_labels
from automl_nb.data.synthetic import make_dataset

__all__ = [
    "ImageRecord",
    "ObjectLabel",
    "check_minimum_images",
    "class_names",
    "coco_to_jsonl",
    "folder_to_jsonl",
    "image_info",
    "image_size",
    "is_mltable_folder",
    "jsonl_paths",
    "label_counts",
    "load_records",
    "make_dataset",
    "open_image",
    "read_jsonl",
    "record_from_json",
    "split_records",
    "voc_to_jsonl",
    "warn_small_labels",
    "write_jsonl",
    "write_mltable",
]
