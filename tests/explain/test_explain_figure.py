"""The 2x2 explanation figure: what each panel shows, the top-30% mask, PNG and base64 forms."""

import base64
import io

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image
from torchvision.transforms.v2 import functional as F

from automl_nb.explain import Explainer
from automl_nb.explain import visualise

RESIZE, CROP = 40, 32


def tiny_classifier():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))


@pytest.fixture(scope="module")
def photo():
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (60, 50, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def result(photo):
    explainer = Explainer(tiny_classifier(), ["a", "b", "c"], "image_classification", resize_size=RESIZE,
                          crop_size=CROP)
    return explainer.explain(photo, "integrated_gradients", n_steps=4)


def panel(fig, k):
    return np.asarray(fig.axes[k].images[0].get_array())


def test_first_panel_is_the_validation_crop_of_the_input(result, photo):
    expected = F.center_crop(F.resize(F.pil_to_tensor(photo), RESIZE, antialias=True), CROP)
    expected = expected.permute(1, 2, 0).numpy() / 255.0
    fig = result.figure()
    assert panel(fig, 0).shape == (CROP, CROP, 3)
    assert np.abs(panel(fig, 0) - expected).max() < 1e-5
    assert [ax.get_title() for ax in fig.axes[:4]] == list(visualise.PANEL_TITLES)


def test_second_panel_is_the_heatmap_on_bgyw_with_white_highest(result):
    fig = result.figure()
    heat = panel(fig, 1)
    assert heat.shape == (CROP, CROP) and 0.0 <= heat.min() and heat.max() == 1.0
    assert fig.axes[1].images[0].get_cmap().name == "bgyw"
    assert np.allclose(visualise.colour_map()(1.0)[:3], 1.0, atol=0.02)  # white = highest
    importance = np.abs(result.attributions.sum(0))
    assert heat[np.unravel_index(importance.argmax(), importance.shape)] == 1.0
    assert heat[np.unravel_index(importance.argmin(), importance.shape)] < 0.05


def test_third_panel_blends_the_coloured_heatmap_over_the_input(result):
    fig = result.figure()
    coloured = visualise.colour_map()(panel(fig, 1))[..., :3]
    assert np.allclose(panel(fig, 2), 0.5 * panel(fig, 0) + 0.5 * coloured)


def test_fourth_panel_keeps_the_top_30_percent_of_pixels(result):
    fig = result.figure()
    masked, image = panel(fig, 3), panel(fig, 0)
    kept = np.any(masked > 0, axis=-1)
    assert kept.mean() == pytest.approx(0.3, abs=0.005)
    assert np.array_equal(masked[kept], image[kept]) and not masked[~kept].any()
    importance = np.abs(result.attributions.sum(0))
    assert importance[kept].min() >= importance[~kept].max()  # the kept ones are the most important


def test_top_mask_keeps_30_percent_even_when_regions_tie():
    # An XRAI-like map: four constant regions; the cut falls inside a region.
    attributions = np.zeros((3, 20, 20), dtype=np.float32)
    attributions[:, :10, :10], attributions[:, :10, 10:], attributions[:, 10:, :10] = 3.0, 2.0, 1.0
    mask = visualise.top_mask(attributions, "xrai")
    assert mask.sum() == 120
    assert mask[:10, :10].all() and mask[:10, 10:].sum() == 20 and not mask[10:].any()


def test_xrai_heat_ranks_regions_and_gradient_heat_uses_magnitude():
    attributions = np.zeros((3, 4, 4), dtype=np.float32)
    attributions[:, 0, 0], attributions[:, 1, 1] = -5.0, 1.0
    # Integrated gradients and friends: |sum over channels|, so the negative pixel is the most important...
    assert visualise.importance(attributions, "integrated_gradients")[0, 0] == 15.0
    # ...XRAI maps are region scores: the lowest region is the least important.
    xrai = visualise.heat(attributions, "xrai")
    assert xrai[0, 0] == 0.0 and xrai[1, 1] == 1.0


def test_png_base64_and_notebook_display(result):
    png = result.to_png()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert Image.open(io.BytesIO(png)).size == (700, 700)
    assert base64.b64decode(result.to_base64()) == png
    assert result._repr_png_() == png
    assert "integrated_gradients" in repr(result) and "3x32x32" in repr(result)


def test_figure_leaves_pyplot_alone(result):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    result.figure()
    result.to_png()
    assert plt.get_fignums() == before  # no figure registered with pyplot: nothing leaks into a notebook
