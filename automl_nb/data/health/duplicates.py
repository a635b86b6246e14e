"""Duplicate images within a split and across training and validation (leakage).

Images are linked when their files are identical (same digest) or they look the same
(:func:`automl_nb.data.phash.near_pairs`); each connected set of label lines is one
:class:`DuplicateGroup`. A group with lines in both splits leaks: validation then scores
pictures the model trained on, and its metric overstates what the model does on new ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from automl_nb.data.health.findings import ERROR, INFO, WARNING, Finding, listed, plural
from automl_nb.data.phash import Fingerprint, near_pairs
from automl_nb.data.records import ImageRecord

TRAINING, VALIDATION = "training", "validation"
# Above this many distinct pictures, near copies are searched only between validation and the
# rest (leakage), not among all pairs (20k pictures take about 4 s, and it grows squared).
ALL_PAIRS_LIMIT = 20_000


@dataclass(frozen=True)
class DuplicateImage:
    """One label line of a duplicate group: its split, ``file:line``, image and label text."""

    split: str
    source: str
    image_url: str
    label: str


@dataclass(frozen=True)
class DuplicateGroup:
    """Label lines whose images are the same picture.

    Attributes:
        kind: ``"exact"`` (identical files) or ``"near"`` (a resized or re-encoded copy).
        images: the lines, training first.
        distance: the largest perceptual-hash distance (bits of 64) within the group; 0 when exact.
    """

    kind: str
    images: tuple[DuplicateImage, ...]
    distance: int = 0

    @property
    def leaks(self) -> bool:
        """Whether the group has images in both training and validation."""
        return len({image.split for image in self.images}) > 1

    @property
    def conflicting(self) -> bool:
        """Whether its lines give the picture different labels."""
        return len({image.label for image in self.images}) > 1

    def describe(self) -> str:
        """``train.jsonl:3 = valid.jsonl:1`` (near copies joined with ``~``)."""
        return (" = " if self.kind == "exact" else " ~ ").join(image.source or image.image_url for image in self.images)


def _label_text(record: ImageRecord) -> str:
    if record.objects:
        return "; ".join(f"{o.label} {o.top_x:.2f},{o.top_y:.2f},{o.bottom_x:.2f},{o.bottom_y:.2f}"
                         for o in record.objects)
    return ", ".join(sorted(record.label_names()))


def duplicate_groups(train: Sequence[ImageRecord], valid: Sequence[ImageRecord],
                     prints: Mapping[str, Fingerprint], all_pairs: bool = True) -> list[DuplicateGroup]:
    """Group label lines that show the same picture.

    Args:
        train, valid: the records of each split.
        prints: the fingerprint of each readable image, by URL (others are left out).
        all_pairs: search near copies among all pictures; False: only between validation
            pictures and all the others (identical files are always grouped).

    Returns:
        Groups of two or more lines, leaking groups first, then in label-file order.
    """
    lines = [(split, r) for split, records in ((TRAINING, train), (VALIDATION, valid)) for r in records
             if r.image_url in prints]
    first = {prints[r.image_url].digest: prints[r.image_url] for _, r in lines}  # same bytes, same hash
    digests = list(first)
    index = {digest: i for i, digest in enumerate(digests)}
    parent = list(range(len(digests)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    rows = None if all_pairs else sorted({index[prints[r.image_url].digest] for r in valid if r.image_url in prints})
    pairs = near_pairs([first[d].phash for d in digests], [first[d].thumbnail for d in digests], rows=rows)
    for i, j, _ in pairs:
        a, b = root(i), root(j)
        parent[max(a, b)] = min(a, b)
    distance: dict[int, int] = {}
    for i, _, bits in pairs:
        distance[root(i)] = max(distance.get(root(i), 0), bits)
    members: dict[int, list] = {}
    for split, record in lines:
        members.setdefault(root(index[prints[record.image_url].digest]), []).append((split, record))
    groups = []
    for key, entries in members.items():
        if len(entries) < 2:
            continue
        kinds = {prints[r.image_url].digest for _, r in entries}
        images = tuple(DuplicateImage(split, r.source, r.image_url, _label_text(r)) for split, r in entries)
        groups.append(DuplicateGroup("exact" if len(kinds) == 1 else "near", images,
                                     0 if len(kinds) == 1 else distance.get(key, 0)))
    return sorted(groups, key=lambda g: not g.leaks)


def duplicate_health(train: Sequence[ImageRecord], valid: Sequence[ImageRecord], prints: Mapping[str, Fingerprint],
                     validation_given: bool) -> tuple[list[DuplicateGroup], list[Finding], list[str]]:
    """Duplicate groups and their findings: leakage (error), copies in one split (warning, or
    info for near copies with the same label).

    Args:
        train, valid: the records of each split.
        prints: fingerprints of the readable images, by URL.
        validation_given: the job names validation_data (else validation is a held-out share).

    Returns:
        ``(groups, findings, notes)``; a note says when near copies were searched only across
        the splits (more than :data:`ALL_PAIRS_LIMIT` pictures).
    """
    pictures = len({p.digest for p in prints.values()})
    all_pairs = pictures <= ALL_PAIRS_LIMIT
    groups = duplicate_groups(train, valid, prints, all_pairs)
    notes = [] if all_pairs else [f"{pictures} distinct pictures: near copies were searched only between validation "
                                  "and training (leakage); identical files everywhere"]
    findings = []
    leaking = [g for g in groups if g.leaks]
    if leaking:
        fix = ("remove these images from validation_data (or from training_data)" if validation_given else
               "remove the copies from training_data: the held-out share draws images whose copies train")
        findings.append(Finding(
            "leakage", ERROR,
            f"{plural(len(leaking), 'validation image')} copied from training "
            f"({sum(g.kind == 'exact' for g in leaking)} identical, {sum(g.kind == 'near' for g in leaking)} near): "
            f"{listed([g.describe() for g in leaking], 3)}",
            f"{fix}; validation otherwise scores pictures the model trained on and overstates its metric",
            examples=tuple(g.describe() for g in leaking)))
    within = [g for g in groups if not g.leaks]
    copies = [g for g in within if g.kind == "exact" or g.conflicting]
    if copies:
        conflicts = sum(g.conflicting for g in copies)
        findings.append(Finding(
            "duplicates", WARNING,
            f"{plural(len(copies), 'picture')} listed more than once in one split"
            f"{f' ({conflicts} with different labels)' if conflicts else ''}: "
            f"{listed([g.describe() for g in copies], 3)}",
            "keep one line per picture: a copy counts twice in the loss and the metric, and copies with different "
            "labels teach the model both", examples=tuple(g.describe() for g in copies)))
    near = [g for g in within if g not in copies]
    if near:
        findings.append(Finding(
            "near_duplicates", INFO,
            f"{plural(len(near), 'group')} of near-identical pictures (resized or re-encoded copies) in one split: "
            f"{listed([g.describe() for g in near], 3)}",
            "fine if they are distinct shots; if they are copies, keep one",
            examples=tuple(g.describe() for g in near)))
    return groups, findings, notes
