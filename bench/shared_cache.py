"""The shared image cache: a second machine downloading decoded shards against fetching and decoding the images.

Starts moto's S3 server on 127.0.0.1 (a stand-in for an S3-compatible store; no network) and puts
``--images`` JPEG photos-like images of ``--size`` on it. Then, with two empty cache roots standing
for two machines, in the same run:

- baseline: machine A fills its cache alone (fetch each JPEG from S3, decode, shrink to
  ``--resolution``, store) -- what every worker of a cluster does without a shared cache;
- machine A fills its cache with a shared cache on S3 (the same, plus uploading each shard);
- machine B fills its cache from the shared cache (downloads the decoded shards).

Prints the seconds of each, B's speed-up over the baseline, A's extra cost for uploading, and
the bytes on the store (JPEGs against decoded shards). Localhost has no real bandwidth limit:
on a real network the shards' bytes count for more (see the bytes line).

    python bench/shared_cache.py [--images 256] [--size 640x480] [--resolution 384] [--rounds 2]
"""

from __future__ import annotations

import argparse
import io
import logging
import statistics
import tempfile
import time
from pathlib import Path


def photo(rng, width: int, height: int) -> bytes:
    """A JPEG with photo-like content: smooth colour fields plus grain (compresses like a photo)."""
    import numpy as np
    from PIL import Image

    small = rng.integers(0, 256, (height // 32 + 1, width // 32 + 1, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    grain = rng.integers(-12, 13, (height, width, 3), dtype=np.int16)
    out = io.BytesIO()
    Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=90)
    return out.getvalue()


def fill(root: Path, urls: list[str], resolution: int, shared_url: str | None) -> float:
    """Seconds to fill every shard of a new cache under ``root``."""
    from automl_nb.data.cache.store import CACHED, ImageCache

    start = time.perf_counter()
    cache = ImageCache.open(root, urls, resolution, shared_url=shared_url)
    for shard in range(cache.shard_count):
        cache.fill_shard(shard)
    seconds = time.perf_counter() - start
    assert (cache.status() == CACHED).all()
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--size", default="640x480", help="WIDTHxHEIGHT of each JPEG")
    parser.add_argument("--resolution", type=int, default=384, help="the cache resolution (long side)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    width, height = (int(n) for n in args.size.split("x"))

    import numpy as np

    from automl_nb.testing import moto_s3

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    baseline, publishing, downloading = [], [], []
    with moto_s3() as fs, tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fs.mkdir("bench")
        rng = np.random.default_rng(0)
        jpeg_bytes = 0
        for i in range(args.images):
            data = photo(rng, width, height)
            jpeg_bytes += len(data)
            fs.pipe_file(f"bench/images/{i:05d}.jpg", data)
        for n in range(args.rounds):
            urls = [f"s3://bench/images/{i:05d}.jpg" for i in range(args.images)]
            shared = f"s3://bench/shared-{n}"  # a new shared cache each round, and new machines
            baseline.append(fill(tmp / f"alone-{n}", urls, args.resolution, None))
            publishing.append(fill(tmp / f"a-{n}", urls, args.resolution, shared))
            downloading.append(fill(tmp / f"b-{n}", urls, args.resolution, shared))
        shard_bytes = sum(info["size"] for info in fs.find("bench/shared-0", detail=True).values())
    alone, first, second = (statistics.median(x) for x in (baseline, publishing, downloading))
    print(f"{args.images} JPEGs of {width}x{height} on S3 (moto on 127.0.0.1), cache resolution "
          f"{args.resolution} px, median of {args.rounds} rounds")
    print(f"fetch + decode alone (every machine without a shared cache): {alone:.2f} s "
          f"({args.images / alone:.0f} images/s)")
    print(f"first machine, also uploading each shard: {first:.2f} s ({first / alone - 1:+.0%} against alone)")
    print(f"second machine, downloading decoded shards: {second:.2f} s ({args.images / second:.0f} images/s); "
          f"speed-up over fetch + decode: {alone / second:.2f}x")
    print(f"bytes on the store: JPEGs {jpeg_bytes / 2**20:.1f} MB, shared cache {shard_bytes / 2**20:.1f} MB "
          f"({shard_bytes / jpeg_bytes:.2f}x)")


if __name__ == "__main__":
    main()
