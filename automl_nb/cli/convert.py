"""``automl-nb convert coco|voc|folder``: a COCO, Pascal VOC or ImageFolder dataset to JSONL.

    automl-nb convert coco ANNOTATIONS.json [--images-dir DIR] [--task TASK] [-o OUT] [--mltable]
    automl-nb convert voc XML_FOLDER [--images-dir DIR] [-o OUT] [--mltable]
    automl-nb convert folder ROOT [-o OUT] [--mltable]

The conversions themselves are :mod:`automl_nb.data.convert`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from automl_nb.data.convert import coco_to_jsonl, folder_to_jsonl, voc_to_jsonl
from automl_nb.data.mltable import write_mltable
from automl_nb.errors import DataError
from automl_nb.spec.tasks import DETECTION, MULTICLASS, SEGMENTATION


def add_convert_arguments(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``coco``, ``voc`` and ``folder`` sub-commands to an argparse subparsers object.

    Each sets ``convert_format`` and ``func=run_convert`` on the parsed namespace.

    Example:
        >>> parser = argparse.ArgumentParser(prog="automl-nb convert")
        >>> add_convert_arguments(parser.add_subparsers(dest="format", required=True))
        >>> run_convert(parser.parse_args(["folder", "data/pets"]))
    """
    coco = subparsers.add_parser(
        "coco",
        help="COCO annotations JSON -> JSONL (detection or instance segmentation)",
        description="Convert a COCO annotations file to Azure image JSONL.",
    )
    coco.add_argument("input", help="COCO annotations JSON file")
    coco.add_argument(
        "--images-dir",
        help="folder the COCO file_name paths are relative to (default: the JSON file's folder)",
    )
    coco.add_argument("--task", choices=[DETECTION, SEGMENTATION], default=DETECTION, help=f"default: {DETECTION}")
    _add_output_arguments(coco, "the images folder")
    coco.set_defaults(convert_format="coco", func=run_convert)

    voc = subparsers.add_parser(
        "voc",
        help="Pascal VOC XML folder -> object detection JSONL",
        description="Convert Pascal VOC XML annotations (searched recursively) to Azure image JSONL.",
    )
    voc.add_argument("input", help="folder of VOC .xml annotation files")
    voc.add_argument("--images-dir", help="folder holding the images (default: the annotations folder)")
    voc.add_argument("--task", choices=[DETECTION], default=DETECTION, help="only object detection")
    _add_output_arguments(voc, "the images folder")
    voc.set_defaults(convert_format="voc", func=run_convert)

    folder = subparsers.add_parser(
        "folder",
        help="ImageFolder tree root/<class>/<image> -> multiclass JSONL",
        description="Convert an ImageFolder tree (class = first folder under the root) to Azure image JSONL.",
    )
    folder.add_argument("input", help="root folder whose sub-folders are the classes")
    folder.add_argument("--task", choices=[MULTICLASS], default=MULTICLASS, help="only multiclass classification")
    _add_output_arguments(folder, "the root folder")
    folder.set_defaults(convert_format="folder", func=run_convert)


def _add_output_arguments(parser: argparse.ArgumentParser, default_folder: str) -> None:
    parser.add_argument("--output", "-o", help=f"JSONL file to write (default: labels.jsonl in {default_folder})")
    parser.add_argument("--mltable", action="store_true", help="also write an MLTable file next to the output")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")


def run_convert(args: argparse.Namespace) -> Path:
    """Run the conversion that :func:`add_convert_arguments` parsed.

    Returns:
        Path of the JSONL written.

    Raises:
        DataError: the output exists without ``--overwrite``, or the conversion fails.
    """
    source = Path(args.input)
    if args.convert_format == "coco":
        images_dir = Path(args.images_dir) if args.images_dir else source.parent
    elif args.convert_format == "voc":
        images_dir = Path(args.images_dir) if args.images_dir else source
    else:
        images_dir = source
    output = Path(args.output) if args.output else images_dir / "labels.jsonl"
    if output.exists() and not args.overwrite:
        raise DataError(f"{output} already exists; pass --overwrite to replace it")
    if args.convert_format == "coco":
        written = coco_to_jsonl(source, images_dir, output, task=args.task)
    elif args.convert_format == "voc":
        written = voc_to_jsonl(source, images_dir, output)
    elif args.convert_format == "folder":
        written = folder_to_jsonl(source, output)
    else:
        raise DataError(f"unknown convert format {args.convert_format!r}; expected coco, voc or folder")
    if args.mltable:
        write_mltable(written.parent, written.name)
    return written
