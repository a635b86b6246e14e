"""Azure's base64 scoring request: parsing, and errors naming the entry (answering one: tests/explain)."""

import base64
import json

import pytest

from automl_nb.errors import DataError
from automl_nb.infer.request import parse_request
from automl_nb.testing import png_bytes, scoring_request


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_plain_and_json_entries_decode_to_the_same_bytes():
    png = png_bytes(0)
    explained = json.dumps({"image_base64": _b64(png), "model_explainability": True,
                            "xai_parameters": {"xai_algorithm": "xrai"}})
    plain, rich = parse_request(json.dumps(scoring_request(_b64(png), explained)))
    assert plain.image == rich.image == png
    assert (plain.explain, rich.explain) == (False, True)
    assert rich.xai_parameters == {"xai_algorithm": "xrai"}


@pytest.mark.parametrize("body, message", [
    ("not json", "scoring request: not JSON"),
    ({"data": []}, 'expected {"input_data"'),
    ({"input_data": {"columns": ["img"], "data": ["x"]}}, "input_data.columns is ['img']; allowed: [\"image\"]"),
    (scoring_request(), "must be a non-empty list"),
    (scoring_request(_b64(b"ok"), "%%%"), "input_data.data[1]: not base64"),
    (scoring_request(json.dumps({"image": "x"})), "input_data.data[0]: keys ['image']; allowed: image_base64"),
    (scoring_request(json.dumps({"image_base64": "aGk=", "model_explainability": "yes"})),
     "input_data.data[0].model_explainability: 'yes'; allowed: true or false"),
    (scoring_request(7), "input_data.data[0]: a int is not an image"),
])
def test_malformed_requests_name_what_is_wrong(body, message):
    with pytest.raises(DataError) as info:
        parse_request(body)
    assert message in str(info.value)
