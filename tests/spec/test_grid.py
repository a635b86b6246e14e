"""The one parser of "MxN" grid strings (tile_grid_size)."""

import pytest

from automl_nb.errors import SpecError
from automl_nb.spec import resolve_parameters
from automl_nb.spec.grid import parse_grid


def test_parse_grid_reads_columns_then_rows():
    assert parse_grid("3x2") == (3, 2)
    assert parse_grid(" 1 X 4 ") == (1, 4)


@pytest.mark.parametrize("grid", ["3", "0x2", "3x0", "ax2", "3x2x1", "-1x2", "", "3,2", None, 32])
def test_a_bad_grid_is_a_clear_error(grid):
    with pytest.raises(SpecError, match="tile_grid_size.*'MxN'"):
        parse_grid(grid)


def test_the_table_canonicalises_a_grid_with_the_same_parser():
    params = resolve_parameters("image_object_detection", {"tile_grid_size": " 3 X 2"})
    assert params["tile_grid_size"] == "3x2"
    with pytest.raises(SpecError, match="tile_grid_size: '0x2' is not a grid size; allowed: 'MxN'"):
        resolve_parameters("image_object_detection", {"tile_grid_size": "0x2"})
