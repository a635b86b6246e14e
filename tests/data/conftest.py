"""Small helpers shared by the data tests: images and files written into tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image


def write_image(path: Path, size=(40, 30), color=(200, 30, 30), mode="RGB", fmt=None) -> Path:
    """Write a solid image of ``size`` (width, height) at ``path``, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "L":
        color = 128
    Image.new(mode, size, color).save(path, format=fmt)
    return path


def write_lines(path: Path, rows) -> Path:
    """Write rows (dicts are JSON-encoded, strings kept verbatim) one a line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def memory_fs():
    """fsspec's in-memory filesystem, emptied after the test."""
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    yield fs
    for path in fs.ls("/", detail=False):
        fs.rm(path, recursive=True)


@pytest.fixture
def image_file():
    """The :func:`write_image` helper."""
    return write_image


@pytest.fixture
def jsonl_file():
    """The :func:`write_lines` helper."""
    return write_lines
