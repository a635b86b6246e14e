"""Azure's base64 scoring request: parsing, and errors naming the entry (answering one: tests/explain)."""

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from automl_nb.errors import DataError
from automl_nb.infer.request import parse_request


def _png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _request(*entries):
    return {"input_data": {"columns": ["image"], "data": list(entries)}}


def test_plain_and_json_entries_decode_to_the_same_bytes():
    png = _png(0)
    explained = json.dumps({"image_base64": _b64(png), "model_explainability": True,
                            "xai_parameters": {"xai_algorithm": "xrai"}})
    plain, rich = parse_request(json.dumps(_request(_b64(png), explained)))
    assert plain.image == rich.image == png
    assert (plain.explain, rich.explain) == (False, True)
    assert rich.xai_parameters == {"xai_algorithm": "xrai"}


@pytest.mark.parametrize("body, message", [
    ("not json", "scoring request: not JSON"),
    ({"data": []}, 'expected {"input_data"'),
    ({"input_data": {"columns": ["img"], "data": ["x"]}}, "input_data.columns is ['img']; allowed: [\"image\"]"),
    (_request(), "must be a non-empty list"),
    (_request(_b64(b"ok"), "%%%"), "input_data.data[1]: not base64"),
    (_request(json.dumps({"image": "x"})), "input_data.data[0]: keys ['image']; allowed: image_base64"),
    (_request(json.dumps({"image_base64": "aGk=", "model_explainability": "yes"})),
     "input_data.data[0].model_explainability: 'yes'; allowed: true or false"),
    (_request(7), "input_data.data[0]: a int is not an image"),
])
def test_malformed_requests_name_what_is_wrong(body, message):
    with pytest.raises(DataError) as info:
        parse_request(body)
    assert message in str(info.value)
