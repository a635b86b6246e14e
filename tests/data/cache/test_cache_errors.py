"""Corrupt, missing and flaky images: named by URL, then skipped or failing, as chosen."""

import dataclasses

import numpy as np
import pytest

from automl_nb.data.cache import CachedImageReader, Fetcher, ImageCache
from automl_nb import cli
from automl_nb.data.cache.store import CACHED, FAILED, MISSING
from automl_nb.data.datasets import ClassificationDataset
from automl_nb.data.jsonl import write_jsonl
from automl_nb.data.transforms import classification_valid_transform
from automl_nb.errors import DataError


@pytest.fixture
def broken_data(serve_dataset, image_server):
    """10 good images, then a corrupt one and one the server does not have (404)."""
    _, _, _, remote = serve_dataset("image_classification", 10, 32)
    (image_server.directory / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    corrupt = dataclasses.replace(remote[0], image_url=f"{image_server.base}/corrupt.png")
    missing = dataclasses.replace(remote[1], image_url=f"{image_server.base}/missing.png")
    return remote + [corrupt, missing]


def open_cache(tmp_path, records, **options):
    return ImageCache.open(tmp_path / "cache", [r.image_url for r in records], 64, images_per_chunk=4,
                           chunks_per_shard=2, fetcher=Fetcher(backoff_s=0.01, **options))


@pytest.mark.parametrize("which, reason", [(-2, "cannot identify image file"), (-1, "not found")])
def test_an_unreadable_image_fails_naming_its_url_by_default(broken_data, tmp_path, which, reason):
    reader = CachedImageReader(open_cache(tmp_path, broken_data))
    url = broken_data[which].image_url
    with pytest.raises(DataError, match=f"{url}.*{reason}"):
        reader(url)
    assert np.asarray(reader(broken_data[0].image_url)).shape == (32, 32, 3)  # the others are fine


def test_skipped_images_are_reported_and_replaced_by_the_next_readable_one(broken_data, tmp_path, image_server):
    cache = open_cache(tmp_path, broken_data)
    reader = CachedImageReader(cache, skip_unreadable=True)
    classes = sorted({r.label for r in broken_data})
    # The corrupt image sits between two good ones; the 404 is last, so its substitute wraps to the first.
    records = broken_data[:5] + [broken_data[-2]] + broken_data[5:10] + [broken_data[-1]]
    dataset = ClassificationDataset(records, classes, classification_valid_transform(32, 32), reader=reader)
    with pytest.warns(UserWarning, match=broken_data[-2].image_url):
        image, target = dataset[5]
    assert target == dataset.targets[6] and np.array_equal(image, dataset[6][0])
    with pytest.warns(UserWarning, match=broken_data[-1].image_url):
        image, target = dataset[11]
    assert target == dataset.targets[0] and np.array_equal(image, dataset[0][0])
    status = cache.status()
    assert (status == FAILED).sum() == 2 and (status == CACHED).sum() == 10
    assert set(cache.failures()) == {broken_data[-2].image_url, broken_data[-1].image_url}
    served = image_server.total()
    fresh = CachedImageReader(open_cache(tmp_path, broken_data), skip_unreadable=True)
    with pytest.raises(DataError, match="missing.png"), pytest.warns(UserWarning):
        fresh(broken_data[-1].image_url)
    assert image_server.total() == served  # failures for good are remembered, not fetched again


def test_flaky_sources_are_retried_and_a_lasting_outage_is_not_remembered(serve_dataset, image_server, tmp_path):
    _, _, _, remote = serve_dataset("image_classification", 10, 32)
    path = "/" + remote[3].image_url.split("/", 3)[3]
    image_server.fail_first[path] = 2  # two 500s, then the image
    reader = CachedImageReader(open_cache(tmp_path, remote, retries=2))
    assert np.asarray(reader(remote[3].image_url)).shape == (32, 32, 3)
    assert image_server.requests[path] == 3

    image_server.fail_first = {"/" + remote[9].image_url.split("/", 3)[3]: 100}
    cache = open_cache(tmp_path / "other", remote, retries=1)
    with pytest.raises(DataError, match=f"{remote[9].image_url}.*500"):
        CachedImageReader(cache)(remote[9].image_url)
    assert cache.status()[9] == MISSING  # may work later: not marked as failed
    image_server.fail_first = {}
    assert np.asarray(CachedImageReader(cache)(remote[9].image_url)).shape == (32, 32, 3)


def test_cache_build_fails_naming_the_urls_unless_told_to_skip(broken_data, tmp_path, capsys):
    jsonl = write_jsonl(broken_data, tmp_path / "broken.jsonl")
    build = ["build", str(jsonl), "--task", "image_classification", "--root", str(tmp_path / "cache")]
    assert cli.main(["cache", *build]) == 2
    error = capsys.readouterr().err
    assert "2 images could not be cached" in error and "corrupt.png" in error and "missing.png" in error
    assert cli.main(["cache", *build, "--skip-unreadable"]) == 0
    assert "skipped 2 unreadable images" in capsys.readouterr().out
    assert cli.main(["cache", "info", "--root", str(tmp_path / "cache")]) == 0
    info = capsys.readouterr().out
    assert "failed " + broken_data[-1].image_url in info and "failed " + broken_data[-2].image_url in info
    assert cli.main(["cache", "clear", "--root", str(tmp_path / "cache")]) == 0
    assert "deleted 1 cached datasets" in capsys.readouterr().out
    assert not list((tmp_path / "cache").glob("*px"))


def test_a_shard_is_fetched_in_parallel_within_the_pool_bound(serve_dataset, image_server, tmp_path):
    _, _, _, remote = serve_dataset("image_classification", 16, 32)
    image_server.delay_s = 0.05  # requests last long enough to overlap
    cache = ImageCache.open(tmp_path / "cache", [r.image_url for r in remote], 64, fetcher=Fetcher(max_workers=4))
    assert cache.fill_shard(0) == {}
    assert image_server.total() == 16 and 1 < image_server.most_in_flight <= 4  # parallel, bounded


def test_the_cache_command_plugs_into_a_cli_parser(tmp_path, capsys):
    import argparse

    from automl_nb.cli.cache import add_cache_parser

    parser = argparse.ArgumentParser(prog="automl-nb")
    add_cache_parser(parser.add_subparsers(dest="command", required=True))  # what automl_nb.cli adds
    args = parser.parse_args(["cache", "info", "--root", str(tmp_path / "nothing")])
    assert args.handler(args) == 0
    assert f"no image cache at {tmp_path / 'nothing'}" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        parser.parse_args(["cache", "build", "data.jsonl"])  # --task is required
