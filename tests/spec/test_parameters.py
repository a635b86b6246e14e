"""The hyperparameter table: ranges, choices, applicability, defaults, cross-field rules, SageMaker keys."""

import pytest

from automl_nb.errors import SpecError
from automl_nb.spec import (
    ADVANCED_SETTINGS, DETECTION, FREEZE_LAYER_ORDER, MODELS, MULTICLASS, MULTILABEL, PARAMETERS,
    SEGMENTATION, TASKS, check_parameters, default_value, get_parameter, model_family, parameters_for,
    resolve_parameters, uses_sagemaker_ssd,
)


def _where(param):
    """A task and a model the parameter applies to (avoiding seresnext's fixed sizes)."""
    for task in param.tasks:
        for model in MODELS[task]:
            if model != "seresnext" and param.applies_to(task, model):
                return task, model
    raise AssertionError(param.name)


def _bound_cases():
    cases = []
    for param in PARAMETERS.values():
        if param.kind not in ("int", "float"):
            continue
        step = 1 if param.kind == "int" else 1e-9
        if param.minimum is not None:
            inside = param.minimum + step if param.minimum_open else param.minimum
            outside = param.minimum if param.minimum_open else param.minimum - step
            # An alias must also fit its key's range: overlap_threshold's (0, ... is [0.1, ... there
            # (tests/spec/test_sagemaker_mode.py).
            if not (param.maps_to and not PARAMETERS[param.maps_to].in_range(inside)):
                cases.append(pytest.param(param.name, inside, outside, id=f"{param.name}-min"))
        if param.maximum is not None:
            inside = param.maximum - step if param.maximum_open else param.maximum
            outside = param.maximum if param.maximum_open else param.maximum + step
            cases.append(pytest.param(param.name, inside, outside, id=f"{param.name}-max"))
    return cases


@pytest.mark.parametrize("name, inside, outside", _bound_cases())
def test_numeric_bounds(name, inside, outside):
    param = PARAMETERS[name]
    task, model = _where(param)
    values = check_parameters(task, {name: inside, "model_name": model})
    assert values[name] == inside
    assert type(values[name]) is (int if param.kind == "int" else float)
    with pytest.raises(SpecError) as info:
        check_parameters(task, {name: outside, "model_name": model})
    message = str(info.value)
    assert message.startswith(f"{name}: {outside!r} is out of range; allowed: {param.kind}")


def test_every_numeric_parameter_is_bounded_or_documented():
    unbounded = [p.name for p in PARAMETERS.values() if p.kind in ("int", "float") and p.minimum is None]
    assert unbounded == []


@pytest.mark.parametrize("name", [p.name for p in PARAMETERS.values() if p.kind in ("int", "float")])
def test_numeric_wrong_type(name):
    task, model = _where(PARAMETERS[name])
    for bad in ("abc", True, [1]):
        with pytest.raises(SpecError, match=f"^{name}: .* is not an? {PARAMETERS[name].kind}; allowed"):
            check_parameters(task, {name: bad, "model_name": model})


def test_int_parameters_accept_integral_floats_and_strings():
    values = check_parameters(MULTICLASS, {"number_of_epochs": 3.0, "training_batch_size": "16"})
    assert values == {"number_of_epochs": 3, "training_batch_size": 16}
    with pytest.raises(SpecError, match="number_of_epochs: 2.5 is not an int"):
        check_parameters(MULTICLASS, {"number_of_epochs": 2.5})


def test_float_parameters_accept_yaml_exponent_strings():
    assert check_parameters(MULTICLASS, {"weight_decay": "1e-4"}) == {"weight_decay": 1e-4}
    with pytest.raises(SpecError, match="learning_rate: nan is not a float"):
        check_parameters(MULTICLASS, {"learning_rate": float("nan")})


def test_message_format_of_out_of_range():
    with pytest.raises(SpecError) as info:
        resolve_parameters(MULTICLASS, {"learning_rate": 1.5})
    assert str(info.value) == "learning_rate: 1.5 is out of range; allowed: float in [0, 1]"


@pytest.mark.parametrize("name", [p.name for p in PARAMETERS.values() if p.kind == "choice"])
def test_choices(name):
    param = PARAMETERS[name]
    task, model = _where(param)
    for value in param.allowed_choices(task):
        given = {name: value} if name == "model_name" else {name: value, "model_name": model}
        assert check_parameters(task, given)[name] == value
    invalid = 99 if all(isinstance(v, int) for v in param.allowed_choices(task)) else "not_a_choice"
    given = {name: invalid} if name == "model_name" else {name: invalid, "model_name": model}
    with pytest.raises(SpecError, match=f"^{name}: {invalid!r} .*allowed"):
        check_parameters(task, given)


@pytest.mark.parametrize("name, spelling, value", [
    ("optimizer", "Adam", "adam"), ("optimizer", "ADAMW", "adamw"),
    ("learning_rate_scheduler", "WarmupCosine", "warmup_cosine"), ("learning_rate_scheduler", "Step", "step"),
    ("model_size", "ExtraLarge", "extra_large"), ("validation_metric_type", "CocoVoc", "coco_voc"),
    ("weighted_loss", "2", 2), ("weighted_loss", 1.0, 1),
])
def test_choice_spellings(name, spelling, value):
    task, model = _where(PARAMETERS[name])
    assert check_parameters(task, {name: spelling, "model_name": model})[name] == value


def test_image_type_is_case_insensitive():
    assert check_parameters(SEGMENTATION, {"image_type": "PNG"}) == {"image_type": "png"}


def test_sagemaker_optimizers_only_for_detection():
    assert check_parameters(DETECTION, {"optimizer": "rmsprop"}) == {"optimizer": "rmsprop"}
    assert check_parameters(DETECTION, {"optimizer": "adadelta"}) == {"optimizer": "adadelta"}
    with pytest.raises(SpecError, match="optimizer: 'rmsprop' is not allowed.*only for image_object_detection"):
        check_parameters(MULTICLASS, {"optimizer": "rmsprop"})


BOOL_TRUE = [True, 1, "true", "True", "1"]
BOOL_FALSE = [False, 0, "false", "False", "0"]


@pytest.mark.parametrize("name", [p.name for p in PARAMETERS.values() if p.kind == "bool"])
def test_bools(name):
    param = PARAMETERS[name]
    task, model = _where(param)
    for value in BOOL_TRUE:
        assert check_parameters(task, {name: value, "model_name": model})[name] is True
    for value in BOOL_FALSE:
        assert check_parameters(task, {name: value, "model_name": model})[name] is False
    for bad in (2, "maybe", 0.5):
        with pytest.raises(SpecError, match=f"^{name}: .* is not a bool; allowed"):
            check_parameters(task, {name: bad, "model_name": model})


@pytest.mark.parametrize("name", ["log_training_metrics", "log_validation_loss"])
def test_enable_disable(name):
    assert check_parameters(MULTICLASS, {name: "Enable"})[name] is True
    assert check_parameters(MULTICLASS, {name: "Disable"})[name] is False
    with pytest.raises(SpecError, match="'Enable' or 'Disable'"):
        check_parameters(MULTICLASS, {name: "Maybe"})


def test_enable_is_only_for_log_keys():
    with pytest.raises(SpecError, match="early_stopping: 'Enable' is not a bool"):
        check_parameters(MULTICLASS, {"early_stopping": "Enable"})


# ----- string parameters
@pytest.mark.parametrize("value, canonical", [("3x2", "3x2"), ("3X2", "3x2"), (" 10 x 1 ", "10x1")])
def test_tile_grid_size_valid(value, canonical):
    assert check_parameters(DETECTION, {"tile_grid_size": value}) == {"tile_grid_size": canonical}


@pytest.mark.parametrize("value", ["3", "3x", "0x2", "3x0", "-1x2", "axb", "3x2x1", "(3, 2)"])
def test_tile_grid_size_invalid(value):
    with pytest.raises(SpecError, match="tile_grid_size: .* is not a grid size; allowed: 'MxN'"):
        check_parameters(DETECTION, {"tile_grid_size": value})


def test_tiling_rejected_for_segmentation():
    with pytest.raises(SpecError) as info:
        check_parameters(SEGMENTATION, {"tile_grid_size": "3x2"})
    message = str(info.value)
    assert message.startswith("tile_grid_size: '3x2' does not apply to image_instance_segmentation")
    assert "image_object_detection" in message


def test_tiling_works_for_yolov5():
    assert resolve_parameters(DETECTION, {"model_name": "yolov5", "tile_grid_size": "2x2"})["tile_grid_size"] == "2x2"


def test_checkpoint_run_id():
    assert check_parameters(MULTICLASS, {"checkpoint_run_id": "run_42"}) == {"checkpoint_run_id": "run_42"}
    assert check_parameters(MULTICLASS, {"checkpoint_run_id": 42}) == {"checkpoint_run_id": "42"}
    with pytest.raises(SpecError, match="checkpoint_run_id: '' is empty"):
        check_parameters(MULTICLASS, {"checkpoint_run_id": "  "})


def test_advanced_settings_json_string_and_dict():
    values = check_parameters(DETECTION, {"advanced_settings": '{"apply_mosaic_for_yolo": false}\n'})
    assert values == {"advanced_settings": {"apply_mosaic_for_yolo": False}}
    values = check_parameters(DETECTION, {"advanced_settings": {"stream_image_files": "true"}})
    assert values == {"advanced_settings": {"stream_image_files": True}}
    resolved = resolve_parameters(DETECTION, {"advanced_settings": '{"apply_automl_train_augmentations": false}'})
    assert resolved["advanced_settings"] == {
        "apply_mosaic_for_yolo": True, "apply_automl_train_augmentations": False, "stream_image_files": False,
        "skip_unreadable_images": False, "max_cache_gb": None, "shared_cache_url": None,
        "box_batch_size_per_image": None}


def test_roi_sampling_takes_a_positive_integer_for_detectors_only():
    assert check_parameters(DETECTION, {"advanced_settings": {"box_batch_size_per_image": 64}}) == {
        "advanced_settings": {"box_batch_size_per_image": 64}}
    for bad in (0, -3, 6.5, True, "64"):
        with pytest.raises(SpecError, match=r"advanced_settings.box_batch_size_per_image: .* is not a positive "
                                            r"integer; allowed: an integer >= 1 or null"):
            check_parameters(DETECTION, {"advanced_settings": {"box_batch_size_per_image": bad}})
    with pytest.raises(SpecError, match="advanced_settings.box_batch_size_per_image: 64 does not apply"):
        check_parameters(MULTICLASS, {"advanced_settings": {"box_batch_size_per_image": 64}})


def test_advanced_settings_errors():
    with pytest.raises(SpecError, match="advanced_settings.apply_mosaic_for_yoloo: .*did you mean 'apply_mosaic_for_yolo'"):
        check_parameters(DETECTION, {"advanced_settings": '{"apply_mosaic_for_yoloo": false}'})
    with pytest.raises(SpecError, match="advanced_settings: .* is not valid JSON"):
        check_parameters(DETECTION, {"advanced_settings": "{apply_mosaic_for_yolo: false"})
    with pytest.raises(SpecError, match="advanced_settings: .* is not a JSON object"):
        check_parameters(DETECTION, {"advanced_settings": "[1, 2]"})
    with pytest.raises(SpecError, match="advanced_settings.stream_image_files: 'sometimes' is not a bool"):
        check_parameters(DETECTION, {"advanced_settings": {"stream_image_files": "sometimes"}})


@pytest.mark.parametrize("bound", [0, -1, "lots", True, float("inf")])
def test_the_cache_bound_is_a_positive_number_or_null(bound):
    assert check_parameters(MULTICLASS, {"advanced_settings": {"max_cache_gb": "2.5"}}) == {
        "advanced_settings": {"max_cache_gb": 2.5}}
    assert check_parameters(MULTICLASS, {"advanced_settings": {"max_cache_gb": None}}) == {
        "advanced_settings": {"max_cache_gb": None}}
    with pytest.raises(SpecError, match=r"advanced_settings.max_cache_gb: .* is not a positive number; "
                                        r"allowed: a number > 0 or null"):
        check_parameters(MULTICLASS, {"advanced_settings": {"max_cache_gb": bound}})


def test_augmentation_switches_only_for_detection_and_segmentation():
    with pytest.raises(SpecError, match="advanced_settings.apply_automl_train_augmentations: False does not apply"):
        check_parameters(MULTICLASS, {"advanced_settings": {"apply_automl_train_augmentations": False}})
    assert check_parameters(MULTICLASS, {"advanced_settings": {"stream_image_files": True}})
    assert {s.name for s in ADVANCED_SETTINGS} == {
        "apply_mosaic_for_yolo", "apply_automl_train_augmentations", "stream_image_files",
        "skip_unreadable_images", "max_cache_gb", "shared_cache_url", "box_batch_size_per_image"}


# ----- unknown keys and applicability
def test_unknown_key_suggests_nearest():
    with pytest.raises(SpecError) as info:
        resolve_parameters(MULTICLASS, {"learning_rat": 0.1})
    assert str(info.value) == "learning_rat: 0.1: unknown training parameter; did you mean 'learning_rate'?"
    with pytest.raises(SpecError, match="did you mean 'number_of_epochs'"):
        resolve_parameters(DETECTION, {"number_of_epoch": 3})


def test_get_parameter():
    assert get_parameter("momentum").kind == "float"
    with pytest.raises(SpecError, match="unknown training parameter"):
        get_parameter("zzz")


def test_training_crop_size_on_detection_names_key_and_classification():
    with pytest.raises(SpecError) as info:
        resolve_parameters(DETECTION, {"training_crop_size": 224})
    message = str(info.value)
    assert message.startswith("training_crop_size: 224 does not apply to image_object_detection")
    assert "applies only to image_classification, image_classification_multilabel" in message


@pytest.mark.parametrize("key, value", [("image_size", 640), ("model_size", "small"), ("multi_scale", 1)])
def test_yolov5_only_keys(key, value):
    assert key in resolve_parameters(DETECTION, {"model_name": "yolov5", key: value})
    with pytest.raises(SpecError) as info:
        resolve_parameters(DETECTION, {"model_name": "fasterrcnn_resnet50_fpn", key: value})
    message = str(info.value)
    assert message.startswith(f"{key}: {value!r} does not apply to model fasterrcnn_resnet50_fpn")
    assert "with model yolov5" in message
    with pytest.raises(SpecError, match=f"{key}: .* does not apply to model fasterrcnn_resnet50_fpn"):
        resolve_parameters(DETECTION, {key: value})  # the default model


@pytest.mark.parametrize("key", ["min_size", "max_size", "box_detections_per_image"])
def test_rcnn_keys_not_for_yolov5(key):
    with pytest.raises(SpecError, match=f"{key}: 100 does not apply to model yolov5.*not with yolov5"):
        resolve_parameters(DETECTION, {"model_name": "yolov5", key: 100})
    assert resolve_parameters(SEGMENTATION, {key: 100})[key] == 100


def test_maskrcnn_keys_only_for_segmentation():
    with pytest.raises(SpecError, match="mask_pixel_score_threshold: 0.4 does not apply to image_object_detection"):
        resolve_parameters(DETECTION, {"mask_pixel_score_threshold": 0.4})


def test_model_name_must_fit_task():
    with pytest.raises(SpecError, match="model_name: 'yolov5' is not a model for image_classification"):
        resolve_parameters(MULTICLASS, {"model_name": "yolov5"})


def test_check_parameters_without_model_checks_task_only():
    assert check_parameters(DETECTION, {"model_size": "small"}) == {"model_size": "small"}
    with pytest.raises(SpecError, match="does not apply to model retinanet_resnet50_fpn"):
        check_parameters(DETECTION, {"model_size": "small"}, model_name="retinanet_resnet50_fpn")


def test_none_means_not_set():
    assert check_parameters(MULTICLASS, {"learning_rate": None}) == {}
    assert resolve_parameters(MULTICLASS, {"learning_rate": None})["learning_rate"] == 0.01


def test_not_a_mapping():
    with pytest.raises(SpecError, match="training_parameters: .* is not a mapping"):
        check_parameters(MULTICLASS, [("learning_rate", 0.1)])


# ----- defaults
@pytest.mark.parametrize("name, task, model, expected", [
    ("learning_rate", MULTICLASS, None, 0.01),
    ("learning_rate", MULTICLASS, "vits16r224", 0.0125),
    ("learning_rate", MULTICLASS, "vitb16r224", 0.0125),
    ("learning_rate", MULTICLASS, "vitl16r224", 0.001),
    ("learning_rate", MULTILABEL, "resnet50", 0.035),
    ("learning_rate", MULTILABEL, "vitb16r224", 0.025),
    ("learning_rate", MULTILABEL, "vitl16r224", 0.002),
    ("learning_rate", DETECTION, None, 0.005),
    ("learning_rate", DETECTION, "yolov5", 0.01),
    ("learning_rate", SEGMENTATION, None, 0.005),
    ("number_of_epochs", MULTICLASS, None, 15),
    ("number_of_epochs", DETECTION, "yolov5", 30),
    ("number_of_epochs", DETECTION, "retinanet_resnet50_fpn", 15),
    ("training_batch_size", MULTICLASS, None, 78),
    ("training_batch_size", MULTILABEL, "vits16r224", 128),
    ("training_batch_size", MULTICLASS, "vitb16r224", 48),
    ("training_batch_size", MULTICLASS, "vitl16r224", 10),
    ("training_batch_size", DETECTION, None, 2),
    ("training_batch_size", DETECTION, "yolov5", 16),
    ("training_batch_size", SEGMENTATION, None, 2),
    ("validation_batch_size", MULTICLASS, "vitb16r224", 48),
    ("validation_batch_size", DETECTION, None, 1),
    ("validation_batch_size", DETECTION, "yolov5", 16),
    ("validation_batch_size", SEGMENTATION, None, 1),
    ("box_score_threshold", DETECTION, None, 0.3),
    ("box_score_threshold", DETECTION, "yolov5", 0.1),
    ("optimizer", MULTICLASS, None, "sgd"),
    ("learning_rate_scheduler", DETECTION, None, "warmup_cosine"),
    ("weight_decay", MULTICLASS, None, 1e-4),
    ("nesterov", MULTICLASS, None, True),
    ("ams_gradient", MULTICLASS, None, False),
    ("early_stopping", DETECTION, None, True),
    ("early_stopping_patience", DETECTION, None, 5),
    ("validation_resize_size", MULTICLASS, None, 256),
    ("validation_crop_size", MULTICLASS, None, 224),
    ("training_crop_size", MULTILABEL, None, 224),
    ("weighted_loss", MULTICLASS, None, 0),
    ("validation_metric_type", DETECTION, None, "voc"),
    ("validation_iou_threshold", SEGMENTATION, None, 0.5),
    ("min_size", DETECTION, None, 600),
    ("max_size", DETECTION, None, 1333),
    ("box_detections_per_image", DETECTION, None, 100),
    ("tile_grid_size", DETECTION, None, None),
    ("tile_overlap_ratio", DETECTION, None, 0.25),
    ("tile_predictions_nms_threshold", DETECTION, None, 0.25),
    ("image_size", DETECTION, "yolov5", 640),
    ("model_size", DETECTION, "yolov5", "medium"),
    ("multi_scale", DETECTION, "yolov5", False),
    ("mask_pixel_score_threshold", SEGMENTATION, None, 0.5),
    ("max_number_of_polygon_points", SEGMENTATION, None, 100),
    ("export_as_image", SEGMENTATION, None, False),
    ("image_type", SEGMENTATION, None, "jpg"),
    ("use_pretrained_model", DETECTION, None, True),
    ("model_name", MULTICLASS, None, "seresnext"),
    ("image_shape", DETECTION, None, 300),
    ("base_network", DETECTION, None, "vgg-16"),
    ("epochs", DETECTION, "yolov5", 30),  # an alias gives our key's default
])
def test_defaults(name, task, model, expected):
    assert default_value(name, task, model) == expected


def test_default_of_key_that_does_not_apply():
    with pytest.raises(SpecError, match="model_size: does not apply to model fasterrcnn_resnet50_fpn"):
        default_value("model_size", DETECTION)


def test_default_values_are_copies():
    settings = default_value("advanced_settings", DETECTION)
    settings["stream_image_files"] = True
    assert default_value("advanced_settings", DETECTION)["stream_image_files"] is False


def test_every_default_passes_its_own_check():
    for param in PARAMETERS.values():
        for task in param.tasks:
            for model in MODELS[task]:
                if not param.applies_to(task, model):
                    continue
                value = param.default_for(task, model)
                if value is not None:
                    assert param.coerce(value, task) == value, (param.name, task, model)


# ----- resolve_parameters
def test_resolve_fills_every_applicable_parameter():
    for task in TASKS:
        for model in MODELS[task]:
            resolved = resolve_parameters(task, {"model_name": model})
            expected = [p.name for p in parameters_for(task, model) if not p.sagemaker]
            assert list(resolved) == expected
            assert resolved["model_name"] == model


def test_resolve_returns_new_dict_and_keeps_given():
    given = {"learning_rate": "0.02", "model_name": "ResNet50"}
    resolved = resolve_parameters(MULTICLASS, given)
    assert given == {"learning_rate": "0.02", "model_name": "ResNet50"}
    assert resolved["learning_rate"] == 0.02 and resolved["model_name"] == "resnet50"


def test_resolve_without_model_uses_default_model():
    assert resolve_parameters(DETECTION, {})["model_name"] == "fasterrcnn_resnet50_fpn"
    assert "min_size" in resolve_parameters(DETECTION, {})


def test_parameters_for():
    names = [p.name for p in parameters_for(DETECTION, "yolov5")]
    assert "model_size" in names and "min_size" not in names and "epochs" not in names
    assert "epochs" in [p.name for p in parameters_for(DETECTION, include_aliases=True)]
    classification = [p.name for p in parameters_for(MULTICLASS)]
    assert "training_crop_size" in classification and "tile_grid_size" not in classification
    assert "image_shape" not in classification
    for param in parameters_for(SEGMENTATION):
        assert param.description


def test_momentum_and_betas_are_accepted_with_any_optimizer():
    resolved = resolve_parameters(MULTICLASS, {"optimizer": "adam", "momentum": 0.5, "nesterov": 0})
    assert resolved["momentum"] == 0.5 and resolved["nesterov"] is False
    resolved = resolve_parameters(MULTICLASS, {"optimizer": "sgd", "beta1": 0.8})
    assert resolved["beta1"] == 0.8


def test_scheduler_keys_accepted_with_either_scheduler():
    resolved = resolve_parameters(MULTICLASS, {"learning_rate_scheduler": "step", "warmup_cosine_lr_cycles": 0.3})
    assert resolved["warmup_cosine_lr_cycles"] == 0.3


# ----- cross-field rules
@pytest.mark.parametrize("model", ["vits16r224", "vitb16r224", "vitl16r224"])
def test_vit_crop_sizes_must_match(model):
    resolved = resolve_parameters(MULTICLASS, {"model_name": model, "training_crop_size": 288, "validation_crop_size": 288})
    assert resolved["training_crop_size"] == 288
    with pytest.raises(SpecError, match="training_crop_size: 288 differs from validation_crop_size 224; ViT"):
        resolve_parameters(MULTILABEL, {"model_name": model, "training_crop_size": 288})


def test_non_vit_crop_sizes_may_differ():
    resolved = resolve_parameters(MULTICLASS, {"model_name": "resnet50", "training_crop_size": 288})
    assert resolved["validation_crop_size"] == 224


@pytest.mark.parametrize("key", ["training_crop_size", "validation_crop_size"])
def test_seresnext_takes_no_arbitrary_size(key):
    assert resolve_parameters(MULTICLASS, {"model_name": "seresnext", key: 224})[key] == 224
    with pytest.raises(SpecError, match=f"{key}: 256 is not allowed for seresnext.*allowed: 224"):
        resolve_parameters(MULTICLASS, {"model_name": "seresnext", key: 256})
    with pytest.raises(SpecError, match=f"{key}: 256 is not allowed for seresnext"):
        resolve_parameters(MULTICLASS, {key: 256})  # seresnext is the default model


def test_seresnext_validation_resize_is_free():
    assert resolve_parameters(MULTICLASS, {"validation_resize_size": 320})["validation_resize_size"] == 320


@pytest.mark.parametrize("model", ["resnet18", "mobilenetv2", "seresnext", "vitb16r224", "resnest50"])
def test_layers_to_freeze_limit(model):
    groups = len(FREEZE_LAYER_ORDER[model_family(model)])
    assert resolve_parameters(MULTICLASS, {"model_name": model, "layers_to_freeze": groups})["layers_to_freeze"] == groups
    with pytest.raises(SpecError, match=f"layers_to_freeze: {groups + 1} is out of range for {model}.*int in \\[1, {groups}\\]"):
        resolve_parameters(MULTICLASS, {"model_name": model, "layers_to_freeze": groups + 1})


def test_freeze_order_matches_spec():
    assert FREEZE_LAYER_ORDER["resnet"][0] == ("conv1.", "bn1.")
    assert FREEZE_LAYER_ORDER["mobilenetv2"][-1] == "features.18."
    assert FREEZE_LAYER_ORDER["vit"][:2] == ("patch_embed", "blocks.0.") and len(FREEZE_LAYER_ORDER["vit"]) == 13
    assert FREEZE_LAYER_ORDER["yolov5"] == tuple(f"model.{i}." for i in range(10))
    assert FREEZE_LAYER_ORDER["fasterrcnn"][0] == "backbone.body.conv1."
    for task in TASKS:
        for model in MODELS[task]:
            assert model_family(model) in FREEZE_LAYER_ORDER


# ----- Amazon SageMaker keys
def test_sagemaker_aliases_map_onto_ours():
    resolved = resolve_parameters(DETECTION, {"epochs": 12, "mini_batch_size": 8, "nms_threshold": 0.45})
    assert resolved["number_of_epochs"] == 12
    assert resolved["training_batch_size"] == 8
    assert resolved["nms_iou_threshold"] == 0.45
    assert "epochs" not in resolved and "mini_batch_size" not in resolved and "nms_threshold" not in resolved


def test_sagemaker_shared_names_are_ours():
    resolved = resolve_parameters(DETECTION, {"learning_rate": 0.001, "momentum": 0.9, "weight_decay": 0.0005,
                                              "optimizer": "rmsprop", "early_stopping": "False",
                                              "early_stopping_patience": 5, "use_pretrained_model": 1})
    assert resolved["optimizer"] == "rmsprop" and resolved["early_stopping"] is False
    assert resolved["use_pretrained_model"] is True
    assert "base_network" not in resolved  # no SageMaker-only key given: Azure behaviour


def test_sagemaker_only_keys_kept_with_their_defaults():
    resolved = resolve_parameters(DETECTION, {"base_network": "ResNet-50", "lr_scheduler_step": "10, 20",
                                              "freeze_layer_pattern": "^(conv1_|conv2_).*"})
    assert resolved["base_network"] == "resnet-50"
    assert resolved["lr_scheduler_step"] == "10,20"
    assert resolved["freeze_layer_pattern"] == "^(conv1_|conv2_).*"
    assert resolved["image_shape"] == 300 and resolved["validation_iou_threshold"] == 0.5
    assert resolved["lr_scheduler_factor"] == 0.1 and resolved["early_stopping_min_epochs"] == 10
    assert resolved["early_stopping_tolerance"] == 0.0 and resolved["label_width"] == 350
    assert resolved["num_classes"] is None and resolved["kv_store"] is None
    assert resolved["number_of_epochs"] == 30  # SageMaker's SSD: its defaults (tests/spec/test_sagemaker_mode.py)


def test_sagemaker_keys_choose_the_ssd_unless_a_model_is_named():
    assert uses_sagemaker_ssd(resolve_parameters(DETECTION, {"epochs": 3}))
    named = resolve_parameters(DETECTION, {"epochs": 3, "model_name": "fasterrcnn_resnet18_fpn"})
    assert not uses_sagemaker_ssd(named) and "image_shape" not in named
    assert named["number_of_epochs"] == 3 and named["lr_scheduler_factor"] == 0.1
    with pytest.raises(SpecError, match="image_shape: 512 sets up SageMaker's SSD detector, but model_name "
                                        "'fasterrcnn_resnet18_fpn' was given"):
        resolve_parameters(DETECTION, {"image_shape": 512, "model_name": "fasterrcnn_resnet18_fpn"})


def test_overlap_threshold_is_the_validation_iou():
    assert resolve_parameters(DETECTION, {"overlap_threshold": 0.7})["validation_iou_threshold"] == 0.7


def test_sagemaker_conflict_with_our_key():
    assert resolve_parameters(DETECTION, {"epochs": 10, "number_of_epochs": 10})["number_of_epochs"] == 10
    with pytest.raises(SpecError, match="epochs: 10 contradicts number_of_epochs: 12"):
        resolve_parameters(DETECTION, {"epochs": 10, "number_of_epochs": 12})
    with pytest.raises(SpecError, match="mini_batch_size: 4 contradicts training_batch_size: 2"):
        resolve_parameters(DETECTION, {"training_batch_size": 2, "mini_batch_size": 4})


@pytest.mark.parametrize("task", [MULTICLASS, MULTILABEL, SEGMENTATION])
def test_sagemaker_keys_rejected_outside_detection(task):
    with pytest.raises(SpecError) as info:
        resolve_parameters(task, {"epochs": 10})
    message = str(info.value)
    assert message.startswith(f"epochs: 10 does not apply to {task}")
    assert "Amazon SageMaker" in message and "use number_of_epochs" in message
    with pytest.raises(SpecError, match="image_shape: 300 does not apply"):
        resolve_parameters(task, {"image_shape": 300})


@pytest.mark.parametrize("key, value, pattern", [
    ("kv_store", "local", "kv_store: 'local' is not allowed; allowed: one of dist_sync, dist_async"),
    ("image_shape", 299, "image_shape: 299 is out of range; allowed: int >= 300"),
    ("lr_scheduler_factor", 1, "lr_scheduler_factor: 1 is out of range; allowed: float in \\(0, 1\\)"),
    ("nms_threshold", 0, "nms_threshold: 0 is out of range; allowed: float in \\(0, 1\\]"),
    ("lr_scheduler_step", "10,x", "lr_scheduler_step: '10,x' is not a list of epochs"),
    ("freeze_layer_pattern", "(conv", "freeze_layer_pattern: '\\(conv' is not a valid regular expression"),
    ("base_network", "vgg16", "did you mean 'vgg-16'"),
    ("label_width", 0, "label_width: 0 is out of range"),
    ("num_classes", 0, "num_classes: 0 is out of range; allowed: int > 0"),
])
def test_sagemaker_values_checked(key, value, pattern):
    with pytest.raises(SpecError, match=pattern):
        resolve_parameters(DETECTION, {key: value})


def test_kv_store_values():
    for value in ("dist_sync", "dist_async"):
        assert resolve_parameters(DETECTION, {"kv_store": value})["kv_store"] == value


def test_parameters_are_read_only():
    with pytest.raises(TypeError):
        PARAMETERS["x"] = None
    with pytest.raises(Exception):
        PARAMETERS["learning_rate"].default = 1
    with pytest.raises(TypeError):
        PARAMETERS["learning_rate"].task_defaults[MULTICLASS] = 1
