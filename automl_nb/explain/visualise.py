"""The 2x2 explanation figure of SPEC section 10, as a matplotlib Figure and as PNG / base64.

    (0, 0) the cropped input          (0, 1) the attribution heatmap, bgyw scale (white = highest)
    (1, 0) the heatmap over the input (1, 1) the input masked to the top 30% of pixels

A pixel's importance is the absolute value of its attributions summed over the colour
channels (as captum's ``absolute_value`` heat maps); for XRAI it is the region value itself
(higher = picked earlier). The heatmap scales importance to [0, 1] by its 98th percentile (a
few extreme pixels would otherwise wash the rest out; captum's default) and XRAI's by its
range. Figures are built with ``matplotlib.figure.Figure``, not pyplot, so they need no
display, leave no global state and are safe in threads and on Agg.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TOP_FRACTION = 0.3
BLEND_ALPHA = 0.5
OUTLIER_PERCENTILE = 98.0
PANEL_TITLES = ("Cropped input", "Attribution heatmap", "Heatmap over the input", "Top 30% of pixels")


def importance(attributions: np.ndarray, method: str) -> np.ndarray:
    """Per-pixel importance ``[H, W]`` of ``[3, H, W]`` attributions (higher = more important)."""
    attributions = np.asarray(attributions, dtype=np.float64)
    if method == "xrai":
        return attributions[0]
    return np.abs(attributions.sum(axis=0))


def heat(attributions: np.ndarray, method: str) -> np.ndarray:
    """Importance scaled to [0, 1] for display (see the module notes)."""
    score = importance(attributions, method)
    if method == "xrai":
        score = score - score.min()
        top = score.max()
    else:
        top = np.percentile(score, OUTLIER_PERCENTILE)
    if not top > 0:
        return np.zeros_like(score)
    return np.clip(score / top, 0.0, 1.0)


def top_mask(attributions: np.ndarray, method: str, fraction: float = TOP_FRACTION) -> np.ndarray:
    """Boolean ``[H, W]`` mask of the ``fraction`` most important pixels (exactly that many, rounded up).

    Ties (XRAI regions, zero gradients) are broken by position, so the count never drifts.
    """
    score = importance(attributions, method).ravel()
    keep = int(np.ceil(fraction * score.size))
    mask = np.zeros(score.size, dtype=bool)
    mask[np.argsort(-score, kind="stable")[:keep]] = True
    return mask.reshape(importance(attributions, method).shape)


def colour_map():
    """colorcet's ``bgyw`` (blue, green, yellow, white) as a matplotlib colormap."""
    import colorcet

    return colorcet.cm.bgyw


def panels(image: np.ndarray, attributions: np.ndarray, method: str) -> dict[str, np.ndarray]:
    """The four panels as arrays.

    Args:
        image: the cropped input, ``[H, W, 3]`` RGB in [0, 1].
        attributions: ``[3, H, W]``.
        method: the attribution method (decides how importance is read).

    Returns:
        ``input`` ``[H, W, 3]``, ``heatmap`` ``[H, W]`` in [0, 1] (drawn with :func:`colour_map`),
        ``blend`` ``[H, W, 3]``, ``masked`` ``[H, W, 3]`` (pixels outside the top 30% black).
    """
    image = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
    heatmap = heat(attributions, method)
    coloured = colour_map()(heatmap)[..., :3]
    return {
        "input": image,
        "heatmap": heatmap,
        "blend": (1 - BLEND_ALPHA) * image + BLEND_ALPHA * coloured,
        "masked": image * top_mask(attributions, method)[..., None],
    }


def figure(image: np.ndarray, attributions: np.ndarray, method: str, title: str | None = None,
           size_inches: float = 7.0) -> "Figure":
    """The 2x2 explanation figure.

    Args:
        image: the cropped input, ``[H, W, 3]`` RGB in [0, 1].
        attributions: ``[3, H, W]``.
        method: the attribution method.
        title: a line above the grid, e.g. the label and score.
        size_inches: width and height.

    Returns:
        A ``matplotlib.figure.Figure`` whose first four axes are the panels in reading order;
        a fifth holds the heatmap's colour bar.
    """
    from matplotlib.figure import Figure

    arrays = panels(image, attributions, method)
    fig = Figure(figsize=(size_inches, size_inches), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    shown = {}
    for ax, key, panel_title in zip(axes, ("input", "heatmap", "blend", "masked"), PANEL_TITLES):
        if key == "heatmap":
            shown[key] = ax.imshow(arrays[key], cmap=colour_map(), vmin=0.0, vmax=1.0, interpolation="nearest")
        else:
            ax.imshow(arrays[key], interpolation="nearest")
        ax.set_title(panel_title, fontsize=10)
        ax.set_axis_off()
    fig.colorbar(shown["heatmap"], ax=axes[1], fraction=0.046, pad=0.02, label="importance")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def to_png(fig: "Figure", dpi: int = 100) -> bytes:
    """PNG bytes of a figure (rendered with Agg, whatever the notebook's backend)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def to_base64(png: bytes) -> str:
    """A PNG as the base64 text Azure's responses carry (``base64.b64decode`` reads it back)."""
    return base64.b64encode(png).decode("ascii")
