"""The image cache's shared tier on a real S3-compatible server (moto's, on 127.0.0.1).

Two "machines" are two cache roots that share nothing but the bucket; the images come from an
HTTP server that counts what it serves, so a test sees whether a machine fetched or downloaded.
"""

import json
import time

import numpy as np
import pytest

from automl_nb.data.cache import CachedImageReader, ImageCache, SharedFolder, image_reader, shared_cache_url
from automl_nb.data.cache.fetch import Fetcher
from automl_nb.data.cache.settings import SHARED_CACHE_VARIABLE
from automl_nb.data.cache.shared import CLAIM_STALE_SECONDS
from automl_nb.data.cache.store import CACHED, FAILED, MISSING
from automl_nb.errors import AutoMLError, SpecError
from automl_nb.spec import check_parameters

BUCKET = "image-cache-bucket"
SHARED = f"s3://{BUCKET}/cache"
LAYOUT = {"images_per_chunk": 4, "chunks_per_shard": 2}  # 21 images: shards of 8, 8 and 5


@pytest.fixture(scope="module")
def s3(s3_server):
    s3_server.mkdir(BUCKET)
    yield s3_server
    s3_server.rm(BUCKET, recursive=True)


@pytest.fixture
def shared(s3, request):
    """A fresh shared root for the test (its own prefix in the bucket)."""
    return f"{SHARED}/{request.node.name[:40]}"


def read_all(cache, urls):
    reader = CachedImageReader(cache)
    return [np.asarray(reader(url)) for url in urls]


def stored(s3, url: str) -> set[str]:
    root = url.split("://", 1)[1]
    return {path[len(root) + 1:] for path in s3.find(root)}


def test_a_shard_decoded_on_one_machine_is_downloaded_by_another_not_fetched(serve_dataset, image_server, tmp_path,
                                                                            shared, s3):
    _, _, _, remote = serve_dataset("image_classification", 21, 32)
    urls = [r.image_url for r in remote]
    first = ImageCache.open(tmp_path / "a", urls, 64, shared_url=shared, **LAYOUT)
    images = read_all(first, urls)
    assert image_server.total() == 21 and first.shared.url == f"{shared}/{first.folder.name}"
    on_store = stored(s3, first.shared.url)
    assert {f"images.zarr/meta/c/{shard}/0" for shard in range(3)} <= on_store
    assert {"urls.json", "images.zarr/zarr.json", "claims/0.json"} <= on_store

    # The second machine has no folder: it takes the first one's layout (not its own defaults) and
    # reads every image from the bucket; the image server sees no new request.
    second = ImageCache.open(tmp_path / "b", list(reversed(urls)), 64, shared_url=shared)
    assert second.folder.name == first.folder.name and second.images_per_chunk == 4
    assert (second.status() == MISSING).all()
    again = read_all(second, urls)
    assert image_server.total() == 21
    assert all(np.array_equal(a, b) for a, b in zip(images, again))
    assert [second.content_hash(url) for url in urls] == [first.content_hash(url) for url in urls]

    # The shared folder is itself a Zarr store that zarr reads from the URL.
    import zarr

    from automl_nb.object_store import storage_options

    group = zarr.open_group(f"{first.shared.url}/images.zarr", mode="r", storage_options=storage_options("s3"))
    assert (group["meta"][:, 0] == CACHED).all()
    row = first.index[urls[5]]
    assert np.array_equal(group["pixels"][row], first.read_chunk(row // 4).pixels[row % 4])


def test_only_a_complete_shard_is_shared_and_a_failure_for_good_travels_with_it(serve_dataset, image_server,
                                                                               tmp_path, shared, s3):
    _, _, _, remote = serve_dataset("image_classification", 21, 32)
    urls = sorted(r.image_url for r in remote)
    flaky, gone = urls[1], urls[9]  # rows of shards 0 and 1
    image_server.fail_first[flaky.removeprefix(image_server.base)] = 1  # one 500, then served
    (image_server.directory / gone.removeprefix(image_server.base + "/")).unlink()  # 404 for good
    cache = ImageCache.open(tmp_path / "a", urls, 64, shared_url=shared, fetcher=Fetcher(retries=0), **LAYOUT)
    for shard in range(3):
        cache.fill_shard(shard)
    assert cache.status()[cache.index[flaky]] == MISSING and cache.status()[cache.index[gone]] == FAILED
    published = {rel for rel in stored(s3, cache.shared.url) if rel.startswith("images.zarr/meta/c/")}
    assert published == {"images.zarr/meta/c/1/0", "images.zarr/meta/c/2/0"}  # shard 0 still misses an image

    cache.fill_shard(0)  # the source answers now: shard 0 is complete, and shared
    assert "images.zarr/meta/c/0/0" in stored(s3, cache.shared.url)

    other = ImageCache.open(tmp_path / "b", urls, 64, shared_url=shared)
    served = image_server.total()
    assert other.read_chunk(2).meta[1, 0] == FAILED  # row 9 is row 1 of chunk 2
    assert other.failures() == {gone: "not found"} and image_server.total() == served


def test_one_publisher_per_shard_and_a_stale_claim_is_taken_over(serve_dataset, tmp_path, shared, s3):
    _, _, _, remote = serve_dataset("image_classification", 16, 32)
    urls = [r.image_url for r in remote]
    mine = ImageCache.open(tmp_path / "a", urls, 64, **LAYOUT)  # no shared tier while filling
    for shard in range(2):
        mine.fill_shard(shard)
    folder = SharedFolder(f"{shared}/{mine.folder.name}")
    folder.publish_metadata(mine.folder)
    assert folder.publish(mine.folder, 0) and not folder.publish(mine.folder, 0)  # once published, never again

    # Another worker's claim on shard 1, still fresh: this one leaves the shard alone.
    claim = f"{folder.remote.root}/claims/1.json"
    s3.pipe_file(claim, json.dumps({"holder": "other:1", "time": time.time()}).encode())
    assert not folder.publish(mine.folder, 1) and folder.published() == 1
    # The same claim, left by a publisher that died long ago: taken over and published.
    s3.pipe_file(claim, json.dumps({"holder": "other:1", "time": time.time() - CLAIM_STALE_SECONDS - 1}).encode())
    assert folder.publish(mine.folder, 1) and folder.published() == 2
    assert json.loads(s3.cat_file(claim))["holder"] != "other:1"


def test_a_publisher_whose_upload_fails_gives_its_claim_back(serve_dataset, tmp_path, shared, s3, monkeypatch):
    from automl_nb.object_store import RemoteFolder

    _, _, _, remote = serve_dataset("image_classification", 8, 32)
    mine = ImageCache.open(tmp_path / "a", [r.image_url for r in remote], 64, **LAYOUT)
    mine.fill_shard(0)
    folder = SharedFolder(f"{shared}/{mine.folder.name}")
    folder.publish_metadata(mine.folder)

    def lost_connection(self, local, rel):
        raise ConnectionError("the store went away")

    monkeypatch.setattr(RemoteFolder, "put", lost_connection)
    with pytest.raises(ConnectionError):
        folder.publish(mine.folder, 0)
    assert not s3.exists(f"{folder.remote.root}/claims/0.json")  # another worker may publish it at once
    monkeypatch.undo()
    assert folder.publish(mine.folder, 0) and folder.published() == 1


def test_a_cache_of_another_layout_is_not_shared_and_says_so(serve_dataset, tmp_path, shared):
    _, _, _, remote = serve_dataset("image_classification", 12, 32)
    urls = [r.image_url for r in remote]
    ImageCache.open(tmp_path / "a", urls, 64, shared_url=shared, **LAYOUT)
    ImageCache.open(tmp_path / "b", urls, 64, images_per_chunk=2)  # made here before, in its own layout
    with pytest.warns(UserWarning, match="not sharing the image cache .*: its chunk or shard layout differs"):
        other = ImageCache.open(tmp_path / "b", urls, 64, shared_url=shared)
    assert other.shared is None
    assert len(read_all(other, urls)) == 12  # its own cache still works


def test_an_unreachable_shared_cache_leaves_the_trial_its_local_cache(serve_dataset, image_server, tmp_path, s3):
    _, _, _, remote = serve_dataset("image_classification", 6, 32)
    urls = [r.image_url for r in remote]
    with pytest.warns(UserWarning, match="not sharing the image cache .* s3://no-such-bucket/cache/"):
        cache = ImageCache.open(tmp_path / "a", urls, 64, shared_url="s3://no-such-bucket/cache")
    assert cache.shared is None and len(read_all(cache, urls)) == 6 and image_server.total() == 6


def test_a_trial_gets_its_shared_cache_from_its_settings_its_machine_or_its_run(monkeypatch, tmp_path, s3):
    monkeypatch.delenv(SHARED_CACHE_VARIABLE, raising=False)
    params = {"advanced_settings": {"stream_image_files": True}}
    assert shared_cache_url(params) is None
    assert shared_cache_url(params, "s3://b/runs/x/image-cache") == "s3://b/runs/x/image-cache"
    monkeypatch.setenv(SHARED_CACHE_VARIABLE, "s3://machine/cache/")
    assert shared_cache_url(params, "s3://b/runs/x/image-cache") == "s3://machine/cache"
    chosen = {"advanced_settings": {"stream_image_files": True, "shared_cache_url": "s3://job/cache"}}
    assert shared_cache_url(chosen, "s3://b/runs/x/image-cache") == "s3://job/cache"
    monkeypatch.setenv(SHARED_CACHE_VARIABLE, "ftp://host/cache")
    with pytest.raises(AutoMLError, match=r"\$AUTOML_NB_SHARED_IMAGE_CACHE: 'ftp://host/cache': 'ftp://' is not a "
                                          r"store an image cache can live on; allowed: s3://.*abfs://"):
        shared_cache_url(params)

    monkeypatch.delenv(SHARED_CACHE_VARIABLE)
    monkeypatch.setenv("AUTOML_NB_IMAGE_CACHE", str(tmp_path / "cache"))
    images = [str(tmp_path / f"{i}.png") for i in range(2)]
    from automl_nb.data.records import ImageRecord

    reader = image_reader("image_classification", params, [ImageRecord(url, "a") for url in images],
                          shared_default=SHARED)
    assert reader.cache.shared.url == f"{SHARED}/{reader.cache.folder.name}"


@pytest.mark.parametrize("value, message", [
    ("ftp://host/cache", "'ftp://' is not a store an image cache can live on; allowed: s3://"),
    ("s3://", "no bucket"),
    (7, "7 is not a URL; allowed: s3://, gs:// or abfs:// URL, or null"),
])
def test_the_shared_cache_setting_is_checked_with_the_job(value, message):
    with pytest.raises(SpecError, match="advanced_settings.shared_cache_url: ") as error:
        check_parameters("image_classification", {"advanced_settings": {"shared_cache_url": value}})
    assert message in str(error.value)
    ok = check_parameters("image_classification", {"advanced_settings": {"shared_cache_url": "s3://b/cache/"}})
    assert ok["advanced_settings"]["shared_cache_url"] == "s3://b/cache"


RUN_JOB = """\
task: image_classification
training_data: {{path: {data}, type: mltable}}
limits: {{max_trials: 1}}
training_parameters:
  model_name: resnet18
  use_pretrained_model: false
  number_of_epochs: 1
  training_crop_size: 28
  validation_resize_size: 32
  validation_crop_size: 28
  advanced_settings: '{{"stream_image_files": true}}'
"""


@pytest.mark.slow
def test_the_trials_of_a_run_on_s3_stream_through_the_runs_own_shared_cache(s3, tmp_path, monkeypatch):
    from automl_nb.data.synthetic import make_dataset
    from automl_nb.spec import load_job
    from automl_nb.sweep.executor import InProcessExecutor

    monkeypatch.setenv("AUTOML_NB_RUN_MIRRORS", str(tmp_path / "mirrors"))
    monkeypatch.setenv("AUTOML_NB_IMAGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(SHARED_CACHE_VARIABLE, raising=False)
    make_dataset("image_classification", 12, 16, tmp_path / "shapes", seed=0)
    url = f"s3://{BUCKET}/runs/streamed"
    run = load_job(RUN_JOB.format(data=tmp_path / "shapes")).submit(url, check_data=False, executor=InProcessExecutor())
    assert run.wait(120) == "Completed"
    (folder,) = (tmp_path / "cache").glob("*px")  # the trial's machine cache, shared through the run's folder
    assert "images.zarr/meta/c/0/0" in stored(s3, f"{url}/image-cache/{folder.name}")
    assert not (run.folder / "image-cache").exists()  # the driver's mirror leaves it on the store


def test_cache_commands_build_list_and_clear_a_shared_cache(serve_dataset, image_server, tmp_path, shared, capsys):
    from automl_nb import cli

    _, http_jsonl, _, _ = serve_dataset("image_classification", 10, 32)
    build = ["cache", "build", str(http_jsonl), "--task", "image_classification", "--resolution", "64"]
    # A cache filled before it was shared: building with --shared uploads what it holds.
    assert cli.main([*build, "--root", str(tmp_path / "a")]) == 0
    assert cli.main([*build, "--root", str(tmp_path / "a"), "--shared", shared + "/"]) == 0
    assert "1 of 1 shards shared in " + shared in capsys.readouterr().out
    image_server.close()  # another machine builds from the shared cache alone
    assert cli.main([*build, "--root", str(tmp_path / "b"), "--shared", shared]) == 0
    assert "10 of 10 images cached" in capsys.readouterr().out

    assert cli.main(["cache", "info", "--shared", shared]) == 0
    (row,) = [line.split() for line in capsys.readouterr().out.splitlines() if line.endswith("yes")]
    assert row[1:] == ["64", "10", "1", "1", "yes"]  # resolution, images, shards, shared, ready
    assert cli.main(["cache", "clear", "--shared", shared, "--dataset", "nope"]) == 2
    assert "--dataset 'nope': no cached dataset starts with it in " + shared in capsys.readouterr().err
    assert cli.main(["cache", "clear", "--shared", shared]) == 0
    assert "deleted 1 cached datasets from " + shared in capsys.readouterr().out
    assert cli.main(["cache", "info", "--shared", shared]) == 0
    assert "no cached datasets in " + shared in capsys.readouterr().out
    assert cli.main(["cache", "info", "--shared", "ftp://x/cache"]) == 2
    assert "--shared: 'ftp://x/cache': 'ftp://' is not a store an image cache can live on" in capsys.readouterr().err
