"""Seed 002's scoring request, built with ``base64.encodebytes`` (line breaks), is parsed and answered
as 002 expects; base64 with anything else outside the alphabet is still refused."""

import base64
import json

import numpy as np
import pytest

from automl_nb.errors import DataError
from automl_nb.infer.request import parse_request
from automl_nb.testing import png_bytes, scoring_request


def test_encodebytes_line_breaks_in_both_request_forms():
    image = png_bytes(0, (64, 64))  # over 76 base64 characters: several lines
    wrapped = base64.encodebytes(image).decode("utf-8")
    assert wrapped.count("\n") > 1
    explained = json.dumps({"image_base64": wrapped, "model_explainability": True})
    crlf = wrapped.replace("\n", "\r\n")  # MIME's line ends
    plain, rich, windows = parse_request(json.dumps(scoring_request(wrapped, explained, crlf)))
    assert plain.image == rich.image == windows.image == image
    assert (plain.explain, rich.explain) == (False, True)


@pytest.mark.parametrize("entry, message", [
    ("aGVs\nbG8-", "input_data.data[0]: not base64"),        # '-' is base64url's, not base64's
    ("aGVs bG8=%", "input_data.data[0]: not base64"),
    ("aGVsbG8", "input_data.data[0]: not base64"),             # padding missing
    ("\n \n", "input_data.data[0]: empty; allowed: a base64-encoded image"),
    (json.dumps({"image_base64": "aGVs\nbG8=\n!"}), "input_data.data[0].image_base64: not base64"),
])
def test_garbage_is_still_refused(entry, message):
    with pytest.raises(DataError) as info:
        parse_request(scoring_request(entry))
    assert str(info.value).startswith(message)


def test_the_002_request_is_answered_as_002_expects(tmp_path, monkeypatch):
    """002, «Создание объяснений для прогнозов» and «Интерпретация визуализаций»/«Интерпретация атрибуции»:
    the request and the decoding copied from the seed; Azure's endpoint call is our ``score_request``."""
    import torch
    from PIL import Image

    from automl_nb.explain import score_request
    from automl_nb.infer import Predictor

    monkeypatch.chdir(tmp_path)
    (tmp_path / "test_image.jpg").write_bytes(png_bytes(3))
    torch.manual_seed(0)
    torch.set_num_threads(1)  # a tiny network on 32 px: one thread is fastest (see tests/explain)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()
    predictor = Predictor(model, "image_classification", ["circle", "square"],
                          {"validation_resize_size": 32, "validation_crop_size": 32})

    # ---- from 002 ----
    def read_image(image_path):
        with open(image_path, "rb") as f:
            return f.read()

    sample_image = "./test_image.jpg"

    # Define explainability (XAI) parameters
    model_explainability = True
    xai_parameters = {"xai_algorithm": "xrai",
                      "n_steps": 50,
                      "xrai_fast": True,
                      "visualizations": True,
                      "attributions": True}

    # Create request json
    request_json = {"input_data": {"columns": ["image"],
                                   "data": [json.dumps({"image_base64": base64.encodebytes(read_image(sample_image)).decode("utf-8"),
                                                        "model_explainability": model_explainability,
                                                        "xai_parameters": xai_parameters})],
                                   }
                    }

    request_file_name = "sample_request_data.json"

    with open(request_file_name, "w") as request_file:
        json.dump(request_json, request_file)
    # ---- 002's ml_client.online_endpoints.invoke(request_file=...), here: ----
    with open(request_file_name) as request_file:
        resp = json.dumps(score_request(predictor, request_file.read()))
    # ---- from 002 ----
    predictions = json.loads(resp)

    from io import BytesIO

    def base64_to_img(base64_img_str):
        base64_img = base64_img_str.encode("utf-8")
        decoded_img = base64.b64decode(base64_img)
        return BytesIO(decoded_img).getvalue()

    # For Multi-class classification:
    # Decode and visualize base64 image string for explanations for first input image
    img_bytes = base64_to_img(predictions[0]["visualizations"])
    image = Image.open(BytesIO(img_bytes))
    # Selecting attribution matrix for first input image
    attributions = np.array(predictions[0]["attributions"])
    # ---- end of 002 ----

    assert image.format == "PNG" and min(image.size) > 64  # the 2x2 grid of SPEC section 10
    valid_crop_size = 32  # 002: "use the exact valid_crop_size of the chosen model" (ours: 32)
    assert attributions.shape == (3, valid_crop_size, valid_crop_size) and np.isfinite(attributions).all()
    assert predictions[0]["labels"] == ["circle", "square"] and sum(predictions[0]["probs"]) == pytest.approx(1)
