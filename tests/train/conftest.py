import pytest

from automl_nb.data.synthetic import make_dataset


@pytest.fixture(scope="session")
def multiclass_data(tmp_path_factory):
    """80 images of 32 px: circles, squares and triangles on textured backgrounds."""
    return make_dataset("image_classification", 80, 32, tmp_path_factory.mktemp("multiclass"), seed=0)


@pytest.fixture(scope="session")
def multilabel_data(tmp_path_factory):
    return make_dataset("image_classification_multilabel", 120, 32, tmp_path_factory.mktemp("multilabel"), seed=0)

