"""Several processes on one cache: concurrent fillers, and a filler killed half way."""

import subprocess
import sys
import time

import numpy as np

from automl_nb.data.cache import CachedImageReader, ImageCache
from automl_nb import cli
from automl_nb.data.cache.store import CACHED, MISSING
from automl_nb.data.images import open_image

# Fills every shard of the cache at argv[1] (forwards or backwards) with a 2-thread fetcher,
# then prints how many images this process fetched itself.
FILLER = """
import sys
from automl_nb.data.cache import Fetcher, ImageCache
from automl_nb.data.cache.fetch import read_bytes
fetched = []
def read(url):
    fetched.append(url)
    return read_bytes(url)
cache = ImageCache(sys.argv[1], fetcher=Fetcher(max_workers=2, read=read))
shards = range(cache.shard_count)
for shard in (reversed(shards) if sys.argv[2] == "backwards" else shards):
    cache.fill_shard(shard)
print(len(fetched))
"""


def test_two_processes_filling_one_cache_share_the_work_and_corrupt_nothing(serve_dataset, image_server, tmp_path):
    _, _, local, remote = serve_dataset("image_classification", 48, 32)
    cache = ImageCache.open(tmp_path / "cache", [r.image_url for r in remote], 64, images_per_chunk=4,
                            chunks_per_shard=2)
    image_server.delay_s = 0.1  # a shard of 8 takes ~0.4 s, all ~2.4 s: the two fillers overlap
    fillers = [subprocess.Popen([sys.executable, "-c", FILLER, str(cache.folder), way], stdout=subprocess.PIPE,
                                text=True) for way in ("forwards", "backwards")]
    counts = [int(p.communicate(timeout=60)[0].strip()) for p in fillers]
    assert all(p.returncode == 0 for p in fillers)
    assert sum(counts) == 48 and min(counts) > 0, counts  # both worked, no image fetched twice
    assert image_server.total() == 48
    assert (cache.status() == CACHED).all()
    reader = CachedImageReader(cache)
    for here, there in zip(local, remote):
        assert np.array_equal(np.asarray(reader(there.image_url)), np.asarray(open_image(here.image_url)))


def settled_total(server, quiet_s: float = 0.3) -> int:
    """The server's request count once it stops changing: a killed client's last requests may still
    sit in the listening socket's queue, and are counted when a busy machine gets to them."""
    total = server.total()
    while True:
        time.sleep(quiet_s)
        if server.total() == total:
            return total
        total = server.total()


def test_a_build_killed_half_way_resumes_fetching_only_what_is_missing(serve_dataset, image_server, tmp_path):
    _, http_jsonl, local, remote = serve_dataset("image_classification", 40, 32)
    cache = ImageCache.open(tmp_path / "cache", [r.image_url for r in remote], 64, images_per_chunk=2,
                            chunks_per_shard=2)
    image_server.delay_s = 0.2  # 10 shards of 4, each ~0.2 s: time to see one done and kill the rest
    build = ["build", str(http_jsonl), "--task", "image_classification", "--resolution", "64",
             "--root", str(tmp_path / "cache")]
    process = subprocess.Popen([sys.executable, "-m", "automl_nb.cli", "cache", *build],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while (cache.status() == CACHED).sum() < 4 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None  # still filling
    process.kill()
    process.wait()
    status = cache.status()
    missing = int((status == MISSING).sum())
    assert (status == CACHED).sum() >= 4 and missing > 0, status  # killed with work done and work left
    image_server.delay_s, before = 0.0, settled_total(image_server)
    assert cli.main(["cache", *build]) == 0
    assert image_server.total() - before == missing
    assert (cache.status() == CACHED).all()
    reader = CachedImageReader(cache)
    for here, there in zip(local, remote):
        assert np.array_equal(np.asarray(reader(there.image_url)), np.asarray(open_image(here.image_url)))
    leftovers = list(cache.folder.rglob("*.partial"))
    assert not leftovers  # a killed writer's temporary files are cleaned when its shard is filled
