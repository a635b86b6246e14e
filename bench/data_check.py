"""Data check speed: images/s of the pre-flight image check, against a plain header read and
against one epoch of the default classification model.

The check (``check_image_files``: header, PNG chunks and CRCs, JPEG end marker, pixel limit,
on a pool of threads) runs over N synthetic images (64-256 px, half PNG, half JPEG, written to
a temp folder, so they sit in the page cache: warm reads) and over the same files streamed
from a local HTTP server (127.0.0.1) through fsspec. Measured in the same run:

    baseline    a plain loop of PIL header reads (``image_info``: open, size, format), one
                image at a time: what the check would cost without threads or extra checks
    decode      a plain loop decoding each image to RGB and applying the training transform
                (one torch thread, as in a DataLoader worker): what every epoch pays for its
                data, whatever the model and device
    step        a few training steps of the default classification model (its model_name,
                training_crop_size and training_batch_size from the spec table, random
                weights, random tensors, SGD), extrapolated to N images: one epoch's compute

Goal: check time < 5% of one epoch. An epoch costs at least its compute and at least its
decoding (spread over the DataLoader workers), so the check's share of each is printed: both
are upper bounds of its share of a real epoch on this machine. The HTTP server runs in its own
process, so it does not compete with the check for this one's GIL.

    python bench/data_check.py [--images 10000] [--http-images 10000] [--steps 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from automl_nb.data.images import LOCAL_CHECK_THREADS, REMOTE_CHECK_THREADS, check_image_files, image_info, open_image

TASK = "image_classification"


def write_images(folder: Path, count: int, seed: int = 0) -> list[str]:
    """``count`` images of 64-256 px (sides drawn apart), a smooth gradient with noise, PNG and JPEG in turn."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        width, height = (int(v) for v in rng.integers(64, 257, size=2))
        ramp = np.linspace(0, 200, width, dtype=np.float32)[None, :, None]
        pixels = ramp + rng.normal(0, 12, size=(height, width, 3))
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        path = folder / (f"{i:05d}.png" if i % 2 == 0 else f"{i:05d}.jpg")
        image.save(path, **({"quality": 90} if path.suffix == ".jpg" else {}))
        paths.append(str(path))
    return paths


def rate(function, items) -> float:
    """Items/s of ``function(items)``."""
    started = time.perf_counter()
    function(items)
    return len(items) / (time.perf_counter() - started)


def best_rate(function, items, repeats: int) -> float:
    return max(rate(function, items) for _ in range(repeats))


def checked(urls, threads: int) -> None:
    results = check_image_files(urls, threads=threads, progress=False)
    bad = [r for r in results.values() if not isinstance(r, tuple)]
    if bad:
        raise SystemExit(f"the check found {len(bad)} problems in good images, first: {bad[0]}")


def header_loop(urls) -> None:
    for url in urls:
        image_info(url)


def decode_loop(urls, transform) -> None:
    for url in urls:
        transform(open_image(url))


SERVE = """
import functools, http.server, sys, time
LATENCY = float(sys.argv[2])
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
    def send_head(self):
        time.sleep(LATENCY)  # a remote store's time to first byte
        return super().send_head()
class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 256  # the default 5 drops connects (1 s SYN retries) under 32 clients
server = Server(("127.0.0.1", 0), functools.partial(Quiet, directory=sys.argv[1]))
print(server.server_port, flush=True)
server.serve_forever()
"""


class Server:
    """A static file server on 127.0.0.1 in its own process (in this one it would compete for the GIL)."""

    def __init__(self, folder: Path, latency: float = 0.0) -> None:
        self.folder = folder
        self.process = subprocess.Popen([sys.executable, "-c", SERVE, str(folder), str(latency)],
                                        stdout=subprocess.PIPE, text=True)
        self.port = int(self.process.stdout.readline())

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{Path(path).relative_to(self.folder).as_posix()}"

    def close(self) -> None:
        self.process.terminate()
        self.process.wait()


def epoch_seconds(images: int, steps: int) -> tuple[float, dict]:
    """Seconds of one epoch of ``images`` for the default classification model, from timed steps."""
    import torch

    from automl_nb.models.registry import build_model
    from automl_nb.spec import resolve_parameters

    params = resolve_parameters(TASK, {})
    name, crop, batch = params["model_name"], params["training_crop_size"], params["training_batch_size"]
    torch.manual_seed(0)
    model = build_model(name, num_classes=10, pretrained=False, crop_size=crop)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=params["learning_rate"], momentum=0.9)
    criterion = torch.nn.CrossEntropyLoss()
    inputs, targets = torch.randn(batch, 3, crop, crop), torch.randint(0, 10, (batch,))

    def step() -> None:
        optimizer.zero_grad()
        criterion(model(inputs), targets).backward()
        optimizer.step()

    step()  # warm-up: allocations, kernel choice
    started = time.perf_counter()
    for _ in range(steps):
        step()
    per_step = (time.perf_counter() - started) / steps
    info = {"model": name, "crop": crop, "batch": batch, "step_s": per_step, "threads": torch.get_num_threads()}
    return per_step * -(-images // batch), info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--http-images", type=int, default=10_000, help="how many of them to check over HTTP")
    parser.add_argument("--decode-images", type=int, default=2_000, help="how many to decode for the decode rate")
    parser.add_argument("--steps", type=int, default=2, help="timed training steps (after one warm-up)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, LOCAL_CHECK_THREADS, 8])
    parser.add_argument("--http-threads", type=int, nargs="+", default=[8, REMOTE_CHECK_THREADS, 64])
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="the server waits this long before each response, as a remote store would")
    parser.add_argument("--no-epoch", action="store_true", help="skip timing the default model's training steps")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{args.images} images 64-256 px (half PNG, half JPEG), {cores} cores, best of {args.repeats}; "
          f"http latency {args.latency_ms:g} ms")
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        paths = write_images(Path(tmp) / "images", args.images)
        megabytes = sum(os.path.getsize(p) for p in paths) / 1e6
        print(f"wrote {megabytes:.0f} MB in {time.perf_counter() - started:.0f} s")

        rates = {"baseline header loop": best_rate(header_loop, paths, args.repeats)}
        for threads in args.threads:
            rates[f"check, {threads} threads"] = best_rate(functools.partial(checked, threads=threads), paths,
                                                           args.repeats)
        from automl_nb.data.transforms import classification_train_transform
        from automl_nb.spec import resolve_parameters

        import torch

        transform = classification_train_transform(resolve_parameters(TASK, {})["training_crop_size"])
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as in a DataLoader worker process
        rates["decode + train transform"] = rate(functools.partial(decode_loop, transform=transform),
                                                 paths[: args.decode_images])
        torch.set_num_threads(threads)

        server = Server(Path(tmp), args.latency_ms / 1000)
        try:
            urls = [server.url(p) for p in paths[: args.http_images]]
            checked(urls[:64], REMOTE_CHECK_THREADS)  # warm-up: aiohttp import, session, connections
            rates["http baseline header loop"] = rate(header_loop, urls[: max(1, len(urls) // 10)])
            for threads in args.http_threads:
                rates[f"http check, {threads} threads"] = best_rate(functools.partial(checked, threads=threads),
                                                                    urls, 1)
        finally:
            server.close()

    ours_local = rates[f"check, {LOCAL_CHECK_THREADS} threads"]
    ours_http = rates[f"http check, {REMOTE_CHECK_THREADS} threads"]
    print(f"\n{'path':<32} {'images/s':>10} {'s per 10k':>10}")
    for name, value in rates.items():
        print(f"{name:<32} {value:10.0f} {10_000 / value:10.2f}")
    print(f"\nours / baseline: local {ours_local / rates['baseline header loop']:.2f}x, "
          f"http {ours_http / rates['http baseline header loop']:.1f}x (ours: {LOCAL_CHECK_THREADS} threads local, "
          f"{REMOTE_CHECK_THREADS} http; the baseline opens each URL as a file, one at a time)")

    if args.no_epoch:
        return
    epoch, info = epoch_seconds(args.images, args.steps)
    decode_epoch = args.images / rates["decode + train transform"]
    check_local, check_http = args.images / ours_local, args.images / ours_http
    print(f"\none epoch of {args.images} images, default model {info['model']} (crop {info['crop']}, batch "
          f"{info['batch']}), CPU, {info['threads']} torch threads: {info['step_s']:.1f} s a step -> "
          f"{epoch:.0f} s of compute; decoding + train transform alone, one core: {decode_epoch:.0f} s")
    for where, seconds in (("local", check_local), ("http", check_http)):
        print(f"check {where}: {seconds:.2f} s = {100 * seconds / epoch:.3f}% of the epoch's compute, "
              f"{100 * seconds / decode_epoch:.2f}% of its decoding")
    print("goal: check < 5% of one epoch (an epoch costs at least its compute and at least its decoding)")


if __name__ == "__main__":
    main()
