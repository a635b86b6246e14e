import pytest

from automl_nb.data.synthetic import make_dataset


@pytest.fixture(scope="session")
def multiclass_data(tmp_path_factory):
    """80 images of 32 px: circles, squares and triangles on textured backgrounds."""
    return make_dataset("image_classification", 80, 32, tmp_path_factory.mktemp("multiclass"), seed=0)


@pytest.fixture(scope="session")
def multilabel_data(tmp_path_factory):
    return make_dataset("image_classification_multilabel", 120, 32, tmp_path_factory.mktemp("multilabel"), seed=0)


# Small images, random weights, a high rate for training from scratch: a trial takes seconds.
FAST = {
    "model_name": "resnet18", "use_pretrained_model": False, "number_of_epochs": 8,
    "training_batch_size": 16, "validation_batch_size": 64, "learning_rate": 0.05,
    "warmup_cosine_lr_warmup_epochs": 1, "training_crop_size": 28,
    "validation_resize_size": 32, "validation_crop_size": 28, "random_seed": 0,
    "early_stopping": False,
}
