"""Attribution methods on a CNN and a ViT: shapes, values, completeness, layers and the XRAI algorithm."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from automl_nb.explain import Explainer
from automl_nb.explain.attributions import attribute, integrated_gradients
from automl_nb.explain.layers import MIN_GRADCAM_SIDE, GuidedBackprop, TokenGrid, gradcam_layer
from automl_nb.explain.xrai import SCALES, segment_masks, xrai_map
from automl_nb.models.registry import build_model
from automl_nb.spec.explain import XAI_ALGORITHMS

CROP = 32
LABELS = ["circle", "square", "triangle"]
FAST = {"integrated_gradients": {"n_steps": 2}, "xrai": {"n_steps": 2}}


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {name: build_model(name, num_classes=3, pretrained=False, crop_size=CROP).eval()
            for name in ("resnet18", "vits16r224")}


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (40, 36, 3), dtype=np.uint8)
    pixels[8:24, 10:26] = (220, 30, 30)  # a red square, so the maps have something to find
    return Image.fromarray(pixels)


@pytest.mark.parametrize("model_name", ["resnet18", "vits16r224"])
@pytest.mark.parametrize("method", XAI_ALGORITHMS)
def test_each_method_gives_a_finite_map_of_the_crop(models, image, model_name, method):
    explainer = Explainer(models[model_name], LABELS, "image_classification", resize_size=CROP, crop_size=CROP)
    result = explainer.explain(image, method, label="square", **FAST.get(method, {}))
    assert result.attributions.shape == (3, CROP, CROP) and result.attributions.dtype == np.float32
    assert np.isfinite(result.attributions).all()
    assert np.ptp(result.attributions) > 0  # a map that varies, not a constant
    assert result.image.shape == (CROP, CROP, 3) and result.label_index == 1


@pytest.mark.parametrize("model_name", ["resnet18", "vits16r224"])
@pytest.mark.parametrize("approximation_method", ["riemann_middle", "gausslegendre"])
def test_integrated_gradients_sum_to_the_score_difference(models, model_name, approximation_method):
    torch.manual_seed(1)
    model, inputs = models[model_name], torch.randn(1, 3, CROP, CROP)
    with torch.no_grad():
        expected = float(model(inputs)[0, 2] - model(torch.zeros_like(inputs))[0, 2])
    attributions = integrated_gradients(model, inputs.requires_grad_(True), 2, n_steps=50,
                                        approximation_method=approximation_method)
    assert float(attributions.sum()) == pytest.approx(expected, rel=0.02, abs=1e-4)


def test_more_integration_steps_change_the_result_on_a_nonlinear_model(models):
    torch.manual_seed(2)
    inputs = torch.randn(1, 3, CROP, CROP)
    few = integrated_gradients(models["vits16r224"], inputs.clone().requires_grad_(True), 0, n_steps=2)
    many = integrated_gradients(models["vits16r224"], inputs.clone().requires_grad_(True), 0, n_steps=6)
    assert not torch.allclose(few, many)  # n_steps reaches captum


@pytest.mark.filterwarnings("ignore:Setting backward hooks on ReLU")
@pytest.mark.parametrize("activation", [nn.ReLU6, nn.GELU])
def test_guided_backprop_rectifies_relu6_and_gelu_as_relu(activation):
    # input -> Linear -> activation -> Linear: the guided input gradient is
    # W1^T relu(W2^T * activation'(z)), computed here by hand.
    torch.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), activation(), nn.Linear(6, 2))
    inputs = torch.randn(1, 3, 2, 2, requires_grad=True)
    z = model[1](inputs.flatten(1)).detach().requires_grad_(True)
    slope, = torch.autograd.grad(activation()(z).sum(), z)
    expected = (torch.relu(model[3].weight[1] * slope) @ model[1].weight).reshape(1, 3, 2, 2)
    guided = GuidedBackprop(model).attribute(inputs, target=1)
    assert torch.allclose(guided, expected, atol=1e-6)
    plain, = torch.autograd.grad(model(inputs)[0, 1], inputs)
    assert not torch.allclose(guided, plain)  # the rule changed something


def test_gradcam_layer_without_a_size_is_the_last_conv_stage_of_cnns(models):
    with gradcam_layer(models["resnet18"]) as layer:
        assert layer is models["resnet18"].layer4
    mobilenet = build_model("mobilenetv2", num_classes=3, pretrained=False)
    with gradcam_layer(mobilenet) as layer:
        assert layer is mobilenet.features[-1]
    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 5, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with gradcam_layer(plain) as layer:
        assert layer is plain[1]
    with pytest.raises(ValueError, match="no Conv2d"):
        with gradcam_layer(nn.Sequential(nn.Flatten(), nn.Linear(3, 2))):
            pass


def _grid_side(model, layer, size):
    sides = []
    handle = layer.register_forward_hook(lambda module, args, out: sides.append(min(out.shape[-2:])))
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    handle.remove()
    return sides[0]


def test_gradcam_layer_is_the_deepest_stage_of_at_least_4x4_for_the_image_size(models):
    resnet = models["resnet18"]
    with gradcam_layer(resnet, image_size=(224, 224)) as layer:
        assert layer is resnet.layer4 and _grid_side(resnet, layer, 224) == 7
    with gradcam_layer(resnet, image_size=(CROP, CROP)) as small:
        assert small is not resnet.layer4 and small is resnet.layer2  # layer4 is 1x1, layer3 2x2 at 32 px
        assert _grid_side(resnet, small, CROP) >= MIN_GRADCAM_SIDE
    mobilenet = build_model("mobilenetv2", num_classes=3, pretrained=False).eval()
    with gradcam_layer(mobilenet, image_size=(CROP, CROP)) as layer:
        assert layer is not mobilenet.features[-1] and _grid_side(mobilenet, layer, CROP) >= MIN_GRADCAM_SIDE
    assert resnet.training is False and len(resnet.layer2._forward_hooks) == 0  # the probe left no trace


@pytest.mark.filterwarnings("ignore:Setting backward hooks on ReLU")
def test_guided_gradcam_at_32px_is_not_guided_backprop_times_a_constant(models, image):
    explainer = Explainer(models["resnet18"], LABELS, "image_classification", resize_size=CROP, crop_size=CROP)
    cam = explainer.explain(image, "guided_gradcam", label="square").attributions.ravel()
    guided = explainer.explain(image, "guided_backprop", label="square").attributions.ravel()
    kept = np.abs(guided) > 1e-8
    ratios = cam[kept] / guided[kept]
    assert np.ptp(ratios) > 1e-3 * np.abs(ratios).max()  # a spatial map, not one scale factor


def test_vit_gradcam_layer_is_the_patch_grid_and_leaves_outputs_unchanged(models):
    vit = models["vits16r224"]
    inputs = torch.randn(2, 3, CROP, CROP)
    grids = []
    with torch.no_grad():
        before = vit(inputs)
        with gradcam_layer(vit) as layer:
            assert isinstance(layer, TokenGrid)
            handle = layer.register_forward_hook(lambda module, args, out: grids.append(out.shape))
            during = vit(inputs)
            handle.remove()
        after = vit(inputs)
    assert grids == [(2, vit.embed_dim, 2, 2)]  # 32 px / 16 px patches
    assert torch.equal(before, during) and torch.equal(before, after)
    assert len(vit.blocks[-1].norm1._forward_hooks) == 0  # removed on exit


def test_vit_guided_gradcam_depends_on_the_class(models, image):
    explainer = Explainer(models["vits16r224"], LABELS, "image_classification", resize_size=CROP, crop_size=CROP)
    maps = [explainer.explain(image, "guided_gradcam", label=k).attributions for k in range(3)]
    assert not np.allclose(maps[0], maps[1]) and not np.allclose(maps[1], maps[2])


def test_attribute_leaves_the_callers_tensor_and_model_gradients_alone(models):
    inputs = torch.randn(1, 3, CROP, CROP)
    rgb = np.zeros((CROP, CROP, 3))
    attribute(models["resnet18"], inputs, 0, "guided_backprop", {}, image=rgb)
    assert inputs.grad is None and not inputs.requires_grad
    assert all(p.grad is None for p in models["resnet18"].parameters())


# ----- XRAI against a plain transcription of PAIR's loops ---------------------------------
def _pair_xrai(attr, masks, fast, min_pixel_diff):
    """PAIR saliency's XRAI._xrai / _xrai_fast with boolean masks and Python loops."""
    output = np.full(attr.shape, -np.inf)
    current = np.zeros(attr.shape, dtype=bool)

    def density(mask):
        return attr[mask].mean() if mask.any() else -np.inf

    if fast:
        for mask in sorted(masks, key=lambda m: -density(m)):
            diff = mask & ~current
            if diff.sum() < min_pixel_diff:
                continue
            output[diff] = density(diff)
            current |= mask
    else:
        remaining = dict(enumerate(masks))
        while True:
            best_gain, best_key = -np.inf, None
            for key in list(remaining):
                diff = remaining[key] & ~current
                if diff.sum() < min_pixel_diff:
                    del remaining[key]
                    continue
                if density(diff) > best_gain:
                    best_gain, best_key = density(diff), key
            if not remaining:
                break
            diff = remaining.pop(best_key) & ~current
            output[diff] = best_gain
            current |= diff
    left = np.isinf(output)
    output[left] = density(left)
    return output


@pytest.mark.parametrize("fast", [True, False])
def test_xrai_regions_match_pairs_algorithm(fast):
    rng = np.random.default_rng(4)
    image = rng.random((24, 20, 3))
    image[4:14, 3:12] = (1.0, 0.1, 0.1)
    masks = segment_masks(image)
    assert len(masks) > 6  # several segments at several scales
    attr = rng.normal(size=(24, 20))
    attr[4:14, 3:12] += 1.0
    boolean = []
    for indices in masks:
        mask = np.zeros(24 * 20, dtype=bool)
        mask[indices] = True
        boolean.append(mask.reshape(24, 20))
    ours = xrai_map(attr, masks, fast=fast, min_new_pixels=3)
    assert np.allclose(ours, _pair_xrai(attr, boolean, fast, 3))
    assert ours[4:14, 3:12].mean() > ours.mean()  # the high-attribution block ranks above the rest


def test_xrai_segments_cover_the_image_and_are_dilated():
    rng = np.random.default_rng(5)
    image = rng.random((32, 32, 3))
    masks = segment_masks(image)
    covered = np.zeros(32 * 32, dtype=bool)
    for indices in masks:
        covered[indices] = True
    assert covered.all()
    # Dilation makes the segments of one scale overlap: their sizes add up to more than the image.
    assert sum(m.size for m in masks) > len(SCALES) * 32 * 32
