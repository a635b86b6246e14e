"""The data-health report as plain text (what ``automl-nb check`` prints)."""

from __future__ import annotations

from statistics import median
from typing import TYPE_CHECKING

from automl_nb.data.health.findings import Finding, percent, plural

if TYPE_CHECKING:
    from automl_nb.data.health import DataHealth

# Classes listed by name per split; more are counted.
SHOWN_CLASSES = 12


def health_text(health: "DataHealth") -> str:
    """Summary lines, then every finding (errors first) with its recommendation and YAML.

    Example:
        >>> print(health_text(automl_nb.check("job.yml")))
        data health of image_object_detection: 40 training images (...), 13 validation images (...)
        ...
        ERROR leakage: 1 validation images are copies of training images ...
    """
    lines = [f"data health of {health.task}: {_images(health, 'training')} ({health.training_source}), "
             f"{_images(health, 'validation')} ({health.validation_source})",
             "model: " + ", ".join(f"{k} {v}" for k, v in shown_parameters(health).items())]
    for split, counts in health.class_counts.items():
        shown = ", ".join(f"{name} {n}" for name, n in list(counts.items())[:SHOWN_CLASSES])
        more = f" and {len(counts) - SHOWN_CLASSES} more" if len(counts) > SHOWN_CLASSES else ""
        lines.append(f"{split} {health.count_unit} per class: {shown or 'none'}{more}")
    if health.imbalance is not None:
        lines.append(f"imbalance (largest / smallest training class): {health.imbalance:.1f}")
    if health.image_sizes:
        widths = [w for w, _ in health.image_sizes]
        heights = [h for _, h in health.image_sizes]
        lines.append(f"image sizes: {min(widths)}-{max(widths)} x {min(heights)}-{max(heights)} px "
                     f"(median {median(widths):.0f}x{median(heights):.0f})")
    stats = health.objects
    if stats is not None:
        lines.append(f"objects: {stats.objects}; as the model sees them (scaled {stats.median_scale:.2g}x): "
                     f"{stats.small} small ({percent(stats.small, stats.objects)}), {stats.medium} medium, "
                     f"{stats.large} large; {stats.touching_border} touch the border; "
                     f"{plural(stats.empty_images, 'image')} without objects")
    leaks = sum(g.leaks for g in health.duplicates)
    lines.append(f"duplicates: {plural(len(health.duplicates), 'group')} ({leaks} across training and validation); "
                 f"unlabelled images: {len(health.unlabelled)}")
    lines += [f"note: {note}" for note in health.notes]
    lines.append("")
    lines += [line for finding in health.findings for line in finding_lines(finding)]
    counts = {s: len(health.by_severity(s)) for s in ("error", "warning", "info")}
    merged = recommended_yaml(health)
    if merged:
        lines += ["", "all recommended YAML, to merge into the job:"] + [f"    {line}" for line in merged.splitlines()]
    lines.append(f"{plural(counts['error'], 'error')}, {plural(counts['warning'], 'warning')}, "
                 f"{plural(counts['info'], 'note')}"
                 if health.findings else "no problems found")
    return "\n".join(lines)


def recommended_yaml(health: "DataHealth") -> str:
    """Every finding's YAML as one block: top-level keys, then ``training_parameters:`` (indented).

    Where two findings set the same key, the more severe (earlier) one wins.

    Example:
        >>> print(recommended_yaml(health))
        validation_data_size: 0.2
        training_parameters:
          tile_grid_size: 3x2
    """
    sections: dict[str | None, dict[str, str]] = {}
    for finding in health.findings:
        for line in (finding.yaml or "").splitlines():
            key = line.split(":", 1)[0]
            sections.setdefault(finding.section, {}).setdefault(key, line)
    lines = list(sections.pop(None, {}).values())
    for section, keyed in sections.items():
        lines += [f"{section}:"] + [f"  {line}" for line in keyed.values()]
    return "\n".join(lines)


def finding_lines(finding: Finding) -> list[str]:
    """``ERROR kind: message``, the recommendation, and the YAML lines to paste (indented)."""
    lines = [f"{finding.severity.upper()} {finding.kind}: {finding.message}", f"    -> {finding.recommendation}"]
    if finding.yaml:
        where = f"under {finding.section}:" if finding.section else "at the top level of the job"
        lines.append(f"    paste {where}")
        lines += [f"        {line}" for line in finding.yaml.splitlines()]
    return lines


def shown_parameters(health: "DataHealth") -> dict:
    """The parameters worth showing: set ones, and tile_overlap_ratio only with a tile grid."""
    shown = {k: v for k, v in health.parameters.items() if v is not None}
    if "tile_grid_size" not in shown:
        shown.pop("tile_overlap_ratio", None)
    return shown


def _images(health: "DataHealth", split: str) -> str:
    return f"{health.images[split]} {split} images"
