"""Data throughput: images/s delivered to the model from files, from the Zarr cache, and over HTTP.

Every path runs the same torch dataset (``ClassificationDataset``), transform (to a uint8
tensor, resized to S x S) and ``DataLoader`` (batch 64, no workers, samples in order); only
the image reader differs:

    (a) files       PIL decodes each JPEG/PNG file from local disk (sources are
                    --source-scale times S, so the transform resizes them down)
    (b) cache       a warm Zarr cache at resolution S, read by a fresh reader each epoch, so
                    every chunk is read from disk and decompressed (its memory starts empty)
    (c) http        the files streamed from a local HTTP server (127.0.0.1), no cache: every
                    epoch fetches every image again
    (d) http+cache  stream_image_files: epoch 1 fetches (whole shards, 16 requests in flight)
                    and fills a new cache; epoch 2 reads the cache

Also shown: raw chunk reads (whole decompressed chunks, no dataset), the ceiling of (b).
The images are random crops of the photos that ship with scikit-image (real photos:
compression on noise or flat synthetic images says little). Each figure is the best of
--repeats epochs (files, cache and epoch 2 take turns). Torch uses one thread, as in a
DataLoader worker. Goals: (b) >= 5x (a) at 64-256 px; (d) epoch 2 >= (a).

    python bench/data_throughput.py [--sizes 64 128 256] [--images 512] [--source-scale 2]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from automl_nb.data.cache import CachedImageReader, ImageCache
from automl_nb.data.datasets import ClassificationDataset
from automl_nb.data.records import ImageRecord

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "hubble_deep_field.jpg", "ihc.png",
          "motorcycle_left.png", "retina.jpg", "rocket.jpg")
BATCH = 64


def photos() -> list[np.ndarray]:
    """The RGB photos shipped with scikit-image."""
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    found = [np.asarray(Image.open(folder / name).convert("RGB")) for name in PHOTOS if (folder / name).exists()]
    if not found:
        raise SystemExit("no scikit-image photos found; install scikit-image")
    return found


def write_images(folder: Path, count: int, size: int, image_format: str, seed: int = 0) -> list[str]:
    """``count`` random crops of the photos, ``size`` px square, saved as ``image_format``."""
    rng = np.random.default_rng(seed)
    sources = photos()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        photo = sources[i % len(sources)]
        height, width = photo.shape[:2]
        side = int(rng.integers(min(height, width) // 4, min(height, width) + 1))
        top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
        image = Image.fromarray(photo[top:top + side, left:left + side]).resize((size, size), Image.Resampling.LANCZOS)
        path = folder / f"{i:05d}.{'jpg' if image_format == 'jpeg' else 'png'}"
        image.save(path, format=image_format.upper(), **({"quality": 90} if image_format == "jpeg" else {}))
        paths.append(str(path))
    return paths


def epoch_rate(urls: list[str], size: int, reader=None) -> float:
    """Images/s of one pass of the DataLoader over ``urls`` with ``reader`` (default: open_image)."""
    transform = v2.Compose([v2.ToImage(), v2.Resize((size, size), antialias=True)])
    records = [ImageRecord(url, "photo") for url in urls]
    options = {} if reader is None else {"reader": reader}
    loader = DataLoader(ClassificationDataset(records, ["photo"], transform, **options), batch_size=BATCH)
    started = time.perf_counter()
    seen = sum(len(images) for images, _ in loader)
    return seen / (time.perf_counter() - started)


def raw_chunk_rate(cache: ImageCache) -> float:
    """Images/s of reading every chunk whole from disk into a tensor (no dataset, no transform)."""
    started = time.perf_counter()
    for chunk in range(cache.chunk_count):
        torch.from_numpy(cache.read_chunk(chunk).pixels)
    return cache.count / (time.perf_counter() - started)


class Server:
    """A static file server on 127.0.0.1 in a thread."""

    def __init__(self, folder: Path) -> None:
        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

        self.folder = folder
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/{Path(path).relative_to(self.folder).as_posix()}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def measure(size: int, image_format: str, args, tmp: Path, server: Server) -> dict:
    """Every path at one size and format; returns images/s by path (best of the repeats)."""
    source = max(size, round(size * args.source_scale))
    paths = write_images(tmp / f"{image_format}-{size}", args.images, source, image_format)
    urls = [server.url(p) for p in paths]
    rates = {}
    cache = ImageCache.open(tmp / f"cache-{image_format}-{size}", paths, size, codec=args.codec)
    started = time.perf_counter()
    for shard in range(cache.shard_count):
        cache.fill_shard(shard)
    rates["cache build"] = cache.count / (time.perf_counter() - started)
    rates["http"] = epoch_rate(urls, size)
    streamed = ImageCache.open(tmp / f"stream-{image_format}-{size}", urls, size, codec=args.codec)
    rates["http+cache epoch 1"] = epoch_rate(urls, size, CachedImageReader(streamed, as_stored=True))
    # The paths compared for the goals take turns, so a burst of load elsewhere hits them alike.
    runs: dict[str, list[float]] = {"files": [], "cache": [], "cache raw chunks": [], "http+cache epoch 2": []}
    for _ in range(args.repeats):
        runs["files"].append(epoch_rate(paths, size))
        # A fresh reader each epoch: its memory is empty, so every chunk is read from disk.
        runs["cache"].append(epoch_rate(paths, size, CachedImageReader(cache, as_stored=True)))
        runs["cache raw chunks"].append(raw_chunk_rate(cache))
        runs["http+cache epoch 2"].append(epoch_rate(urls, size, CachedImageReader(streamed, as_stored=True)))
    rates.update({name: max(values) for name, values in runs.items()})
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--formats", nargs="+", default=["jpeg", "png"], choices=["jpeg", "png"])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--source-scale", type=float, default=2.0,
                        help="source images are this times the model size (>= 1)")
    parser.add_argument("--codec", default="zstd", choices=["zstd", "lz4", "none"])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in a DataLoader worker process
    print(f"{args.images} photo crops, sources {args.source_scale:g}x the size, batch {BATCH}, best of "
          f"{args.repeats}; cache codec blosc/{args.codec}; torch threads {torch.get_num_threads()}")
    header = (f"{'size':>4} {'format':>6} {'files':>8} {'cache':>8} {'raw':>8} {'build':>7} {'http':>7} "
              f"{'h+c ep1':>8} {'h+c ep2':>8} | {'cache/files':>11} {'ep2/files':>9} {'http/files':>10}")
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp))
        try:
            for size in args.sizes:
                for image_format in args.formats:
                    r = measure(size, image_format, args, Path(tmp), server)
                    print(f"{size:>4} {image_format:>6} {r['files']:8.0f} {r['cache']:8.0f} "
                          f"{r['cache raw chunks']:8.0f} "
                          f"{r['cache build']:7.0f} {r['http']:7.0f} {r['http+cache epoch 1']:8.0f} "
                          f"{r['http+cache epoch 2']:8.0f} | {r['cache'] / r['files']:10.1f}x "
                          f"{r['http+cache epoch 2'] / r['files']:8.1f}x {r['http'] / r['files']:9.2f}x", flush=True)
        finally:
            server.close()
    print("images/s; raw = whole chunks read into tensors, no dataset; build = filling the cache from files; "
          "h+c = http with stream_image_files (epoch 1 fills the cache, epoch 2 reads it).")
    print("goals: cache/files >= 5 at 64-256 px; ep2/files >= 1")


if __name__ == "__main__":
    main()
