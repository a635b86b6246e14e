"""Read and write Azure ML image JSONL (one image a line) as :class:`ImageRecord` rows.

Accepted label shapes (SPEC 3), with the leniencies we chose where the seed is loose:

- multiclass: a string (a JSON number is taken as its text, e.g. ``3`` -> ``"3"``);
- multilabel: a list of strings, or a string holding a JSON list (``'["a", "b"]'``, as a
  table column may store it). A plain string is rejected rather than split on commas,
  since class names may contain commas; an empty list means "no label". Repeats are dropped;
- detection / instance segmentation: a list of objects; a single object is taken as a list
  of one (the seed's example shows that form), and a string holding JSON is parsed.
  Coordinates may be numbers or strings; ``isCrowd`` may be 0/1, "0"/"1", a bool or
  "true"/"false". For segmentation the box is derived from the polygon when absent.

Coordinates within 1e-6 outside [0, 1] (float noise from converters) are clipped; anything
further out is an error. A file that is not one object a line but a stream of pretty-printed
objects (as the seed prints them) is read too. Every error names ``file:line``.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
import re
import warnings
from pathlib import Path
from typing import Iterable, Sequence

from automl_nb._atomic import atomic_write_text
from automl_nb.data.images import LOCAL_PROTOCOLS, image_info, protocol
from automl_nb.data.records import ImageRecord, ObjectLabel, is_url
from automl_nb.errors import DataError
from automl_nb.spec.inputs import DEFAULT_TARGET_COLUMN_NAME
from automl_nb.spec.tasks import DETECTION, MULTICLASS, MULTILABEL, SEGMENTATION, check_task

COORDINATE_TOLERANCE = 1e-6
_BOX_KEYS = ("topX", "topY", "bottomX", "bottomY")


def read_jsonl(
    path: str | os.PathLike,
    task: str,
    target_column_name: str = DEFAULT_TARGET_COLUMN_NAME,
    check_images: bool = True,
    *,
    problems: list[str] | None = None,
) -> list[ImageRecord]:
    """Read an Azure image JSONL file.

    Args:
        path: local path or fsspec URL of the JSONL file.
        task: one of the four image task names; decides the label shape expected.
        target_column_name: the key holding the label.
        check_images: check each local (or ``file://``/``memory://``) image exists and
            its header is readable, and fill width/height/format from it. Remote images
            (http, s3, ...) are not checked here: that would cost a round trip per image;
            they fail with a DataError naming the URL when first opened.
        problems: collect instead of stopping at the first problem: each one is appended
            to this list as a ``"file:line: ..."`` line (the message a DataError would
            have), reading goes on, and the records that were read are returned.

    Returns:
        One :class:`ImageRecord` per line, with ``image_url`` resolved (relative paths
        against the JSONL file's folder) and ``source`` set to ``"file:line"``. With
        ``problems``, only the lines without a problem (none when the file is unreadable).

    Raises:
        SpecError: unknown task.
        DataError: (without ``problems``) missing/empty file, malformed JSON, missing keys,
            a label of the wrong shape, bad coordinates or polygons, missing/corrupt images.
            The message names ``file:line``.

    Example:
        >>> records = read_jsonl("data/train/labels.jsonl", "image_classification")
        >>> found = []
        >>> records = read_jsonl("data/train/labels.jsonl", "image_classification", problems=found)
    """
    task = check_task(task)
    name = str(path)
    # With ``problems``: (line, problem) pairs, so malformed lines and bad records come in line order.
    found: list[tuple[int, str]] | None = None if problems is None else []
    try:
        text = _read_text(name)
        rows = _parse_rows(text, name, found)
        if not rows and not found:
            raise DataError(f"{name}: no records (the file is empty)")
    except DataError as error:
        if problems is None:
            raise
        problems.append(str(error))
        return []
    base = _folder_of(name)
    records = []
    lines = text.splitlines()
    ends = [next_line - 1 for next_line, _ in rows[1:]] + [len(lines)]  # a record's last line
    for (line, row), last in zip(rows, ends):
        try:
            records.append(record_from_json(row, task, target_column_name, base, f"{name}:{line}"))
        except DataError as error:
            at = fault_line(lines, line, last, str(error), target_column_name) if last > line else line
            if at != line:  # a pretty-printed record: name the line at fault, not the record's first
                error = DataError(str(error).replace(f"{name}:{line}:", f"{name}:{at}:", 1))
            if found is None:
                raise error
            found.append((at, str(error)))
    if found:
        problems.extend(problem for _, problem in sorted(found, key=lambda pair: pair[0]))
    if check_images:
        records = _check_images(records, name, problems)
    return records


def record_from_json(
    row: dict,
    task: str,
    target_column_name: str = DEFAULT_TARGET_COLUMN_NAME,
    base: str | None = None,
    source: str = "",
) -> ImageRecord:
    """Turn one parsed JSONL object into an :class:`ImageRecord` (no image check).

    Args:
        row: the parsed JSON object.
        task: image task name.
        target_column_name: the key holding the label.
        base: folder (path or URL) that a relative ``image_url`` is resolved against;
            ``None`` leaves it relative to the working directory.
        source: ``"file:line"`` used in errors and kept on the record.

    Raises:
        DataError: on any malformed field, naming ``source``.
    """
    where = source or "<record>"
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    url = row.get("image_url")
    if not isinstance(url, str) or not url.strip():
        raise DataError(f"{where}: missing image_url (keys present: {_keys(row)})")
    if target_column_name not in row:
        raise DataError(
            f"{where}: missing target column {target_column_name!r} "
            f"(target_column_name; keys present: {_keys(row)})"
        )
    width, height, image_format = _parse_details(row.get("image_details"), where)
    return ImageRecord(
        image_url=resolve_url(url.strip(), base),
        label=_parse_label(row[target_column_name], task, where),
        width=width,
        height=height,
        image_format=image_format,
        source=source,
    )


def write_jsonl(
    records: Iterable[ImageRecord],
    path: str | os.PathLike,
    root: str | os.PathLike | None = None,
) -> Path:
    """Write records as Azure JSONL (atomically).

    Args:
        records: the records to write.
        path: local output file.
        root: folder that local image paths are made relative to when under it;
            defaults to the output file's folder (so the file reads back the same).

    Returns:
        The path written.
    """
    path = Path(path)
    root = path.parent if root is None else root
    lines = [json.dumps(r.to_json_line(root), ensure_ascii=False) for r in records]
    return atomic_write_text(path, "\n".join(lines) + "\n")


def resolve_url(url: str, base: str | None) -> str:
    """Resolve an ``image_url`` against the JSONL folder ``base``.

    URLs with a scheme and absolute paths are kept as they are; a relative path becomes
    an absolute local path (or a URL when ``base`` is a URL).
    """
    if is_url(url) or os.path.isabs(url) or base is None:
        return url
    if is_url(base):
        scheme, rest = base.split("://", 1)
        joined = posixpath.normpath(posixpath.join(rest or "/", url))
        return f"{scheme}://{joined}"
    return os.path.normpath(os.path.join(base, url))


# ---- reading -------------------------------------------------------------------------

def _read_text(name: str) -> str:
    if is_url(name):
        import fsspec

        try:
            with fsspec.open(name, "rb") as f:
                data = f.read()
        except FileNotFoundError as exc:
            raise DataError(f"JSONL file not found: {name}") from exc
        except Exception as exc:
            raise DataError(f"cannot read JSONL file {name}: {exc}") from exc
    else:
        if not os.path.isfile(name):
            raise DataError(f"JSONL file not found: {name}")
        data = Path(name).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{name}: not UTF-8 text ({exc})") from exc


def _folder_of(name: str) -> str:
    if is_url(name):
        return name.rsplit("/", 1)[0]
    return os.path.dirname(os.path.abspath(name))


def _parse_rows(text: str, name: str, malformed: list[tuple[int, str]] | None = None) -> list[tuple[int, object]]:
    """Parse one object a line; fall back to a stream of multi-line objects.

    A malformed line raises, or with ``malformed`` is appended to it as (line, problem) and skipped.
    In a stream of pretty-printed objects (its first line is no JSON by itself) the error names the
    line where the stream stops parsing, and the objects before it are kept.
    """
    rows = []
    first = tried_stream = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        first = first or number
        try:
            rows.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            if not tried_stream:
                tried_stream = True
                stream, stream_error = _parse_stream(text)
                if stream_error is None:
                    return stream
                if number == first:  # pretty-printed: the stream knows where it breaks
                    at = stream_error.lineno
                    _malformed(name, at, stream_error, text.splitlines()[at - 1], malformed)
                    return stream
            _malformed(name, number, exc, line, malformed)
    return rows


def _malformed(name: str, number: int, exc: json.JSONDecodeError, line: str,
               malformed: list[tuple[int, str]] | None) -> None:
    """Raise the malformed-JSON error of ``line``, or with ``malformed`` append it there."""
    error = DataError(f"{name}:{number}: malformed JSON: {exc.msg} (column {exc.colno}) near {_excerpt(line, exc.colno)}")
    if malformed is None:
        raise error from exc
    malformed.append((number, str(error)))


def _excerpt(line: str, column: int, before: int = 40, after: int = 20) -> str:
    """The text of ``line`` around ``column`` (1-based), quoted, with ... where it is cut."""
    start, end = max(0, column - 1 - before), column - 1 + after
    return ("..." if start else "") + repr(line[start:end]) + ("..." if end < len(line) else "")


def _parse_stream(text: str) -> tuple[list[tuple[int, object]], json.JSONDecodeError | None]:
    """Parse concatenated (pretty-printed) JSON objects: those read, and the error that stopped it (or None)."""
    decoder = json.JSONDecoder()
    rows = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            return rows, None
        try:
            obj, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:  # its lineno counts from the start of the text
            return rows, exc
        rows.append((text.count("\n", 0, position) + 1, obj))
        position = end


def fault_line(lines: Sequence[str], first: int, last: int, message: str, target_column_name: str) -> int:
    """The line of a multi-line record (``first``..``last``, 1-based) that an error is about.

    Best effort from the message: the key it names (``topX``, ``polygon``, ``isCrowd``...), looked
    up inside "object N" of the label when it names one; ``first`` when nothing fits.
    """
    keys = re.findall(r"\b(image_url|image_details|label|topX|topY|bottomX|bottomY|isCrowd|polygon)\b",
                      message.split(": ", 1)[-1])
    start = first
    objects = re.search(r"object (\d+)", message)
    label = _line_of(lines, f'"{target_column_name}"', first, last)
    if objects and label:  # the label's N-th object: the N-th line opening one after the label's key
        opened = [n for n in range(label, last + 1) if "{" in lines[n - 1]]
        index = int(objects.group(1)) - 1
        start = opened[index] if index < len(opened) else first
    for key in keys:
        found = _line_of(lines, f'"{key}"', start, last)
        if found:
            return found
    return start


def _line_of(lines: Sequence[str], token: str, first: int, last: int) -> int | None:
    return next((n for n in range(first, last + 1) if token in lines[n - 1]), None)


def _keys(row: dict) -> str:
    return ", ".join(map(str, row)) or "none"


def _parse_details(details: object, where: str) -> tuple[int | None, int | None, str | None]:
    if details is None:
        return None, None, None
    if not isinstance(details, dict):
        raise DataError(f"{where}: image_details must be an object, got {details!r}")
    sizes = []
    for key in ("width", "height"):
        value = details.get(key)
        sizes.append(None if value is None else _parse_pixels(value, key, where))
    image_format = details.get("format")
    image_format = str(image_format).lower() if image_format else None
    return sizes[0], sizes[1], image_format


def _parse_pixels(value: object, key: str, where: str) -> int:
    text = str(value).strip().lower()
    if text.endswith("px"):
        text = text[:-2].strip()
    try:
        number = float(text)
    except ValueError:
        number = -1.0
    if isinstance(value, bool) or number <= 0 or not number.is_integer():
        raise DataError(f"{where}: image_details {key} must be a positive size like '640px', got {value!r}")
    return int(number)


def _parse_label(value: object, task: str, where: str):
    if task == MULTICLASS:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise DataError(
                f"{where}: label for {MULTICLASS} must be a class name string, got "
                f"{_describe(value)}{_task_hint(value)}"
            )
        return value
    if task == MULTILABEL:
        return _parse_multilabel(value, where)
    return _parse_objects(value, task, where)


def _parse_multilabel(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
    if not isinstance(value, list):
        raise DataError(
            f"{where}: label for {MULTILABEL} must be a list of class names, got {_describe(value)}"
        )
    names: list[str] = []
    for item in value:
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            item = str(item)
        if not isinstance(item, str) or not item.strip():
            raise DataError(
                f"{where}: label for {MULTILABEL} must be a list of class names, "
                f"found {_describe(item)} in it{_task_hint(item)}"
            )
        if item not in names:
            names.append(item)
    return tuple(names)


def _parse_objects(value: object, task: str, where: str) -> tuple[ObjectLabel, ...]:
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise DataError(
            f"{where}: label for {task} must be a list of objects with label, topX, topY, "
            f"bottomX, bottomY, got {_describe(value)}"
        )
    objects = []
    for index, item in enumerate(value, start=1):
        objects.append(_parse_object(item, task, f"{where}: object {index}"))
    return tuple(objects)


def _parse_object(item: object, task: str, where: str) -> ObjectLabel:
    if not isinstance(item, dict):
        raise DataError(
            f"{where}: expected an object with label, topX, topY, bottomX, bottomY, got "
            f"{_describe(item)}{_task_hint(item)}"
        )
    name = item.get("label")
    if isinstance(name, (int, float)) and not isinstance(name, bool):
        name = str(name)
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"{where}: missing or empty 'label' (keys present: {_keys(item)})")
    polygon = None
    if item.get("polygon") is not None:
        polygon = _parse_polygon(item["polygon"], where)
    elif task == SEGMENTATION:
        raise DataError(f"{where}: {SEGMENTATION} needs a 'polygon' for each object")
    present = [k for k in _BOX_KEYS if item.get(k) is not None]
    if len(present) == 4:
        box = tuple(_coordinate(item[k], k, where) for k in _BOX_KEYS)
    elif not present and polygon is not None:
        xs = [v for ring in polygon for v in ring[0::2]]
        ys = [v for ring in polygon for v in ring[1::2]]
        box = (min(xs), min(ys), max(xs), max(ys))
    else:
        missing = [k for k in _BOX_KEYS if k not in present]
        raise DataError(f"{where}: missing box coordinate(s) {', '.join(missing)}")
    _check_area(box, where)
    return ObjectLabel(name, *box, is_crowd=_parse_crowd(item.get("isCrowd", 0), where), polygon=polygon)


def _coordinate(value: object, key: str, where: str) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: {key} must be a number, got {value!r}") from None
    if not math.isfinite(number) or not -COORDINATE_TOLERANCE <= number <= 1 + COORDINATE_TOLERANCE:
        pixels = ""
        if 1 < number < math.inf:
            pixels = "; it looks like pixels: divide by the image width (x) or height (y)"
        raise DataError(
            f"{where}: {key}={value} is outside [0, 1] (coordinates are fractions of the image size){pixels}"
        )
    return min(max(number, 0.0), 1.0)


def _check_area(box: tuple[float, float, float, float], where: str) -> None:
    top_x, top_y, bottom_x, bottom_y = box
    if bottom_x <= top_x:
        raise DataError(f"{where}: box has zero area: topX={top_x:g} bottomX={bottom_x:g} (needs topX < bottomX)")
    if bottom_y <= top_y:
        raise DataError(f"{where}: box has zero area: topY={top_y:g} bottomY={bottom_y:g} (needs topY < bottomY)")


def _parse_polygon(value: object, where: str) -> tuple[tuple[float, ...], ...]:
    if isinstance(value, list) and value and not isinstance(value[0], list):
        value = [value]  # a single flat ring
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: polygon must be a list of rings [[x1, y1, x2, y2, ...]], got {value!r}")
    rings = []
    for number, ring in enumerate(value, start=1):
        if not isinstance(ring, list):
            raise DataError(f"{where}: polygon ring {number} must be a list of numbers, got {ring!r}")
        if len(ring) % 2:
            raise DataError(f"{where}: polygon ring {number} has an odd number of coordinates ({len(ring)})")
        if len(ring) < 6:
            raise DataError(f"{where}: polygon ring {number} has {len(ring) // 2} points, needs at least 3")
        key = f"polygon ring {number} value"
        rings.append(tuple(_coordinate(v, key, where) for v in ring))
    return tuple(rings)


def _parse_crowd(value: object, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("0", "1", "true", "false"):
        return text in ("1", "true")
    raise DataError(f"{where}: isCrowd must be 0, 1, true or false, got {value!r}")


def _describe(value: object) -> str:
    if value is None:
        return "null"
    kind = {list: "a list", dict: "an object", str: "a string", bool: "a bool"}
    return f"{kind.get(type(value), type(value).__name__)} {json.dumps(value)[:60]}"


def _task_hint(value: object) -> str:
    if isinstance(value, list):
        return f" (a list is the {MULTILABEL} or detection shape; check the task)"
    if isinstance(value, dict):
        return f" (objects with boxes are the {DETECTION} shape; check the task)"
    return ""


# ---- image checks --------------------------------------------------------------------

def _check_images(records: list[ImageRecord], name: str, problems: list[str] | None = None) -> list[ImageRecord]:
    """Check images exist and are readable; fill in sizes; real sizes win over details.

    With ``problems``, a bad image's record is dropped and its problem appended.
    """
    checked = []
    disagree = []
    for record in records:
        if protocol(record.image_url) not in LOCAL_PROTOCOLS:
            checked.append(record)
            continue
        try:
            width, height, image_format = image_info(record.image_url, verify=True)
        except DataError as exc:
            if problems is None:
                raise DataError(f"{record.source}: {exc}") from exc
            problems.append(f"{record.source}: {exc}")
            continue
        given = ((record.width, width), (record.height, height))
        if any(said is not None and said != real for said, real in given):
            disagree.append(f"{record.source} says {record.width}x{record.height}, image is {width}x{height}")
        checked.append(
            ImageRecord(
                record.image_url,
                record.label,
                width,
                height,
                record.image_format or image_format or None,
                record.source,
            )
        )
    if disagree:
        warnings.warn(
            f"{name}: {len(disagree)} image_details disagree with the image files "
            f"(first: {disagree[0]}); using the sizes read from the images",
            stacklevel=3,
        )
    return checked
