"""open_image / image_size over local paths and fsspec URLs, and their errors."""

from __future__ import annotations

import pytest
from PIL import Image

from automl_nb.data.images import image_info, image_size, open_image
from automl_nb.errors import DataError


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P"])
def test_open_image_gives_loaded_rgb(tmp_path, image_file, mode):
    path = image_file(tmp_path / f"{mode}.png", size=(7, 5), mode=mode, color=(10, 20, 30, 255)[: len(mode)] if mode in ("RGB", "RGBA") else 3)
    image = open_image(path)
    assert image.mode == "RGB" and image.size == (7, 5)
    assert image.getpixel((0, 0)) is not None  # loaded, file closed


def test_image_size_reads_the_header(tmp_path, image_file):
    path = image_file(tmp_path / "a.jpg", size=(31, 17))
    assert image_size(path) == (31, 17)
    assert image_info(str(path)) == (31, 17, "jpeg")


def test_memory_url(memory_fs):
    with memory_fs.open("/imgs/x.png", "wb") as f:
        Image.new("L", (9, 4), 200).save(f, format="PNG")
    assert image_size("memory://imgs/x.png") == (9, 4)
    image = open_image("memory://imgs/x.png")
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (200, 200, 200)


def test_missing_and_corrupt_images_name_the_url(tmp_path, memory_fs):
    with pytest.raises(DataError, match=r"image not found: .*nope\.png"):
        open_image(tmp_path / "nope.png")
    with pytest.raises(DataError, match=r"image not found: memory://imgs/nope\.png"):
        image_size("memory://imgs/nope.png")
    (tmp_path / "bad.jpg").write_bytes(b"\x00garbage" * 50)
    with pytest.raises(DataError, match=r"cannot read image .*bad\.jpg"):
        image_size(tmp_path / "bad.jpg")
    with pytest.raises(DataError, match=r"cannot read image .*bad\.jpg"):
        open_image(tmp_path / "bad.jpg")


def test_truncated_image_fails_on_full_decode(tmp_path):
    Image.effect_noise((64, 64), 50).convert("RGB").save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    assert image_size(tmp_path / "cut.png") == (64, 64)  # the header alone is fine
    with pytest.raises(DataError, match=r"cannot read image .*cut\.png"):
        open_image(tmp_path / "cut.png")
