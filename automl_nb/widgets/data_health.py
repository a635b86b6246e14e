"""DataHealthPanel: a job's data-health report in a notebook, with a static HTML form.

The panel shows the summary, class counts per split as a bar chart (and, for detection, the
object sizes the model sees against COCO's 32 and 96 px), the findings with the YAML to paste,
all recommended YAML in one block to copy, and the duplicate images as thumbnails.
"""

from __future__ import annotations

import os
from html import escape
from typing import Any, Sequence

import ipywidgets as widgets

from automl_nb.data.health import DataHealth, check
from automl_nb.data.health.text import health_text, recommended_yaml, shown_parameters
from automl_nb.widgets.drawing import caption, enlarge, grid, png_bytes
from automl_nb.widgets.figures import new_figure, to_png
from automl_nb.widgets.html import png_img

SHOWN_CLASSES = 40  # bars drawn; more classes are summed into the title
SHOWN_GROUPS = 8  # duplicate groups drawn as thumbnails
THUMBNAIL_SIDE = 96
_SEVERITY_COLOURS = {"error": "#b3261e", "warning": "#9a6700", "info": "#1f5fa8"}
_CELL = 'style="text-align:left;vertical-align:top;padding:3px 8px;border-top:1px solid #ddd"'


class DataHealthPanel(widgets.VBox):
    """The data-health report of a job as a panel.

    Args:
        health: a :class:`~automl_nb.data.health.DataHealth`, or a job or the path of its
            YAML file (then :func:`automl_nb.check` makes the report).

    Raises:
        SpecError, DataError: as :func:`automl_nb.check`.

    Example:
        >>> DataHealthPanel(automl_nb.check("job.yml"))
    """

    def __init__(self, health: DataHealth | Any) -> None:
        self.health = health if isinstance(health, DataHealth) else check(health)
        self.chart_png = counts_png(self.health)
        self.duplicates_html = duplicates_html(self.health)
        self.summary = widgets.HTML(summary_html(self.health))
        self.chart = widgets.Image(value=self.chart_png, format="png")
        self.findings = widgets.HTML(findings_table(self.health))
        merged = recommended_yaml(self.health)
        height = f"{1.6 * (merged.count(chr(10)) + 2)}em"
        self.yaml = widgets.Textarea(value=merged, description="YAML",
                                     layout=widgets.Layout(width="600px", height=height,
                                                           display="" if merged else "none"))
        self.duplicates = widgets.HTML(self.duplicates_html)
        super().__init__([self.summary, self.chart, self.findings, self.yaml, self.duplicates])
        self.add_class("automl-data-health")

    def html(self) -> str:
        """The static form: everything the panel shows, as HTML with inline PNGs (renders without a kernel)."""
        merged = recommended_yaml(self.health)
        block = (f"<p><b>All recommended YAML</b>, to merge into the job:</p><pre>{escape(merged)}</pre>"
                 if merged else "")
        return (f'<div class="automl-data-health-static">{summary_html(self.health)}'
                f"{png_img(self.chart_png, 'class counts')}{findings_table(self.health)}{block}"
                f"{self.duplicates_html}</div>")

    def _repr_html_(self) -> str:
        return self.html()

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle["text/html"] = self.html()
        bundle["text/plain"] = health_text(self.health)
        return bundle


def summary_html(health: DataHealth) -> str:
    """The report's first lines: sources, image counts, what the model sees, notes, a verdict."""
    errors, warnings = len(health.by_severity("error")), len(health.by_severity("warning"))
    verdict = ("no problems found" if not health.findings else
               f"{errors} error(s), {warnings} warning(s), {len(health.findings) - errors - warnings} note(s)")
    colour = _SEVERITY_COLOURS["error"] if errors else _SEVERITY_COLOURS["warning"] if warnings else "#2a7d46"
    model = ", ".join(f"{k} {v}" for k, v in shown_parameters(health).items())
    notes = "".join(f"<br><small>note: {escape(note)}</small>" for note in health.notes)
    return (f"<p><b>Data health</b> of {escape(health.task)}: "
            f"<span style=\"color:{colour};font-weight:bold\">{escape(verdict)}</span><br>"
            f"{health.images['training']} training images <small>({escape(health.training_source)})</small>, "
            f"{health.images['validation']} validation images <small>({escape(health.validation_source)})</small>"
            f"<br><small>model: {escape(model)}</small>{notes}</p>")


def findings_table(health: DataHealth) -> str:
    """The findings as an HTML table: severity, what was found, what to do, the YAML to paste."""
    if not health.findings:
        return ""
    rows = []
    for finding in health.findings:
        colour = _SEVERITY_COLOURS[finding.severity]
        where = f"<br><small>under {escape(finding.section)}:</small>" if finding.section else ""
        yaml = f"<pre style=\"margin:0\">{escape(finding.yaml)}</pre>{where}" if finding.yaml else ""
        rows.append(f'<tr class="automl-finding"><td {_CELL}><b style="color:{colour}">{finding.severity}</b><br>'
                    f"<small>{escape(finding.kind)}</small></td><td {_CELL}>{escape(finding.message)}</td>"
                    f"<td {_CELL}>{escape(finding.recommendation)}</td><td {_CELL}>{yaml}</td></tr>")
    head = "".join(f"<th {_CELL}>{name}</th>" for name in ("", "found", "what to do", "YAML"))
    return (f'<table class="automl-findings" style="border-collapse:collapse;font-size:12px">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def counts_png(health: DataHealth) -> bytes:
    """Bars of each class's count in training and validation; for detection, a histogram of object sizes."""
    training, validation = health.class_counts["training"], health.class_counts["validation"]
    classes = sorted(set(training) | set(validation), key=lambda name: (-training.get(name, 0), name))
    shown = classes[:SHOWN_CLASSES]
    sides = health.objects.sides if health.objects is not None else ()
    fig, axes = new_figure(10 if sides else 6, max(2.4, 0.28 * len(shown) + 1.2), columns=2 if sides else 1)
    axis = axes[0]
    y = list(range(len(shown)))
    axis.barh([k - 0.2 for k in y], [training.get(n, 0) for n in shown], height=0.4, color="#4c78a8",
              label="training")
    axis.barh([k + 0.2 for k in y], [validation.get(n, 0) for n in shown], height=0.4, color="#f58518",
              label="validation")
    axis.set_yticks(y, shown)
    axis.invert_yaxis()
    more = f" (first {SHOWN_CLASSES} of {len(classes)})" if len(classes) > SHOWN_CLASSES else ""
    axis.set(title=f"{health.count_unit} per class{more}", xlabel="count")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    if sides:
        _object_sizes(axes[1], sides)
    return to_png(fig)


def _object_sizes(axis, sides: Sequence[float]) -> None:
    import numpy as np

    low, high = max(1.0, min(sides)), max(max(sides), 2.0)
    axis.hist(sides, bins=np.geomspace(low, high * 1.01, 25), color="#54a24b")
    axis.set_xscale("log")
    ticks = [2 ** k for k in range(0, 14) if low <= 2 ** k <= high * 1.01] + [96]
    axis.set_xticks(sorted(ticks), [str(t) for t in sorted(ticks)])
    axis.minorticks_off()
    for edge, name in ((32, "small | medium"), (96, "medium | large")):
        axis.axvline(edge, color="#b3261e", linestyle="--", linewidth=1)
        axis.text(edge, axis.get_ylim()[1] * 0.95, f" {name}", fontsize=7, va="top")
    axis.set(title="object size as the model sees it", xlabel="sqrt(box area), px", ylabel="objects")
    axis.grid(alpha=0.3)


def duplicates_html(health: DataHealth, limit: int = SHOWN_GROUPS) -> str:
    """The first ``limit`` duplicate groups, leaks first, each as a row of captioned thumbnails."""
    from automl_nb.data.images import open_image
    from automl_nb.errors import DataError

    if not health.duplicates:
        return ""
    parts = [f"<p><b>Duplicates</b>: {len(health.duplicates)} group(s), "
             f"{sum(g.leaks for g in health.duplicates)} across training and validation</p>"]
    for group in health.duplicates[:limit]:
        tiles = []
        for image in group.images:
            try:
                picture = enlarge(open_image(image.image_url), THUMBNAIL_SIDE)
                picture.thumbnail((THUMBNAIL_SIDE * 2, THUMBNAIL_SIDE))
            except DataError:  # removed since the report was made
                continue
            tiles.append(caption(picture, [image.split, _short(image.source or image.image_url)]))
        title = f"{'leak: ' if group.leaks else ''}{group.kind}"
        title += f" ({group.distance} bits)" if group.distance else ""
        picture_html = png_img(png_bytes(grid(tiles, columns=len(tiles))), group.describe()) if tiles else ""
        parts.append(f"<div style=\"margin:4px 0\"><small><b>{escape(title)}</b>: {escape(group.describe())}"
                     f"</small><br>{picture_html}</div>")
    if len(health.duplicates) > limit:
        parts.append(f"<p><small>and {len(health.duplicates) - limit} more groups</small></p>")
    return "".join(parts)


def _short(source: str) -> str:
    """``labels.jsonl:3`` of ``/long/path/labels.jsonl:3``."""
    return os.path.basename(source)
