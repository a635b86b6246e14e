import pytest
import torch

from automl_nb.errors import TrialError
from automl_nb.models import registry, weights
from automl_nb.models.registry import build_model, freeze_prefixes, get_model_info, list_models, register_model


def test_every_classification_model_of_the_spec_is_registered():
    from automl_nb.spec import MODELS

    for task in ("image_classification", "image_classification_multilabel"):
        assert sorted(MODELS[task]) == list_models("classification")


def test_duplicate_name_raises():
    with pytest.raises(ValueError, match="already registered"):
        register_model("resnet18", "classification")(lambda **_: None)


def test_unknown_model_names_the_known_ones():
    with pytest.raises(KeyError, match="resnet18"):
        get_model_info("resnet19")


@pytest.mark.parametrize("name", ["mobilenetv2", "resnet18", "seresnext", "resnest50", "vits16r224"])
def test_models_build_with_random_weights_and_give_one_logit_per_class(name):
    model = build_model(name, num_classes=5, pretrained=False, crop_size=32).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 5)


@pytest.mark.parametrize("name", list_models("classification"))
def test_freeze_table_names_real_parameters(name):
    # Every entry of the layer table must match some parameter of the model, or
    # layers_to_freeze would silently freeze nothing.
    model = build_model(name, num_classes=2, pretrained=False, crop_size=32)
    names = [n for n, _ in model.named_parameters()]
    for layer in get_model_info(name).freeze_layers:
        prefixes = layer if isinstance(layer, tuple) else (layer,)
        assert any(n.startswith(prefixes) for n in names), (name, layer)


def test_freeze_prefixes_counts_layers_in_table_order():
    assert freeze_prefixes("resnet18", 2) == ("conv1.", "bn1.", "layer1.")
    assert freeze_prefixes("seresnext", 2) == ("layer0.", "layer1.")
    assert freeze_prefixes("resnet18", None) == ()
    with pytest.raises(ValueError, match="layers_to_freeze: 6"):
        freeze_prefixes("resnet18", 6)


@pytest.mark.timeout(60)  # the point: it fails, it does not hang
@pytest.mark.parametrize("name", ["resnet18", "mobilenetv2", "seresnext", "vitb16r224"])
def test_missing_pretrained_weights_fail_fast_with_advice(name, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty torchvision cache
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))  # an empty timm cache
    monkeypatch.setattr(weights, "host_reachable", lambda url, timeout=3.0: False)
    with pytest.raises(TrialError, match="use_pretrained_model: false"):
        build_model(name, num_classes=2, pretrained=True)


def test_cached_torchvision_weights_are_loaded(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(weights, "host_reachable", lambda url, timeout=3.0: False)
    reference = torchvision.models.resnet18()
    url = torchvision.models.ResNet18_Weights.DEFAULT.url
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(reference.state_dict(), cache / url.rsplit("/", 1)[1])
    model = build_model("resnet18", num_classes=3, pretrained=True)
    assert torch.equal(model.conv1.weight, reference.conv1.weight)
    assert model.fc.out_features == 3
