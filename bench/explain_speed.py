"""Explanation speed: seconds per image of each method, against one vanilla gradient measured in the same run.

The baseline is the cheapest gradient explanation there is: one forward and one backward pass
of the preprocessed image (batch 1). Each method runs through our public path
(``Explainer.explain``: validation transform, class probabilities, attributions) with its spec
defaults (``n_steps`` 50, ``xrai_fast`` true; ``--full-xrai`` adds full XRAI). Models have random weights
(no network here); the cost does not depend on the weights. Images are synthetic shapes of
256 px, resized to 256 and centre-cropped to 224 as in validation.

Prints, per model and device, seconds per image and the ratio method / vanilla gradient.
Integrated gradients costs about ``n_steps`` gradients (in batches), XRAI twice that (two
baselines) plus segmentation, guided Grad-CAM about two.

    python bench/explain_speed.py [--images 2] [--models resnet18 vits16r224] [--threads N] [--cpu-only] [--full-xrai]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from automl_nb.data.synthetic import make_dataset
from automl_nb.explain import Explainer
from automl_nb.models.registry import build_model
from automl_nb.spec.explain import XAI_ALGORITHMS

CROP, RESIZE = 224, 256
# (row name, method, settings): every method at its defaults; full XRAI on request.
ROWS = [(method, method, {}) for method in XAI_ALGORITHMS]
FULL_XRAI = ("xrai (full)", "xrai", {"xrai_fast": False})


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def vanilla_gradient(explainer: Explainer, image: Image.Image, repeats: int = 3) -> float:
    """The baseline: best of ``repeats`` timings of one forward + backward pass on the preprocessed image."""
    inputs, _ = explainer.preprocess(image)
    times = []
    for _ in range(repeats):
        synchronise(inputs.device)
        started = time.perf_counter()
        leaf = inputs.clone().requires_grad_(True)
        explainer.model(leaf)[0, 0].backward()
        synchronise(inputs.device)
        times.append(time.perf_counter() - started)
    return min(times)


def our_path(explainer: Explainer, image: Image.Image, method: str, settings: dict) -> float:
    """Seconds for one ``Explainer.explain`` call (attributions back on the CPU)."""
    device = explainer.device
    synchronise(device)
    started = time.perf_counter()
    explainer.explain(image, method, **settings)
    synchronise(device)
    return time.perf_counter() - started


def bench_model(name: str, device: torch.device, images: list[Image.Image], rows: list[tuple]) -> None:
    torch.manual_seed(0)
    model = build_model(name, num_classes=10, pretrained=False, crop_size=CROP).to(device)
    explainer = Explainer(model, [str(k) for k in range(10)], "image_classification", resize_size=RESIZE,
                          crop_size=CROP)
    # Warm-up, untimed: imports (captum, scikit-image, matplotlib), kernels, allocator.
    vanilla_gradient(explainer, images[0], repeats=1)
    for _, method, settings in rows:
        quick = {"n_steps": 2} if method in ("xrai", "integrated_gradients") else {}
        explainer.explain(images[0], method, **settings, **quick)
    baseline = statistics.mean(vanilla_gradient(explainer, image) for image in images)
    print(f"\n{name} on {device_name(device)}, {CROP} px, {len(images)} image(s)")
    print(f"  {'vanilla gradient (baseline)':28s} {baseline:8.3f} s/img   1.0x")
    for row, method, settings in rows:
        seconds = statistics.mean(our_path(explainer, image, method, settings) for image in images)
        print(f"  {row:28s} {seconds:8.3f} s/img {seconds / baseline:7.1f}x")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2, help="images per method (default 2)")
    parser.add_argument("--models", nargs="+", default=["resnet18", "vits16r224"])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--cpu-only", action="store_true", help="skip CUDA even when available")
    parser.add_argument("--full-xrai", action="store_true", help="also time full (greedy) XRAI")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")]
    if torch.cuda.is_available() and not args.cpu_only:
        devices.append(torch.device("cuda"))
    with tempfile.TemporaryDirectory() as tmp:
        make_dataset("image_classification", args.images, RESIZE, Path(tmp), seed=0)
        images = [Image.open(path).convert("RGB") for path in sorted((Path(tmp) / "images").glob("*.png"))]
    print("methods at their spec defaults: n_steps 50, xrai_fast true, approximation_method riemann_middle; "
          "integrated gradients and XRAI run 16 path points per pass")
    for device in devices:
        for name in args.models:
            bench_model(name, device, images, ROWS + ([FULL_XRAI] if args.full_xrai else []))


if __name__ == "__main__":
    main()
