"""Azure's scoring request: ``{"input_data": {"columns": ["image"], "data": [...]}}`` (SPEC section 9).

Each entry of ``data`` is a base64-encoded image (plain, or broken into lines as
``base64.encodebytes`` writes it), or a JSON string
``{"image_base64": ..., "model_explainability": true, "xai_parameters": {...}}`` that asks for
explanations of that image too.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from automl_nb.errors import DataError
from automl_nb.spec.explain import MODEL_EXPLAINABILITY

_ITEM_KEYS = ("image_base64", MODEL_EXPLAINABILITY.name, "xai_parameters")


@dataclass(frozen=True)
class ScoringItem:
    """One image of a request.

    Attributes:
        image: the encoded image bytes (PNG, JPEG...).
        explain: whether explanations were asked for (``model_explainability``).
        xai_parameters: the request's ``xai_parameters`` as given (validated where used).
    """

    image: bytes
    explain: bool = False
    xai_parameters: Mapping[str, Any] = field(default_factory=dict)


def parse_request(request: str | bytes | Mapping[str, Any]) -> list[ScoringItem]:
    """The images of a scoring request, in order.

    Args:
        request: the request body, as JSON text or already parsed.

    Returns:
        One :class:`ScoringItem` per entry of ``input_data.data``.

    Raises:
        DataError: the body is not JSON, lacks ``input_data`` / ``columns`` / ``data``, or an
            entry is not a base64 image or a JSON object with ``image_base64`` (names the entry).

    Example:
        >>> body = {"input_data": {"columns": ["image"], "data": [base64.b64encode(png).decode()]}}
        >>> parse_request(body)[0].explain
        False
    """
    if isinstance(request, (str, bytes)):
        try:
            request = json.loads(request)
        except ValueError as error:
            raise DataError(f"scoring request: not JSON ({error})") from error
    if not isinstance(request, Mapping) or not isinstance(request.get("input_data"), Mapping):
        raise DataError('scoring request: expected {"input_data": {"columns": ["image"], "data": [...]}}')
    input_data = request["input_data"]
    if list(input_data.get("columns", [])) != ["image"]:
        raise DataError(f'scoring request: input_data.columns is {input_data.get("columns")!r}; allowed: ["image"]')
    data = input_data.get("data")
    if not isinstance(data, list) or not data:
        raise DataError("scoring request: input_data.data must be a non-empty list of images")
    return [_item(entry, f"input_data.data[{i}]") for i, entry in enumerate(data)]


def _item(entry: Any, where: str) -> ScoringItem:
    if isinstance(entry, list) and len(entry) == 1:  # pandas "split" orient: one row per image
        entry = entry[0]
    if not isinstance(entry, str):
        raise DataError(f"{where}: a {type(entry).__name__} is not an image; allowed: a base64 string, "
                        f"or a JSON string with image_base64")
    if entry.lstrip().startswith("{"):
        try:
            fields = json.loads(entry)
        except ValueError as error:
            raise DataError(f"{where}: not valid JSON ({error})") from error
        unknown = sorted(set(fields) - set(_ITEM_KEYS))
        if unknown or "image_base64" not in fields:
            raise DataError(f"{where}: keys {sorted(fields)}; allowed: {', '.join(_ITEM_KEYS)} "
                            f"(image_base64 required)")
        explain = fields.get(MODEL_EXPLAINABILITY.name, MODEL_EXPLAINABILITY.default)
        if not isinstance(explain, bool):
            raise DataError(f"{where}.model_explainability: {explain!r}; allowed: true or false")
        xai = fields.get("xai_parameters") or {}
        if not isinstance(xai, Mapping):
            raise DataError(f"{where}.xai_parameters: {xai!r}; allowed: a JSON object")
        return ScoringItem(_decode(fields["image_base64"], f"{where}.image_base64"), explain, dict(xai))
    return ScoringItem(_decode(entry, where))


def _decode(text: Any, where: str) -> bytes:
    """Base64 text to bytes; line breaks are allowed, any other character outside the alphabet is not.

    ``base64.encodebytes`` (how seed 002 and Azure's notebooks build requests) breaks its output
    into lines of 76 characters: those line breaks (and other whitespace) are dropped before a
    strict decode.
    """
    if not isinstance(text, str):
        raise DataError(f"{where}: a {type(text).__name__} is not base64 text")
    joined = "".join(text.split())
    if not joined:
        raise DataError(f"{where}: empty; allowed: a base64-encoded image")
    try:
        return base64.b64decode(joined, validate=True)
    except (binascii.Error, ValueError) as error:
        raise DataError(f"{where}: not base64 ({error})") from error
